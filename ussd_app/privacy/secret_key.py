"""The secret key: how strong it must be, where it is kept when unset, and the
data folder kept private.

Moved out of ``settings.py`` (which re-exports these names) so that the list of
settings and their typed reading stay one module of readable size.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import zlib
from pathlib import Path

from ussd_app.errors import ConfigError

log = logging.getLogger(__name__)


KEY_HELP = ("make one with `migrantline keys generate` (or `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`) and set it in MIGRANTLINE_SECRET_KEY")
MIN_KEY_BITS = 256
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9_\-+/]+=*")


class SecretKeyError(ConfigError):
    """The secret key is unusable (too weak); the message says how to make a good one."""


def key_bits(key: str) -> float:
    """A conservative estimate of the entropy of ``key``, in bits.

    Why an estimate and not a rule on length: the key derives every encryption
    key of the data at rest, so a short or patterned one (``a``, ``aaaa…``,
    ``password…``) makes a stolen database readable by guessing. Per character
    a key is credited with what its alphabet allows (hex 4 bits, base64 6
    bits, otherwise log2 of the character classes it uses, and 2 bits for words
    separated by spaces); then no more than
    its zlib-compressed size, so repeated or patterned text counts for little.
    """
    if not key:
        return 0.0
    if _HEX.fullmatch(key):
        alphabet = 16
    elif _BASE64.fullmatch(key):
        alphabet = 64
    else:
        alphabet = sum(size for test, size in (
            (str.islower, 26), (str.isupper, 26), (str.isdigit, 10),
            (lambda c: not c.isalnum(), 33)) if any(test(c) for c in key))
    by_alphabet = len(key) * math.log2(alphabet) if alphabet > 1 else 0.0
    if any(c.isspace() for c in key):  # words: English carries about 2 bits a letter
        by_alphabet = min(by_alphabet, 2.0 * len(key))
    unique = len(set(key))
    if unique < 8:  # 'aaaa…', 'abab…': whatever the length
        by_alphabet = min(by_alphabet, len(key) * math.log2(max(unique, 1)) / 4)
    by_compression = 8.0 * max(len(zlib.compress(key.encode(), 9)) - 6, 0)
    return min(by_alphabet, by_compression)


def check_key(key: str, name: str = "MIGRANTLINE_SECRET_KEY") -> None:
    """Refuse a key of less than 256 bits of (estimated) entropy, saying how to make one."""
    bits = key_bits(key)
    if bits < MIN_KEY_BITS:
        raise SecretKeyError(
            f"{name} is too weak (about {int(bits)} bits of entropy; at least "
            f"{MIN_KEY_BITS} are needed, e.g. 43 random base64 or 64 hex characters): "
            + KEY_HELP)


def key_file(data_dir: Path) -> Path:
    return data_dir / "secret_key"


def secret_key(configured: str | None, data_dir: Path, check: bool = True,
               shared: bool = False) -> bytes:
    """The configured secret, or one made once and kept beside the database.

    ``check=False`` only for ``keys rotate``, which must still open data sealed
    with an old weak key to re-seal it with a strong one. ``shared``: the database
    is PostgreSQL, shared by nodes that would each make their own key and so hash
    and seal differently: none is made, the setting is required.
    """
    if shared and not configured:
        raise SecretKeyError(
            "MIGRANTLINE_SECRET_KEY is required with PostgreSQL: every node must hash and seal "
            "with the same key (make one with `migrantline keys generate`, set it on every node)")
    if configured:
        key = str(configured).strip()
        if check:
            check_key(key)
        return key.encode()
    path = key_file(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if check:
        check_key(key, str(path))
    return key.encode()


def key_warning(configured: str | None, data_dir: Path) -> str | None:
    """What to say at every start when the key lives in the data folder (or None).

    Said at every start, not only the first: a copy of the data folder (a
    backup, a lost laptop) then holds the key with the data it protects.
    """
    if configured:
        return None
    return (f"MIGRANTLINE_SECRET_KEY is not set: the key is kept in {key_file(data_dir)}, "
            "beside the data it protects, so a copy of the data folder can be read. Set "
            "MIGRANTLINE_SECRET_KEY in the environment (`migrantline keys generate`, or keep "
            f"the present key: its value is in that file), then delete {key_file(data_dir)}.")


def secure_data_dir(data_dir: Path) -> None:
    """The data folder 0700 and everything in it owner-only (files 0600, folders 0700).

    Why at every start and not only at creation: folders made by an older
    version (0755, files 0644) are fixed too. Other local users then cannot
    read the database, its WAL and SHM, the key or generated audio.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for root, dirs, files in os.walk(data_dir):
        _chmod(Path(root), 0o700)
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                _chmod(path, 0o600)
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except OSError as exc:  # not ours (a mounted folder, say): say so, do not stop
        log.warning("cannot make %s private (%s): do it by hand (chmod %o)", path,
                    exc.strerror, mode)
