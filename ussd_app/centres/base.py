"""What the parts of ``Centres`` share: this centre's keys, the directory, the audit.

This centre's keys are made the first time they are needed and kept sealed at rest
in the database (``centre_identity``): one pair per deployment, whatever node asks.
A partner is added from its signed card (``import_card``); a revoked key is refused
from then on, and its card cannot be imported again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ussd_app import settings
from ussd_app.centres import crypto
from ussd_app.complaints.referrals import BadWebhookUrl, check_webhook_url, post
from ussd_app.complaints.service import Complaints
from ussd_app.privacy.protect import Sealer
from ussd_app.store import Store
from ussd_app.store import centres as db
from ussd_app.store import operators as audit_db

KEYS_PURPOSE = "centre private keys v1"
# "record": the job-offer record the case is held against, and a lost-contact report's
# details (``job_records.referral``): only when the operator ticks it.
SHAREABLE = ("category", "country", "city", "employer", "against", "description", "phone",
             "record")
DEFAULT_SHARED = ("category", "country")
MESSAGE_LIMIT = 500
LEASE_SECONDS = 300.0
BATCH = 50
SYSTEM = "system"


class ReferralRefused(Exception):
    """A referral or update that cannot go; ``reason`` is a code the dashboard words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    """What ``receive`` answers: the HTTP status and a JSON body (no personal data)."""

    status: int
    body: dict[str, Any]


def check_url(url: str) -> str:
    try:
        return check_webhook_url(url)
    except BadWebhookUrl:
        raise crypto.BadCard("the card's URL is not https:// (or http:// on 127.0.0.1)") \
            from None


def inbox_url(base: str) -> str:
    return base.rstrip("/") + "/partners/inbox"


def post_json(url: str, body: bytes, timeout: float) -> int:
    """POST an envelope; the status (no redirect followed, the answer's body read briefly)."""
    return post(url, body, {"Content-Type": "application/json", "User-Agent": "MigrantLine"},
                timeout)


class CentresBase:
    def __init__(self, store: Store, secret: bytes, config: settings.Settings,
                 complaints: Complaints, t: Callable[[str, str], str],
                 clock: Callable[[], float] = time.time,
                 post: Callable[[str, bytes, float], int] | None = None):
        self.store, self.config, self.complaints, self.t = store, config, complaints, t
        self.clock = clock
        self.post = post or post_json
        self._sealer = Sealer(secret, KEYS_PURPOSE)
        self._keys: crypto.KeyPair | None = None
        self._lock = threading.Lock()
        self._refused: dict[tuple[str, str], float] = {}  # unsigned refusals last audited
        self.records: Any = None  # job_records.JobRecords, set by the services

    # ------------------------------------------------------------ identity, directory

    def keys(self) -> crypto.KeyPair:
        """This centre's key pairs, made and stored the first time (once per deployment)."""
        with self._lock:
            if self._keys is None:
                found = db.identity(self.store)
                if found is None:
                    made = crypto.KeyPair.generate()
                    found = db.create_identity(self.store, self._sealer.seal(made.dumps()),
                                               self.clock())
                self._keys = crypto.KeyPair.loads(self._sealer.open(str(found["keys_sealed"])))
            return self._keys

    def card(self) -> dict[str, Any]:
        config = self.config
        languages = [x.strip() for x in config.centre_languages.split(",") if x.strip()]
        return crypto.make_card(self.keys(), config.centre_name, config.centre_country.upper(),
                                languages, config.base_url.rstrip("/"), self.clock())

    def card_bytes(self) -> bytes:
        return json.dumps(self.card(), indent=2, ensure_ascii=False).encode() + b"\n"

    def fingerprint(self) -> str:
        return crypto.fingerprint(self.keys().sign_public)

    def import_card(self, raw: bytes, actor: str, operator_id: int | None = None
                    ) -> tuple[dict[str, Any], bool]:
        """(the centre, True if new); ``BadCard`` says why a file is refused."""
        try:
            card = crypto.read_card(raw)
            card["url"] = check_url(card["url"])
            if card["sign_key"] == self.keys().sign_public:
                raise crypto.BadCard("this is this centre's own card")
        except crypto.BadCard as exc:
            self.audit("centre_import_refused", str(exc), actor, operator_id)
            raise
        known = db.centre_by_sign_key(self.store, card["sign_key"])
        if known is not None and known["revoked_at"] is not None:
            self.audit("centre_import_refused", f"revoked key of centre {known['id']}", actor,
                       operator_id)
            raise crypto.BadCard("this card's key was revoked here: it cannot be imported "
                                 "again (ask the centre for a card with new keys)")
        centre_id, new = db.add_centre(self.store, card, crypto.canonical(card).decode(),
                                       crypto.fingerprint(card["sign_key"]), self.clock())
        self.audit("centre_import" if new else "centre_refresh", f"centre {centre_id}", actor,
                   operator_id)
        found = db.centre(self.store, centre_id)
        assert found is not None
        return found, new

    def revoke(self, centre_id: int, actor: str, operator_id: int | None = None) -> bool:
        done = db.revoke(self.store, centre_id, self.clock())
        if done:
            self.audit("centre_revoke", f"centre {centre_id}", actor, operator_id)
        return done

    def audit(self, action: str, detail: str, actor: str | None = None,
              operator_id: int | None = None, complaint_id: int | None = None,
              ip: str = "") -> None:
        audit_db.audit(self.store, self.clock(), operator_id, action, complaint_id, detail, ip,
                       actor=None if operator_id is not None else (actor or SYSTEM))

    def links(self) -> list[dict[str, Any]]:
        now = self.clock()
        rows = db.links(self.store)
        for row in rows:
            oldest = row.get("oldest_undelivered")
            row["oldest_undelivered_minutes"] = (None if oldest is None
                                                 else round((now - float(oldest)) / 60, 1))
        return rows


    def _partner(self, centre_id: int) -> dict[str, Any]:
        centre = db.centre(self.store, centre_id)
        if centre is None:
            raise ReferralRefused("unknown_centre")
        if centre["revoked_at"] is not None:
            raise ReferralRefused("revoked_centre")
        return centre
