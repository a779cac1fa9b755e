"""Keep phone numbers out of storage where a pseudonym will do.

Sessions and language choices only need to recognise the same phone again,
never to read its number: a keyed hash does that, and a stolen database
without the secret key cannot be turned back into numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_NOT_DIGIT = re.compile(r"[^0-9]")


def normalise_phone(phone: str) -> str:
    """Digits only, so '+977 980-000' and '+977980000' are the same phone."""
    return _NOT_DIGIT.sub("", phone)


class PhoneHasher:
    def __init__(self, secret: bytes):
        self._key = hmac.new(secret, b"migrantline phone pseudonym v1", hashlib.sha256).digest()

    def key(self, phone: str) -> str:
        return hmac.new(self._key, normalise_phone(phone).encode(), hashlib.sha256).hexdigest()[:32]


def mask_phone(phone: str) -> str:
    """For logs and lists: the country code and the last two digits only."""
    digits = normalise_phone(phone)
    if len(digits) <= 4:
        return "*" * len(digits)
    return f"+{digits[:3]}{'*' * (len(digits) - 5)}{digits[-2:]}"
