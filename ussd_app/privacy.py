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


def normalise_phone(phone: str) -> str:
    """Digits only, so '+977 980-000' and '+977980000' are the same phone."""
    return _NOT_DIGIT.sub("", phone)


class PhoneHasher:
    def __init__(self, secret: bytes):
        self._key = hmac.new(secret, b"migrantline phone pseudonym v1", hashlib.sha256).digest()

    def key(self, phone: str) -> str:
        return hmac.new(self._key, normalise_phone(phone).encode(), hashlib.sha256).hexdigest()[:32]


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
