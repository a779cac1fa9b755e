"""What every part of the complaints service shares: its keys, the number it may text.

What a caller types is encrypted before it is stored (``text_sealer``), the
filing phone is kept as a keyed hash (to recognise it) and sealed (to text
it, ``phone_sealer``), and an SMS is only ever queued where the caller said
contact is safe (``contact_number``), held until the caller's safe time when they
gave one (``send_time``, ``complaints.safe_window``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ussd_app.complaints import safe_window
from ussd_app.complaints.model import TEXT_PURPOSE, Agencies
from ussd_app.engine.bidi import for_display
from ussd_app.engine.encoding import sms_segments
from ussd_app.engine.screens import Translate
from ussd_app.privacy.protect import Sealer, seal_text
from ussd_app.store import OutboxItem, Store

log = logging.getLogger(__name__)


class ComplaintsBase:
    # The job-offer records (``job_records.service.JobRecords``), set by ``build_services``:
    # a new complaint is linked to the record it quotes or its phone's latest, and a
    # phone's erasure erases its records too.
    job_records: Any = None

    def __init__(self, store: Store, secret: bytes, t: Translate,
                 resolve_agency: Agencies | None = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.t, self.clock = store, t, clock
        self.text_sealer = Sealer(secret, TEXT_PURPOSE)
        self.phone_sealer = Sealer(secret)  # the outbox's: a sealed number can be queued
        self._pin_key = hmac.new(secret, b"migrantline complaint pin v1",
                                 hashlib.sha256).digest()
        self.resolve_agency = resolve_agency
        self._agency_key = hmac.new(secret, b"migrantline agency name v1",
                                    hashlib.sha256).digest()

    def agency_name_key(self, folded_name: str) -> str:
        """A name's key: complaints naming one agency the registry lacks are counted
        together (``agency_flags.unlisted_agencies``) while the name stays sealed."""
        return hmac.new(self._agency_key, folded_name.encode(), hashlib.sha256).hexdigest()[:32]

    def pin_hash(self, reference: str, pin: str) -> str:
        return hmac.new(self._pin_key, f"{reference}:{pin}".encode(), hashlib.sha256).hexdigest()

    def _contact_number(self, row: Mapping[str, Any], automatic: bool = False) -> str | None:
        """The number it is safe to text, or None. Automatic updates skip "only at times"
        unless the case has a window to hold them to (old cases have free text only)."""
        contact = row.get("contact") or "unknown"
        if row.get("erased_at") or contact in ("never", "unknown"):
            return None
        if automatic and contact == "times" and self.window(row)[0] is None:
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

    def receipt_goes(self, row: Mapping[str, Any]) -> bool:
        """Whether the receipt SMS goes (held or not): as automatic updates do."""
        return self._contact_number(row, automatic=True) is not None

    @staticmethod
    def window(row: Mapping[str, Any]) -> tuple[safe_window.Window | None, str]:
        """(the safe window, the caller's time zone); no window unless "only at times"."""
        zone = str(row.get("time_zone") or safe_window.UTC)
        if row.get("contact") != "times":
            return None, zone
        return safe_window.parse(row.get("contact_window")), zone

    def send_time(self, row: Mapping[str, Any], at: float | None = None) -> float:
        """When an SMS queued at ``at`` (now) for this case would be sent: at once, or
        the next opening of the caller's safe window."""
        now = self.clock() if at is None else at
        window, zone = self.window(row)
        return now if window is None else safe_window.next_start(window, zone, now)

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
             phone_key: str | None = None, kind: str = "message",
             case: Mapping[str, Any] | None = None) -> OutboxItem:
        """One SMS to queue; for a ``case`` with a safe window, held until it opens.

        Marked for right-to-left display here, where every case SMS passes, so the
        reference and numbers in an Arabic SMS read left to right."""
        body = for_display(body, lang)
        encoding, segments = sms_segments(body)
        window, zone = self.window(case or {})
        return OutboxItem(key, self.phone_sealer.seal(to), lang,
                          seal_text(self.phone_sealer, body), encoding.value, segments,
                          kind=kind, phone_key=phone_key,
                          send_at=self.send_time(case) if window else None,
                          safe_window=str(window) if window else None,
                          time_zone=zone if window else None)

    def _seal(self, text: str) -> str | None:
        return self.text_sealer.seal(text) if text else None
