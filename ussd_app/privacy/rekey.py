"""Re-seal every stored secret with a new secret key: ``migrantline keys rotate``.

Why a rotation re-encrypts rather than re-wraps: the reason to rotate is that
the old key may be out (a lost laptop, a leaked ``.env``). Data kept under the
old key, or under a data key the old one unwraps, would stay readable to
whoever holds it. So every sealed value is opened with the old key and sealed
with the new one, every keyed hash is recomputed, all in one transaction (a
failure changes nothing), with freed pages overwritten and the WAL truncated,
so the old key opens nothing left in the data folder.

Keyed hashes need their input to be recomputed:

* phone pseudonyms (``phone_key``): recomputed for every number the database
  holds sealed (complaints' filing and "contact me on" numbers, outbox,
  call-backs); rows of pseudonym-only tables whose number is not held anywhere
  (a language choice, a finished session, an opt-out of a number we could not
  message anyway, an erased phone's marker) are deleted: they could not be
  matched again, and an old key would still test phone numbers against them.
  So are the rows of a withheld caller (``PhoneHasher.caller_key``: a key of
  one session or call, no number anywhere): nothing of them is ever resumed.
  Rows that count for something else keep their row with the pseudonym emptied:
  complaints, a message attached to a case (whose own phone's number, when
  the case gave another, is held nowhere), outbox messages, call-backs, an
  inbound SMS's claim (a provider's retry is still recognised by its id) and
  a PIN attempt (the reference's lock-out still counts it);
* an inbound SMS's keyed digest (``PhoneHasher.text_digest``) cannot be
  recomputed (the text is not kept): it is emptied. It only spots an
  auto-responder repeating itself within ``LOOP_WINDOW`` (10 minutes) of the
  same phone, so the worst is one loop noticed a few messages late; the old
  digest would let whoever holds the old key test guesses (a PIN) against it;
* a complaint's PIN hash: its 4-digit PIN is found with the old key (10,000
  tries) and hashed with the new one;
* a failed sign-in's email hash: recomputed for operators' emails; the others
  (text someone typed) are replaced by a marker.

Dashboard cookies are signed with a key derived from the secret: every
operator signs in again. **Any new sealed column or keyed hash must be added
to the lists below**, or it becomes unreadable after a rotation (a test fills
every table and checks).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from ussd_app import errors
from ussd_app.complaints.service import TEXT_PURPOSE
from ussd_app.job_records.model import RECORD_PURPOSE, SCAN_PURPOSE
from ussd_app.privacy.protect import SEALED, BytesSealer, PhoneHasher, Sealer
from ussd_app.store import Store
from ussd_app.store import complaints as complaint_db
from ussd_app.store import job_records as job_records_db
from ussd_app.store import voice_recordings as recordings_db
from ussd_app.store.keys import Rekeying, recorded_fingerprint, rekeying

PERSONAL = "personal data v1"  # Sealer's default purpose: numbers, session states


@dataclass(frozen=True)
class SealedColumn:
    table: str
    column: str
    purpose: str = PERSONAL
    prefix: str = ""  # only values starting with it are sealed (``privacy.SEALED``)
    context_column: str | None = None  # binary (BytesSealer), authenticated with this column
    seal_plain: bool = False  # a non-empty value without the prefix is sealed too


SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    *(SealedColumn("complaints", c, PERSONAL if c == "phone_sealed" else TEXT_PURPOSE)
      for c in complaint_db.SEALED),
    *(SealedColumn("complaints", c, TEXT_PURPOSE) for c in complaint_db.RECORD_SEALED),
    *(SealedColumn("job_records", c, PERSONAL if c == "phone_sealed" else RECORD_PURPOSE)
      for c in job_records_db.SEALED),
    SealedColumn("job_record_scans", "data_sealed", SCAN_PURPOSE, context_column="record_id"),
    SealedColumn("complaint_events", "detail_sealed", TEXT_PURPOSE),
    SealedColumn("complaint_messages", "body_sealed", TEXT_PURPOSE),  # what a migrant texted
    SealedColumn("outbox", "to_sealed"),
    # Every SMS text (privacy.seal_text, the outbox's key); a body from before bodies
    # were sealed is sealed now, with the new key.
    SealedColumn("outbox", "body", prefix=SEALED, seal_plain=True),
    SealedColumn("callbacks", "phone_sealed"),
    SealedColumn("ussd_sessions", "last_text", prefix=SEALED),
    SealedColumn("ussd_sessions", "start", prefix=SEALED),  # a draft offered on redial
    SealedColumn("sms_conversations", "state", prefix=SEALED),
    SealedColumn("voice_calls", "state", prefix=SEALED),
    SealedColumn("voice_recordings", "url_sealed", "voice recording url v1"),
    SealedColumn("voice_recordings", "audio_sealed", "voice recording audio v1",
                 context_column="key"),
    SealedColumn("partners", "webhook_secret_sealed", "partner webhook secret v1"),
    SealedColumn("centre_identity", "keys_sealed", "centre private keys v1"),
    SealedColumn("centre_referrals", "remote_message_sealed", TEXT_PURPOSE),
)
# Where a number is held sealed (table, column, purpose): what phone pseudonyms can be
# recomputed from. The "contact me on" number too: its opt-out (STOP) must survive.
PHONE_SOURCES = (("complaints", "phone_sealed", PERSONAL),
                 ("complaints", "contact_phone_sealed", TEXT_PURPOSE),
                 ("job_records", "phone_sealed", PERSONAL),
                 ("outbox", "to_sealed", PERSONAL), ("callbacks", "phone_sealed", PERSONAL))
# (table, column, keep): rows whose pseudonym cannot be recomputed are deleted, or, when
# ``keep``, keep the row with the pseudonym emptied (a complaint is never deleted here).
PSEUDONYMS = (("phones", "key", False), ("ussd_sessions", "phone_key", False),
              ("complaints", "phone_key", True), ("pin_attempts", "phone_key", True),
              ("job_records", "phone_key", True),
              ("complaint_messages", "phone_key", True),
              ("sms_conversations", "phone_key", False), ("sms_inbound", "phone_key", True),
              ("sms_optouts", "phone_key", False), ("voice_calls", "phone_key", False),
              ("callbacks", "phone_key", True), ("outbox", "phone_key", True),
              ("erased_phones", "phone_key", False))
# (table, column): keyed digests of text not kept anywhere: emptied (see above).
DIGESTS = (("sms_inbound", "digest"),)
PIN_KEY = b"migrantline complaint pin v1"  # as ``Complaints``
EMAIL_KEY = b"migrantline sign-in email v1"  # as ``Accounts``
FINGERPRINT = b"migrantline key check v1"


class Unreadable(errors.Unreadable):
    """A stored value does not open with the old key: it is not the key the data uses."""


def fingerprint(secret: bytes) -> str:
    """A value that tells which key sealed the data, and nothing about the key."""
    return hmac.new(secret, FINGERPRINT, hashlib.sha256).hexdigest()


def check_fingerprint(store: Store, secret: bytes) -> bool:
    """True if ``secret`` is the key the data was sealed with (recorded at the first start).

    Why: a service started with another key (an old one after a rotation, a
    typo) would seal new data that the right key cannot read, and show every
    stored number as undecryptable; better to refuse to start.
    """
    recorded = recorded_fingerprint(store, fingerprint(secret), time.time())
    return hmac.compare_digest(recorded, fingerprint(secret))


def rotate(store: Store, old: bytes, new: bytes,
           progress: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """Re-seal and re-key everything from ``old`` to ``new`` in one transaction.

    Raises ``Unreadable`` (nothing changed) when a value does not open with
    ``old``. Returns counts per table and column.
    """
    held = recordings_db.objects_held(store)
    if held:  # re-sealing objects in a bucket is not done (yet): refused, nothing changed
        raise Unreadable(f"{held} voice recordings live in the audio store's bucket "
                         "(MIGRANTLINE_AUDIO_STORE=s3): rotation does not re-seal them yet")
    store.flush()  # buffered session progress goes in first, under the old key
    counts: dict[str, int] = {}
    # Old ciphertexts' space is zeroed, not freed; the WAL, which still holds the old
    # pages, is checkpointed and truncated after the commit.
    with rekeying(store) as rows:
        mapping = _phone_keys(rows, old, new)
        progress(f"phone numbers held sealed: {len(mapping)}")
        for column in SEALED_COLUMNS:
            count = _reseal(rows, column, old, new)
            counts[f"{column.table}.{column.column}"] = count
            progress(f"{column.table}.{column.column}: {count} re-sealed")
        for table, name, keep in PSEUDONYMS:
            rekeyed, dropped = _rekey(rows, table, name, keep, mapping)
            counts[f"{table}.{name}"] = rekeyed
            progress(f"{table}.{name}: {rekeyed} pseudonyms recomputed, {dropped} "
                     f"{'emptied' if keep else 'deleted'} (no number held for them)")
        for table, name in DIGESTS:
            count = rows.clear(table, name)
            counts[f"{table}.{name}"] = count
            progress(f"{table}.{name}: {count} emptied (keyed digests of text not kept)")
        counts["complaints.pin_hash"] = _pins(rows, old, new)
        progress(f"complaints.pin_hash: {counts['complaints.pin_hash']} recomputed")
        counts["sign-in emails"] = _emails(rows, old, new)
        progress(f"failed sign-ins: {counts['sign-in emails']} email hashes recomputed")
        rows.end_operator_sessions()
        progress("operators: every dashboard session ended (sign in again)")
        rows.set_fingerprint(fingerprint(new), time.time())
    return counts


def _open(sealer: Sealer, value: str, where: str) -> str:
    try:
        return sealer.open(value)
    except Exception as exc:
        raise Unreadable(f"{where} does not open with the current key") from exc


def _phone_keys(rows: Rekeying, old: bytes, new: bytes) -> dict[str, str]:
    """Old pseudonym -> new one, for every number held sealed."""
    old_hasher, new_hasher = PhoneHasher(old), PhoneHasher(new)
    mapping: dict[str, str] = {}
    for table, column, purpose in PHONE_SOURCES:
        sealer = Sealer(old, purpose)
        # '' is an erased number (outbox after the keep days, a call-back erased with its case)
        for rowid, value in rows.values(table, column):
            phone = _open(sealer, str(value), f"{table}.{column} of row {rowid}")
            mapping[old_hasher.key(phone)] = new_hasher.key(phone)
    return mapping


def _reseal(rows: Rekeying, column: SealedColumn, old: bytes, new: bytes) -> int:
    table, name, prefix = column.table, column.column, column.prefix
    where = f"{table}.{name}"
    if column.context_column is not None:
        opener, sealer = BytesSealer(old, column.purpose), BytesSealer(new, column.purpose)
        ids = rows.rowids(table, name)
        for rowid in ids:  # one at a time: recordings are megabytes
            data, context = rows.value_with(table, name, column.context_column, rowid)
            ctx = str(context).encode()
            try:
                plain = opener.open(bytes(data), ctx)
            except Exception as exc:
                raise Unreadable(f"{where} of row {rowid} does not open with the current "
                                 "key") from exc
            rows.set(table, name, rowid, sealer.seal(plain, ctx))
        return len(ids)
    old_sealer, new_sealer = Sealer(old, column.purpose), Sealer(new, column.purpose)
    count = 0
    for rowid, value in rows.values(table, name):  # '': nothing sealed (erased)
        text = str(value)
        if not text.startswith(prefix):
            if not column.seal_plain:
                continue  # no prefix: a state that holds no answers
            plain = text  # written before this column was sealed: sealed now
        else:
            plain = _open(old_sealer, text[len(prefix):], f"{where} of row {rowid}")
        rows.set(table, name, rowid, prefix + new_sealer.seal(plain))
        count += 1
    return count


def _rekey(rows: Rekeying, table: str, name: str, keep: bool,
           mapping: dict[str, str]) -> tuple[int, int]:
    rekeyed = dropped = 0
    emptied = "" if rows.not_null(table, name) else None  # call-backs' phone_key is NOT NULL
    for rowid, key in rows.values(table, name):  # '': already erased, nothing to recompute
        if key in mapping:
            rows.set(table, name, rowid, mapping[key])
            rekeyed += 1
        elif keep:
            rows.set(table, name, rowid, emptied)
            dropped += 1
        else:
            rows.delete(table, rowid)
            dropped += 1
    return rekeyed, dropped


def _pins(rows: Rekeying, old: bytes, new: bytes) -> int:
    """A PIN is 4 digits: found again with the old key, then hashed with the new one."""
    old_key = hmac.new(old, PIN_KEY, hashlib.sha256).digest()
    new_key = hmac.new(new, PIN_KEY, hashlib.sha256).digest()
    count = 0
    for table, rowid, reference, stored in [*(("complaints", *r) for r in rows.pin_hashes()),
                                            *(("job_records", *r) for r in
                                              rows.pin_hashes("job_records"))]:
        target = bytes.fromhex(str(stored))
        # hmac.digest: the one-shot C path, about 3x quicker than hmac.new for 10,000 tries
        pin = next((f"{n:04d}" for n in range(10000) if hmac.digest(
            old_key, f"{reference}:{n:04d}".encode(), "sha256") == target), None)
        if pin is None:
            raise Unreadable(f"the PIN of {table} row {rowid} does not match the current key")
        rows.set(table, "pin_hash", rowid,
                 hmac.digest(new_key, f"{reference}:{pin}".encode(), "sha256").hex())
        count += 1
    return count


def _emails(rows: Rekeying, old: bytes, new: bytes) -> int:
    """Failed sign-ins keep a keyed hash of the email typed: recomputed for operators'
    emails; anything else typed cannot be, and is replaced by a marker."""
    old_key = hmac.new(old, EMAIL_KEY, hashlib.sha256).digest()
    new_key = hmac.new(new, EMAIL_KEY, hashlib.sha256).digest()

    def digest(key: bytes, email: str) -> str:
        return "email#" + hmac.new(key, email.encode(), hashlib.sha256).hexdigest()[:20]

    mapping = {digest(old_key, e): digest(new_key, e) for e in rows.operator_emails()}
    count = 0
    for rowid, email in rows.login_attempt_emails():
        if email in mapping:
            rows.set("login_attempts", "email", rowid, mapping[email])
            count += 1
        else:
            rows.delete("login_attempts", rowid)
    for rowid, detail in rows.audit_email_details():
        rows.set("audit_log", "detail", rowid, mapping.get(detail, "email#(before a key rotation)"))
        count += detail in mapping
    return count
