"""Complaints: filing, following by reference, operators' actions, erasure.

Every channel files through ``Complaints.file`` and answers status questions
through ``Complaints.lookup``; the dashboard acts through the other methods.
What a caller types is encrypted before it is stored (``Sealer``), the filing
phone is kept as a keyed hash (to recognise it) and sealed (to text it), and
an SMS is only ever queued where the caller said contact is safe.

A reference is 7 random digits and a Damm check digit: digits because letters
are hard on a keypad, random so that one reference says nothing about
another, and checked so that a mistyped digit is caught before any look-up.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ussd_app.conversation.inbound import Caller
from ussd_app.engine.answers import ascii_digits
from ussd_app.engine.encoding import sms_segments
from ussd_app.engine.messages import N_
from ussd_app.engine.screens import Translate
from ussd_app.errors import NotAllowed, NotFound
from ussd_app.privacy.protect import Sealer, seal_text
from ussd_app.store import OutboxItem, Store
from ussd_app.store import complaints as db
from ussd_app.store.privacy import checkpoint, erase_phones

log = logging.getLogger(__name__)

CATEGORIES = ("unpaid_wages", "contract", "documents", "fees", "abuse", "forced_labour",
              "lost_contact", "other")
STATUSES = ("new", "in_progress", "referred", "resolved", "closed")
# Whether and how the caller may be contacted: any time; only at the times they gave;
# on another number; never. "unknown" until asked (an urgent report filed at once).
CONTACTS = ("any", "times", "other", "never", "unknown")
FILED_BY = ("self", "family")
AGAINST = ("agency", "employer", "both", "other")

PIN_LOCK_SECONDS = 30 * 60
PIN_TRIES = 3  # wrong PINs on one reference before it is locked for PIN_LOCK_SECONDS
PHONE_TRIES = 10  # wrong PINs from one phone (any reference) before it is locked too
FIELD_LIMITS = {"against": 160, "employer": 160, "city": 80, "country_other": 80,
                "description": 2000, "contact_when": 160, "contact_phone": 32}

STATUS_LABELS = {
    "new": N_("Received"),
    "in_progress": N_("In progress"),
    "referred": N_("Referred to a partner"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}
# SMS wording stays neutral: a shared phone or a boss may read it.
RECEIPT_SMS = N_("MigrantLine: your reference is {reference}. Keep it to follow your case.")
STATUS_SMS = {
    "in_progress": N_("MigrantLine: case {reference} is in progress. An adviser is working "
                      "on it."),
    "referred": N_("MigrantLine: case {reference} was passed to a partner organisation that "
                   "can help."),
    "resolved": N_("MigrantLine: case {reference} is resolved. Call us if you still need "
                   "help."),
    "closed": N_("MigrantLine: case {reference} is closed. Call us if you need help again."),
}
MESSAGE_TEMPLATES = {
    "call_us": N_("MigrantLine: please call us when it is safe for you. Case {reference}."),
    "more_info": N_("MigrantLine: we need more information on case {reference}. Please call "
                    "us when it is safe."),
    "tried_to_call": N_("MigrantLine: we tried to call you about case {reference}. We will "
                        "try again."),
    "partner_will_call": N_("MigrantLine: a partner organisation will contact you about case "
                            "{reference}."),
}
STATUS_LINE_CASE = N_("Case {reference}")
STATUS_LINE_STATUS = N_("Status: {status}")
STATUS_LINE_FILED = N_("Filed on {date}")
STATUS_LINE_UPDATED = N_("Last update on {date}")
STATUS_ERASED = N_("The personal data of this case was erased.")
# The key purpose of what callers say and of history details: whoever adds to a
# complaint's history (voice_recordings.py) seals with the same.
TEXT_PURPOSE = "complaint text v1"


class ContactNotSafe(NotAllowed):
    """The caller said not to contact them (or was never asked): no SMS goes."""


# ---------------------------------------------------------------- references

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2), (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9), (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8), (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4), (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5), (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm(digits: str) -> int:
    """The Damm check digit of ``digits``: catches every single-digit error and swap."""
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][int(ch)]
    return interim


def new_reference() -> str:
    body = str(secrets.randbelow(9_000_000) + 1_000_000)  # never a leading zero
    return body + str(damm(body))


def digits_of(text: str) -> str:
    """ASCII digits of what was typed: Arabic-Indic or Devanagari digits count too."""
    return ascii_digits(text) or ""


def parse_reference(text: str) -> str | None:
    """The reference in what a caller typed (spaces, dashes allowed), if its check holds."""
    digits = digits_of(text)
    if len(digits) != 8 or damm(digits) != 0:
        return None
    return digits


def show_reference(reference: str) -> str:
    """Grouped by four: easier to read out and to copy down."""
    return f"{reference[:4]} {reference[4:]}"


def mask_phone(phone: str) -> str:
    """Enough to tell two numbers apart in a list, not enough to call one."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 6:
        return "•" * len(digits)
    return "+" + digits[:3] + "•" * (len(digits) - 5) + digits[-2:]


# ---------------------------------------------------------------- the service


@dataclass(frozen=True)
class Lookup:
    """What a status question found. ``kind``: status, need_pin, bad_reference, denied,
    locked. ``denied`` covers a wrong PIN and an unknown reference alike, so that
    another phone learns nothing, not even whether the case exists."""

    kind: str
    row: dict[str, Any] | None = None
    reference: str = ""


Agencies = Callable[[str], tuple[str, str] | None]  # typed text -> (licence, name)


class Complaints:
    def __init__(self, store: Store, secret: bytes, t: Translate,
                 resolve_agency: Agencies | None = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.t, self.clock = store, t, clock
        self.text_sealer = Sealer(secret, TEXT_PURPOSE)
        self.phone_sealer = Sealer(secret)  # the outbox's: a sealed number can be queued
        self._pin_key = hmac.new(secret, b"migrantline complaint pin v1",
                                 hashlib.sha256).digest()
        self.resolve_agency = resolve_agency

    # -------------------------------------------------------- filing

    def file(self, key: str, caller: Caller, lang: str, answers: Mapping[str, str],
             urgent: bool = False) -> dict[str, Any]:
        """Store a complaint (committed before this returns); the same key, the same one.

        With ``answers["reference"]`` naming a complaint this phone filed at once
        ("I am in danger now"), the details are added to it instead.
        """
        now = self.clock()
        fields, cut, pin = self._fields(answers)
        existing = self._own(answers.get("reference", ""), caller)
        if existing is not None:
            return self._add_details(existing, key, lang, fields, cut, pin, now)
        row: dict[str, Any] = {
            "key": key, "channel": caller.channel, "lang": lang, "created_at": now,
            "updated_at": now, "status": "new", "urgent": int(urgent),
            "phone_key": caller.phone_key,
            "phone_sealed": None if caller.withheld else self.phone_sealer.seal(caller.phone),
            **({"contact": "unknown"} if urgent and "contact" not in fields else {}),
            **fields, "truncated": ",".join(cut),
        }
        event = {"at": now, "actor": "caller", "kind": "urgent" if urgent else "filed",
                 "status": "new"}
        for _ in range(8):
            reference = row["reference"] = new_reference()
            row["pin_hash"] = self.pin_hash(reference, pin) if pin else None
            try:
                stored, created = db.insert(self.store, row, event,
                                            self._receipt(key, row, lang))
            except db.ReferenceTaken:
                continue
            if created:
                log.info("complaint filed on %s%s", caller.channel, " (urgent)" if urgent else "")
            return stored
        raise RuntimeError("could not draw a free reference")  # 10^7 of them: never

    def _add_details(self, row: dict[str, Any], key: str, lang: str, fields: dict[str, Any],
                     cut: list[str], pin: str, now: float) -> dict[str, Any]:
        """The rest of a report filed at once as urgent: same case, same reference."""
        if row.get("details_key") == key:
            return row  # this very hop added them already
        merged = {**fields, "updated_at": now, "lang": lang, "details_key": key,
                  "truncated": ",".join(sorted({*str(row.get("truncated") or "").split(","),
                                                *cut} - {""}))}
        if pin:
            merged["pin_hash"] = self.pin_hash(str(row["reference"]), pin)
        receipt = self._receipt(key, {**row, **merged}, lang)
        stored = db.update(self.store, int(row["id"]), merged,
                           {"at": now, "actor": "caller", "kind": "details"},
                           [receipt] if receipt else [])
        return stored or row

    def _own(self, reference: str, caller: Caller) -> dict[str, Any] | None:
        """The complaint behind ``reference`` if this very phone filed it."""
        parsed = parse_reference(reference) if reference else None
        if parsed is None:
            return None
        row = db.by_reference(self.store, parsed)
        if row is None or row.get("erased_at") or row.get("phone_key") != caller.phone_key:
            return None
        return row

    def _fields(self, answers: Mapping[str, str]) -> tuple[dict[str, Any], list[str], str]:
        """Columns from the flow's answers: choices checked, free text cut and sealed."""
        fields: dict[str, Any] = {}
        for name, allowed in (("filed_by", FILED_BY), ("category", CATEGORIES),
                              ("contact", CONTACTS), ("against_kind", AGAINST)):
            value = answers.get(name)
            if value:
                fields[name] = value if value in allowed else "other"
        if answers.get("against") and not answers.get("against_kind"):
            fields["against_kind"] = "agency"  # reported from an agency's check result
        country = answers.get("country", "")
        if country:
            fields["country"] = country.upper()[:8] if country != "other" else "other"
        cut = [n for n in answers.get("_cut", "").split(",") if n]
        for name, limit in FIELD_LIMITS.items():
            text = " ".join(str(answers.get(name, "")).split())
            if not text:
                continue
            if len(text) > limit:
                text, cut = text[:limit], [*cut, name]
            fields[f"{name}_sealed"] = self.text_sealer.seal(text)
        against = answers.get("against", "")
        if against and fields.get("against_kind") in ("agency", "both") and self.resolve_agency:
            found = self.resolve_agency(against)
            if found:
                fields["agency_licence"], fields["agency_name"] = found
        pin = digits_of(answers.get("pin", ""))
        return fields, sorted(set(cut)), pin if len(pin) == 4 else ""

    def _receipt(self, key: str, row: Mapping[str, Any], lang: str) -> OutboxItem | None:
        """The reference by SMS, where the caller said contact is safe.

        Not for a complaint filed by SMS: the reply that shows the reference is one.
        """
        if row.get("channel") == "sms":
            return None
        to = self._contact_number(row)
        if to is None:
            return None
        body = self.t(lang, RECEIPT_SMS).format(reference=show_reference(str(row["reference"])))
        return self._sms(f"complaint-receipt:{key}", to, lang, body, row.get("phone_key"))

    # -------------------------------------------------------- following

    def pin_hash(self, reference: str, pin: str) -> str:
        return hmac.new(self._pin_key, f"{reference}:{pin}".encode(), hashlib.sha256).hexdigest()

    def lookup(self, typed: str, caller: Caller, pin: str | None = None,
               key: str = "") -> Lookup:
        """Status for a reference: in full to the filing phone, else only with its PIN."""
        reference = parse_reference(typed)
        if reference is None:
            return Lookup("bad_reference")
        row = db.by_reference(self.store, reference)
        if row is not None and not row.get("erased_at") and not caller.withheld and \
                row.get("phone_key") == caller.phone_key:
            return Lookup("status", row, reference)
        if pin is None:
            return Lookup("need_pin", reference=reference)
        now = self.clock()
        by_ref, by_phone, _ = db.pin_failures(self.store, reference, caller.phone_key,
                                              now - PIN_LOCK_SECONDS, exclude_key=key)
        if by_ref >= PIN_TRIES or by_phone >= PHONE_TRIES:
            return Lookup("locked", reference=reference)
        digits = digits_of(pin)
        ok = bool(row and row.get("pin_hash") and not row.get("erased_at")
                  and hmac.compare_digest(str(row["pin_hash"]),
                                          self.pin_hash(reference, digits)))
        db.record_pin_attempt(self.store, key or f"pin:{secrets.token_hex(8)}", reference,
                              caller.phone_key, ok, now)
        if ok:
            return Lookup("status", row, reference)
        if by_ref + 1 >= PIN_TRIES or by_phone + 1 >= PHONE_TRIES:
            return Lookup("locked", reference=reference)
        return Lookup("denied", reference=reference)

    def status_text(self, row: Mapping[str, Any], lang: str) -> str:
        """What a caller reads about their case: reference, status, dates. No details."""
        t = self.t
        lines = [t(lang, STATUS_LINE_CASE).format(reference=show_reference(row["reference"])),
                 t(lang, STATUS_LINE_STATUS).format(
                     status=t(lang, STATUS_LABELS.get(row["status"], STATUS_LABELS["new"]))),
                 t(lang, STATUS_LINE_FILED).format(date=_day(row["created_at"]))]
        updated = row.get("last_action_at")
        if updated:
            lines.append(t(lang, STATUS_LINE_UPDATED).format(date=_day(updated)))
        if row.get("erased_at"):
            lines.append(t(lang, STATUS_ERASED))
        return "\n".join(lines)

    # -------------------------------------------------------- erasure

    def erase_for_phone(self, caller: Caller, reason: str = "asked by the caller") -> int:
        """The caller's own request: erase the personal data of what this phone filed,
        and what it left elsewhere (sessions, conversations, calls, SMS)."""
        if caller.withheld:
            return 0  # no phone to speak for: a case is erased by its reference and PIN
        count = db.erase(self.store, db.ids_for_phone(self.store, caller.phone_key), reason,
                         self.clock())
        erase_phones(self.store, [caller.phone_key], self.clock())
        checkpoint(self.store)
        return count

    def erase(self, reference: str) -> bool:
        """Erase one case; the caller was found entitled by ``lookup`` (phone or PIN)."""
        row = db.by_reference(self.store, reference)
        if row is None or row.get("erased_at"):
            return False
        erased = bool(db.erase(self.store, [int(row["id"])], "asked by the caller",
                               self.clock()))
        checkpoint(self.store)  # no old WAL frame keeps what was erased
        return erased

    def purge(self, retention_days: float) -> int:
        """Erase personal data of complaints closed longer ago than the retention period."""
        now = self.clock()
        ids = db.closed_before(self.store, now - retention_days * 86400)
        db.purge_pin_attempts(self.store, now - 7 * 86400)
        count = db.erase(self.store, ids, "retention period over", now)
        checkpoint(self.store)
        return count

    # -------------------------------------------------------- operators

    def get(self, complaint_id: int) -> dict[str, Any]:
        row = db.by_id(self.store, complaint_id)
        if row is None:
            raise NotFound(complaint_id)
        return row

    def reveal(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The complaint with its personal data decrypted, for an operator's screen."""
        shown = dict(row)
        for column in db.SEALED:
            sealed = row.get(column)
            name = column.removesuffix("_sealed")
            sealer = self.phone_sealer if column == "phone_sealed" else self.text_sealer
            try:
                shown[name] = sealer.open(sealed) if sealed else ""
            except Exception:  # a key change: say so rather than fail the page
                shown[name] = "(cannot be decrypted with the current secret key)"
        shown["phone_masked"] = mask_phone(shown.get("phone", ""))
        shown["reference_shown"] = show_reference(str(row["reference"]))
        return shown

    def history(self, complaint_id: int) -> list[dict[str, Any]]:
        shown = []
        for event in db.events(self.store, complaint_id):
            sealed = event.pop("detail_sealed", None)
            try:
                event["detail"] = self.text_sealer.open(sealed) if sealed else ""
            except Exception:
                event["detail"] = "(cannot be decrypted with the current secret key)"
            shown.append(event)
        return shown

    def set_status(self, complaint_id: int, status: str, operator_id: int | None,
                   actor: str, detail: str = "") -> dict[str, Any]:
        """Change the status; the migrant gets an SMS in their language if contact is safe."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        row = self.get(complaint_id)
        now = self.clock()
        fields: dict[str, Any] = {"status": status, "updated_at": now, "last_action_at": now,
                                  "closed_at": now if status == "closed" else None}
        messages = []
        template = STATUS_SMS.get(status)
        to = self._contact_number(row, automatic=True)
        if template and to and status != row["status"]:
            lang = row["lang"]
            body = self.t(lang, template).format(reference=show_reference(row["reference"]))
            messages.append(self._sms(f"complaint-status:{complaint_id}:{status}:{now}", to,
                                      lang, body, row.get("phone_key")))
        event = {"at": now, "actor": actor, "operator_id": operator_id, "kind": "status",
                 "status": status, "detail_sealed": self._seal(detail)}
        stored = db.update(self.store, complaint_id, fields, event, messages)
        return stored or row

    def act(self, complaint_id: int, kind: str, operator_id: int | None, actor: str,
            detail: str = "", fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Record an operator's action (note, assignment, referral) in the history."""
        now = self.clock()
        self.get(complaint_id)
        stored = db.update(self.store, complaint_id,
                           {**(fields or {}), "updated_at": now, "last_action_at": now},
                           {"at": now, "actor": actor, "operator_id": operator_id,
                            "kind": kind, "detail_sealed": self._seal(detail)})
        assert stored is not None
        return stored

    def message(self, complaint_id: int, template: str, operator_id: int | None,
                actor: str) -> dict[str, Any]:
        """Queue a templated SMS in the migrant's language; ``ContactNotSafe`` if it must not."""
        row = self.get(complaint_id)
        if template not in MESSAGE_TEMPLATES:
            raise ValueError(f"unknown template {template!r}")
        to = self._contact_number(row)
        if to is None:
            raise ContactNotSafe(row.get("contact") or "unknown")
        now = self.clock()
        lang = row["lang"]
        body = self.t(lang, MESSAGE_TEMPLATES[template]).format(
            reference=show_reference(row["reference"]))
        stored = db.update(
            self.store, complaint_id, {"updated_at": now, "last_action_at": now},
            {"at": now, "actor": actor, "operator_id": operator_id, "kind": "message",
             "status": template, "detail_sealed": self._seal(body)},
            [self._sms(f"complaint-message:{complaint_id}:{template}:{now}", to, lang, body,
                       row.get("phone_key"))])
        assert stored is not None
        return stored

    # -------------------------------------------------------- helpers

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
        """Whether ``message`` would queue an SMS (rather than raise ``ContactNotSafe``):
        whether receipts and replies may go by SMS to this complaint's number."""
        return self._contact_number(row) is not None

    def outbox_keys(self, row: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(exact keys, key prefixes) of the outbox SMS this complaint caused.

        The one statement of the key patterns ``_receipt``, ``set_status`` and
        ``message`` use, for whoever shows a complaint's SMS (the dashboard).
        """
        receipts = [f"complaint-receipt:{k}" for k in (row.get("key"), row.get("details_key"))
                    if k]
        return receipts, [f"complaint-status:{row['id']}:", f"complaint-message:{row['id']}:"]

    def _sms(self, key: str, to: str, lang: str, body: str,
             phone_key: str | None = None) -> OutboxItem:
        encoding, segments = sms_segments(body)
        return OutboxItem(key, self.phone_sealer.seal(to), lang,
                          seal_text(self.phone_sealer, body), encoding.value, segments,
                          phone_key=phone_key)

    def _seal(self, text: str) -> str | None:
        return self.text_sealer.seal(text) if text else None


def _day(at: Any) -> str:
    """A date in digits only: no month names to translate, no bidi marks (see protocols)."""
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d")
