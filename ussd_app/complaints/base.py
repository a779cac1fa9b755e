"""What every part of the complaints service shares: its keys, the number it may text.

What a caller types is encrypted before it is stored (``text_sealer``), the
filing phone is kept as a keyed hash (to recognise it) and sealed (to text
it, ``phone_sealer``), and an SMS is only ever queued where the caller said
contact is safe (``contact_number``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ussd_app.complaints.model import TEXT_PURPOSE, Agencies
from ussd_app.engine.encoding import sms_segments
from ussd_app.engine.screens import Translate
from ussd_app.privacy.protect import Sealer, seal_text
from ussd_app.store import OutboxItem, Store

log = logging.getLogger(__name__)


class ComplaintsBase:
    def __init__(self, store: Store, secret: bytes, t: Translate,
                 resolve_agency: Agencies | None = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.t, self.clock = store, t, clock
        self.text_sealer = Sealer(secret, TEXT_PURPOSE)
        self.phone_sealer = Sealer(secret)  # the outbox's: a sealed number can be queued
        self._pin_key = hmac.new(secret, b"migrantline complaint pin v1",
                                 hashlib.sha256).digest()
        self.resolve_agency = resolve_agency

    def pin_hash(self, reference: str, pin: str) -> str:
        return hmac.new(self._pin_key, f"{reference}:{pin}".encode(), hashlib.sha256).hexdigest()

    def _contact_number(self, row: Mapping[str, Any], automatic: bool = False) -> str | None:
        """The number it is safe to text, or None. Automatic updates skip "only at times"."""
        contact = row.get("contact") or "unknown"
        if row.get("erased_at") or contact in ("never", "unknown"):
            return None
        if automatic and contact == "times":
            return None
        sealed = row.get("contact_phone_sealed") if contact == "other" else \
            row.get("phone_sealed")
        if not sealed:
            return None
        try:
            if contact == "other":
                return self.text_sealer.open(str(sealed))
            return self.phone_sealer.open(str(sealed))
        except Exception:
            log.warning("complaint contact number cannot be decrypted (secret key changed?)")
            return None

    def can_message(self, row: Mapping[str, Any]) -> bool:
        """Whether receipts, replies and operators' messages may go by SMS to this
        complaint's number (``message`` queues one rather than raise ``ContactNotSafe``)."""
        return self._contact_number(row) is not None

    def outbox_keys(self, row: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(exact keys, key prefixes) of the outbox SMS this complaint caused.

        The one statement of the key patterns ``_receipt``, ``set_status``,
        ``message`` and ``attach`` (the reply to a message added to the case)
        use, for whoever shows a complaint's SMS (the dashboard).
        """
        receipts = [f"complaint-receipt:{k}" for k in (row.get("key"), row.get("details_key"))
                    if k]
        return receipts, [f"complaint-status:{row['id']}:", f"complaint-message:{row['id']}:",
                          f"complaint-reply:{row['id']}:"]

    def _sms(self, key: str, to: str, lang: str, body: str,
             phone_key: str | None = None, kind: str = "message") -> OutboxItem:
        encoding, segments = sms_segments(body)
        return OutboxItem(key, self.phone_sealer.seal(to), lang,
                          seal_text(self.phone_sealer, body), encoding.value, segments,
                          kind=kind, phone_key=phone_key)

    def _seal(self, text: str) -> str | None:
        return self.text_sealer.seal(text) if text else None
