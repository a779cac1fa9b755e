"""The keys of a centre, its signed card, and the envelopes centres send each other.

Pure functions over bytes and JSON: no database, no network.

A centre has two key pairs: Ed25519 to sign, X25519 to be encrypted to. Its
*card* is a JSON document (name, country, languages, URL, both public keys)
signed with its own signing key; the card is self-signed, so the trust comes
from how it travelled (handed over, or its fingerprint read out on the phone),
not from the signature: the signature only proves the card is whole and that
whoever made it holds the signing key.

An *envelope* carries one message between two centres:

    {"v": 1, "from": <sender's signing key>, "to": <receiver's box key>,
     "box": <sealed payload>, "sig": <Ed25519 over DOMAIN + to + box>}

The payload is sealed to the receiver's X25519 key the way libsodium's sealed
boxes are (an ephemeral key pair per message; here X25519 + HKDF-SHA256 +
ChaCha20-Poly1305, all from ``cryptography``), so only the receiver opens it;
the signature over the sealed bytes lets the receiver refuse an unknown or
revoked sender, or a changed byte, before opening anything. The payload names
its sender's key again, inside the box: a known partner cannot strip another's
signature and pass the box off as its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CARD_VERSION = 1
ENVELOPE_VERSION = 1
CARD_DOMAIN = b"migrantline centre card v1\x00"
ENVELOPE_DOMAIN = b"migrantline envelope v1\x00"
BOX_INFO = b"migrantline sealed box v1"
MAX_CARD_BYTES = 16 * 1024


class BadCard(ValueError):
    """A card file that is not a whole, self-consistent, signed card (the message says why)."""


class BadEnvelope(ValueError):
    """An envelope that cannot be read, is not for us, or does not verify: ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    if not isinstance(text, str) or len(text) > 10**7:
        raise ValueError("not base64 text")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(sign_public: str) -> str:
    """What two administrators read to each other to check a card: 16 hex digits in 4s."""
    digest = hashlib.sha256(unb64(sign_public)).hexdigest()[:16].upper()
    return " ".join(digest[i:i + 4] for i in range(0, 16, 4))


@dataclass(frozen=True)
class KeyPair:
    """A centre's private keys (raw 32 bytes each) and their public halves (base64)."""

    sign_private: bytes
    box_private: bytes

    @staticmethod
    def generate() -> KeyPair:
        return KeyPair(Ed25519PrivateKey.generate().private_bytes_raw(),
                       X25519PrivateKey.generate().private_bytes_raw())

    def dumps(self) -> str:
        return json.dumps({"sign": b64(self.sign_private), "box": b64(self.box_private)})

    @staticmethod
    def loads(text: str) -> KeyPair:
        data = json.loads(text)
        return KeyPair(unb64(data["sign"]), unb64(data["box"]))

    @property
    def sign_public(self) -> str:
        key = Ed25519PrivateKey.from_private_bytes(self.sign_private).public_key()
        return b64(key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    @property
    def box_public(self) -> str:
        key = X25519PrivateKey.from_private_bytes(self.box_private).public_key()
        return b64(key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, data: bytes) -> str:
        return b64(Ed25519PrivateKey.from_private_bytes(self.sign_private).sign(data))


def verify(sign_public: str, signature: str, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(unb64(sign_public)).verify(unb64(signature), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# ---------------------------------------------------------------- cards

CARD_FIELDS = ("version", "name", "country", "languages", "url", "sign_key", "box_key",
               "issued_at")


def make_card(keys: KeyPair, name: str, country: str, languages: list[str], url: str,
              issued_at: float) -> dict[str, Any]:
    card = {"version": CARD_VERSION, "name": name, "country": country,
            "languages": list(languages), "url": url, "sign_key": keys.sign_public,
            "box_key": keys.box_public, "issued_at": int(issued_at)}
    return {"card": card, "signature": keys.sign(CARD_DOMAIN + canonical(card))}


def read_card(raw: bytes) -> dict[str, Any]:
    """The card inside a card file, checked whole and signed by its own key; ``BadCard``."""
    if len(raw) > MAX_CARD_BYTES:
        raise BadCard("the file is too large to be a centre card")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadCard("the file is not a centre card (not JSON)") from None
    card = data.get("card") if isinstance(data, dict) else None
    if not isinstance(card, dict) or sorted(card) != sorted(CARD_FIELDS):
        raise BadCard("the file is not a centre card (its fields are not a card's)")
    if card["version"] != CARD_VERSION:
        raise BadCard(f"card version {card['version']!r} is not known here")
    for name in ("name", "country", "url", "sign_key", "box_key"):
        if not isinstance(card[name], str) or not card[name].strip():
            raise BadCard(f"the card has no {name}")
    if not isinstance(card["languages"], list) or not all(
            isinstance(x, str) for x in card["languages"]):
        raise BadCard("the card's languages are not a list of codes")
    try:
        if len(unb64(card["sign_key"])) != 32 or len(unb64(card["box_key"])) != 32:
            raise ValueError
    except ValueError:
        raise BadCard("the card's keys are not keys") from None
    if not verify(card["sign_key"], str(data.get("signature", "")),
                  CARD_DOMAIN + canonical(card)):
        raise BadCard("the card's signature does not verify: it was changed after it was made")
    return card


# ---------------------------------------------------------------- sealed boxes


def _box_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=ephemeral + recipient,
                info=BOX_INFO).derive(shared)


def seal_to(box_public: str, plain: bytes) -> bytes:
    """``plain`` readable only by the holder of ``box_public``'s private key."""
    recipient = unb64(box_public)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    key = _box_key(shared, ephemeral_public, recipient)
    return ephemeral_public + ChaCha20Poly1305(key).encrypt(bytes(12), plain, None)


def open_box(keys: KeyPair, sealed: bytes) -> bytes:
    """The plain bytes; ``InvalidTag``/``ValueError`` when they were not sealed to us."""
    if len(sealed) < 32 + 16:
        raise ValueError("too short")
    private = X25519PrivateKey.from_private_bytes(keys.box_private)
    recipient = unb64(keys.box_public)
    shared = private.exchange(X25519PublicKey.from_public_bytes(sealed[:32]))
    key = _box_key(shared, sealed[:32], recipient)
    return ChaCha20Poly1305(key).decrypt(bytes(12), sealed[32:], None)


# ---------------------------------------------------------------- envelopes


def seal_envelope(keys: KeyPair, to_box_key: str, payload: dict[str, Any]) -> bytes:
    """The envelope (JSON bytes) of ``payload``: sealed to the receiver, signed by us."""
    inner = canonical({**payload, "sender": keys.sign_public})
    box = b64(seal_to(to_box_key, inner))
    signature = keys.sign(ENVELOPE_DOMAIN + to_box_key.encode() + b"\x00" + box.encode())
    return canonical({"v": ENVELOPE_VERSION, "from": keys.sign_public, "to": to_box_key,
                      "box": box, "sig": signature})


def read_envelope(raw: bytes) -> dict[str, Any]:
    """The envelope's outer fields, checked for shape only; ``BadEnvelope("malformed")``."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadEnvelope("malformed") from None
    if not isinstance(data, dict) or data.get("v") != ENVELOPE_VERSION or not all(
            isinstance(data.get(k), str) for k in ("from", "to", "box", "sig")):
        raise BadEnvelope("malformed")
    return data


def open_envelope(keys: KeyPair, envelope: dict[str, Any]) -> dict[str, Any]:
    """The payload, once the signature is checked against ``envelope["from"]`` (whose
    trust the caller has checked) and the box opened with our key. ``BadEnvelope``:
    ``not_for_us``, ``bad_signature`` (tampered), ``undecryptable``, ``sender_mismatch``."""
    if envelope["to"] != keys.box_public:
        raise BadEnvelope("not_for_us")
    signed = ENVELOPE_DOMAIN + envelope["to"].encode() + b"\x00" + envelope["box"].encode()
    if not verify(envelope["from"], envelope["sig"], signed):
        raise BadEnvelope("bad_signature")
    try:
        payload = json.loads(open_box(keys, unb64(envelope["box"])).decode("utf-8"))
    except (InvalidTag, ValueError, UnicodeDecodeError):
        raise BadEnvelope("undecryptable") from None
    if not isinstance(payload, dict) or payload.get("sender") != envelope["from"]:
        raise BadEnvelope("sender_mismatch")
    return payload


def new_id() -> str:
    """An idempotency id: 128 random bits."""
    return b64(os.urandom(16))
