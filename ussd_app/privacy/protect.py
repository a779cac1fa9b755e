"""Keep phone numbers out of storage where a pseudonym will do.

Sessions and language choices only need to recognise the same phone again,
never to read its number: a keyed hash does that, and a stolen database
without the secret key cannot be turned back into numbers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NOT_DIGIT = re.compile(r"[^0-9]")
_NUMBER = re.compile(r"\+?\d(?:[\s\-.()]*\d){5,}")


def normalise_phone(phone: str) -> str:
    """Digits only, so '+977 980-000' and '+977980000' are the same phone."""
    return _NOT_DIGIT.sub("", phone)


def redact(text: str) -> str:
    """A provider's error text with any phone-number-like run of digits masked.

    Errors are stored and logged; some providers quote the number they refused.
    """
    return _NUMBER.sub("[number]", text)


def is_withheld(phone: str) -> bool:
    """A caller with no usable number ('anonymous', 'Restricted', '+', withheld).

    All of these normalise to the same empty string: keyed on it, every such
    caller would share one identity (and read each other's drafts and cases).
    Channels key them on their own session instead (``PhoneHasher.session_key``).
    """
    return not normalise_phone(phone)


class PhoneHasher:
    def __init__(self, secret: bytes):
        self._key = hmac.new(secret, b"migrantline phone pseudonym v1", hashlib.sha256).digest()

    def key(self, phone: str) -> str:
        return hmac.new(self._key, normalise_phone(phone).encode(), hashlib.sha256).hexdigest()[:32]

    def text_digest(self, text: str) -> str:
        """Recognise the same message again (loops, repeats) without keeping it: keyed,
        since an unkeyed hash of "4826" or of a phone number is found by trying them all."""
        return hmac.new(self._key, b"text:" + text.encode(), hashlib.sha256).hexdigest()[:16]

    def session_key(self, channel: str, session_id: str) -> str:
        """A pseudonym for a caller with no number, valid for one session (or call) only:
        nothing is resumed, remembered or shown to the next withheld caller."""
        return hmac.new(self._key, f"withheld:{channel}:{session_id}".encode(),
                        hashlib.sha256).hexdigest()[:32]

    def caller_key(self, phone: str, channel: str, session_id: str) -> str:
        """``key`` for a real number, ``session_key`` for a withheld one."""
        return self.session_key(channel, session_id) if is_withheld(phone) else self.key(phone)


class Sealer:
    """Encrypts personal data at rest (AES-GCM, key derived from the secret key).

    A copy of the database alone reveals no phone number; with the secret it
    can be read back to send a message. The purpose string binds each key to
    one use, so a sealed phone number cannot be passed off as another field.
    """

    def __init__(self, secret: bytes, purpose: str = "personal data v1"):
        key = HKDF(algorithm=SHA256(), length=32, salt=b"migrantline",
                   info=purpose.encode()).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, text: str) -> str:
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, text.encode(),
                                                                   None)).decode()

    def open(self, token: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode())
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()


SEALED = "sealed:"  # a stored text encrypted at rest: what a person typed or is told


def seal_text(sealer: Sealer, text: str) -> str:
    """A text as stored when it is personal: an SMS body (a message that answers a
    person may carry what they typed), a session's inputs, an engine state with answers."""
    return SEALED + sealer.seal(text)


def open_text(sealer: Sealer, stored: str | None) -> str:
    """A stored text: sealed ones opened (raises if the key does not open it); '' when
    erased; one stored in clear (a state without answers, an older row) as it is."""
    if not stored:
        return ""
    if stored.startswith(SEALED):
        return sealer.open(stored[len(SEALED):])
    return stored


class BytesSealer:
    """Encrypts binary personal data at rest (a caller's recorded voice), like ``Sealer``.

    Raw bytes in and out (no base64: audio is stored as a BLOB, a third
    bigger for nothing otherwise). ``context`` is authenticated with the
    data, so a sealed recording copied onto another row does not open there.
    """

    def __init__(self, secret: bytes, purpose: str):
        key = HKDF(algorithm=SHA256(), length=32, salt=b"migrantline",
                   info=purpose.encode()).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, data: bytes, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, context or None)

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], context or None)
