"""Content bundles: a content tree as the central store serves it, signed and by hash.

``migrantline content publish DIR OUT`` checks DIR, then adds a version to OUT,
a folder any static HTTP server (nginx, object storage) can serve as it is::

    OUT/latest.json                        the newest version: the manifest and its signature
    OUT/versions/<version>/manifest.json   every version published, kept (manifest.sig beside)
    OUT/files/<sha256>                     every file of every version, and every manifest
                                           part, named by the SHA-256 of its bytes
    OUT/packs/<part sha256>                a part's files end to end: one request for many
                                           (see ``packs.py``)

The manifest is a JSON text signed with Ed25519 (as bytes, so nothing is
re-serialised before the check). It names the version, when it was
published, the content version of the tree, totals, and its *parts*: lists of
files (path, sha256, size), one per folder and at most ``PART_FILES`` files
each, stored under ``files/`` like any file. The signature covers the parts'
hashes, so it covers every byte of every file. A deployment fetches only the
parts it does not have: after one article changed, a sync costs the manifest,
one part and the article, however many thousand audio files the tree has.

Everything under DIR is published except hidden names (``.git``, editor swap
files): the content files, ``agencies.csv`` and any audio kept in the tree
(``audio/<lang>/...``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ussd_app.content.files import sha256_file, write_atomic
from ussd_app.content.packs import gzip_beside, write_pack
from ussd_app.errors import BundleError

FORMAT = 1
LATEST = "latest.json"
PART_FILES = 100  # files per manifest part
MAX_ENVELOPE_BYTES = 16_000_000
MAX_PART_BYTES = 4_000_000
MAX_PATH = 512
VERSION_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


# ---------------------------------------------------------------- keys


def keygen(directory: Path) -> tuple[Path, Path]:
    """Write a new key pair, ``signing.key`` (0600) and ``signing.pub``; never overwrite."""
    private, public = directory / "signing.key", directory / "signing.pub"
    for path in (private, public):
        if path.exists():
            raise BundleError(f"{path} already exists; keys are never overwritten (a new key "
                              "would make every deployment refuse new bundles): choose "
                              "another folder")
    key = Ed25519PrivateKey.generate()
    directory.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def load_private_key(path: Path) -> Ed25519PrivateKey:
    hint = "make one with `migrantline content keygen DIR`"
    key = _read_key(path, "signing key", "private", hint, (ValueError, TypeError),
                    lambda data: serialization.load_pem_private_key(data, password=None))
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path} is not an Ed25519 key; {hint}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    hint = "use the signing.pub written by `migrantline content keygen`"
    key = _read_key(path, "public key", "public", hint, (ValueError,),
                    serialization.load_pem_public_key)
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path} is not an Ed25519 public key; {hint}")
    return key


def _read_key(path: Path, name: str, kind: str, hint: str,
              errors: tuple[type[Exception], ...], load: Callable[[bytes], object]) -> object:
    """The key in a PEM file, or a ``BundleError`` that names the file and what to do."""
    try:
        return load(path.read_bytes())
    except OSError as exc:
        raise BundleError(f"cannot read the {name} {path}: {exc.strerror}") from None
    except errors as exc:
        raise BundleError(f"{path} is not a PEM {kind} key ({exc}); {hint}") from None


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key, shown when a signature does not match."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# ---------------------------------------------------------------- manifests


@dataclass(frozen=True)
class Entry:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Part:
    name: str
    sha256: str
    size: int
    files: int


@dataclass(frozen=True)
class Manifest:
    version: str
    created: datetime
    content_version: str
    files: int
    bytes: int
    digest: str  # of the file list: the same tree published twice has the same digest
    parts: tuple[Part, ...]


def path_problem(path: Any) -> str | None:
    """Why a manifest path may not be written under a tree, or None when it may."""
    if not isinstance(path, str) or not path:
        return "not a path"
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        return "path too long"
    if path.startswith("/") or _CONTROL.search(path) or re.match(r"^[A-Za-z]:", path):
        return "not a relative POSIX path"
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            return "path leaves the tree or has an empty part"
        if segment.startswith("."):
            return "hidden names are not published"
    return None


def tree_digest(entries: Iterable[Entry]) -> str:
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.path):
        digest.update(f"{entry.path}\0{entry.sha256}\0{entry.size}\n".encode())
    return digest.hexdigest()


def check_entries(entries: Iterable[Entry]) -> list[Entry]:
    """The entries, if every path stays inside the tree and none is named twice."""
    seen: set[str] = set()
    folders: set[str] = set()
    checked = []
    for entry in entries:
        problem = path_problem(entry.path)
        if problem:
            raise BundleError(f"the manifest names {entry.path!r}: {problem}")
        if entry.path in seen:
            raise BundleError(f"the manifest names {entry.path!r} twice")
        seen.add(entry.path)
        folders.update(str(p) for p in PurePosixPath(entry.path).parents if str(p) != ".")
        checked.append(entry)
    clash = seen & folders
    if clash:
        raise BundleError(f"the manifest names {sorted(clash)[0]!r} as a file and as a folder")
    return checked


def _entry(data: Any) -> Entry:
    if not (isinstance(data, dict) and isinstance(data.get("sha256"), str)
            and SHA_RE.match(data["sha256"]) and type(data.get("size")) is int
            and data["size"] >= 0 and isinstance(data.get("path"), str)):
        raise BundleError(f"a manifest part lists a malformed file: {str(data)[:120]}")
    return Entry(data["path"], data["sha256"], data["size"])


def parse_part(data: bytes) -> list[Entry]:
    try:
        parsed = json.loads(data)
        files = parsed["files"]
        if not isinstance(files, list):
            raise TypeError
    except (ValueError, TypeError, KeyError):
        raise BundleError("a manifest part is not valid JSON with a list of files") from None
    return [_entry(item) for item in files]


def parse_manifest(text: str) -> Manifest:
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise BundleError(f"manifest format {data.get('format')!r} is not {FORMAT}: is "
                              "this deployment older than the publisher? upgrade it")
        version = data["version"]
        if not isinstance(version, str) or not VERSION_RE.match(version):
            raise BundleError(f"the manifest's version {version!r} is malformed")
        created = datetime.fromisoformat(data["created"].replace("Z", "+00:00"))
        parts = tuple(Part(str(p["name"]), p["sha256"], int(p["size"]), int(p["files"]))
                      for p in data["parts"])
        for part in parts:
            if not (isinstance(part.sha256, str) and SHA_RE.match(part.sha256)
                    and 0 <= part.size <= MAX_PART_BYTES):
                raise BundleError(f"the manifest's part {part.name!r} is malformed")
        return Manifest(version, created, str(data["content_version"]), int(data["files"]),
                        int(data["bytes"]), str(data["digest"]), parts)
    except BundleError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BundleError(f"the manifest is malformed ({exc.__class__.__name__}: {exc})") from None


def make_envelope(manifest_text: str, key: Ed25519PrivateKey) -> bytes:
    """``latest.json``: the manifest text and its signature, in one file written at once."""
    signature = key.sign(manifest_text.encode("utf-8"))
    return json.dumps({"format": FORMAT, "key": key_id(key.public_key()),
                       "manifest": manifest_text,
                       "signature": base64.b64encode(signature).decode()},
                      ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


def open_envelope(data: bytes, key: Ed25519PublicKey) -> Manifest:
    """The manifest of a ``latest.json``, if its signature is good; else ``BundleError``."""
    try:
        envelope = json.loads(data)
        text = envelope["manifest"]
        signature = base64.b64decode(envelope["signature"], validate=True)
        if not isinstance(text, str):
            raise TypeError
    except (ValueError, TypeError, KeyError):
        raise BundleError("latest.json is not a signed manifest (not JSON, or no manifest "
                          "and signature): is MIGRANTLINE_CENTRAL_URL the folder publish "
                          "wrote?") from None
    try:
        key.verify(signature, text.encode("utf-8"))
    except InvalidSignature:
        signer = envelope.get("key") if isinstance(envelope, dict) else None
        raise BundleError(
            "BAD SIGNATURE: the manifest does not match the public key in "
            f"MIGRANTLINE_CENTRAL_PUBKEY (key id {key_id(key)}; the bundle claims "
            f"{signer or 'no key id'}). It was tampered with, or signed with another key; "
            "nothing was installed. If the key changed on purpose, install the new "
            "signing.pub") from None
    return parse_manifest(text)


# ---------------------------------------------------------------- publishing


def scan(directory: Path) -> list[tuple[Entry, Path]]:
    """Every file under ``directory`` but hidden ones, with its hash and size."""
    found = []
    for folder, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if not path.is_file():
                continue
            rel = path.relative_to(directory).as_posix()
            problem = path_problem(rel)
            if problem:
                raise BundleError(f"{rel}: cannot be published ({problem}); rename it")
            found.append((Entry(rel, sha256_file(path), path.stat().st_size), path))
    return found


def _store(out: Path, sha: str, source: Path | bytes) -> bool:
    """Put a file under ``OUT/files/<sha256>``; False when it was there already."""
    target = out / "files" / sha
    if target.is_file():
        return False
    write_atomic(target, source if isinstance(source, bytes) else source.read_bytes())
    gzip_beside(target)
    return True


def _parts(entries: list[Entry]) -> list[tuple[str, bytes, int]]:
    """The file list as parts: one per folder, split every PART_FILES files."""
    by_folder: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: e.path):
        by_folder.setdefault(str(PurePosixPath(entry.path).parent), []).append(entry)
    parts = []
    for folder, items in sorted(by_folder.items()):
        for start in range(0, len(items), PART_FILES):
            chunk = items[start:start + PART_FILES]
            name = folder if len(items) <= PART_FILES else f"{folder}#{start // PART_FILES}"
            lines = ",\n".join(json.dumps({"path": e.path, "sha256": e.sha256, "size": e.size},
                                          ensure_ascii=False, separators=(",", ":"))
                               for e in chunk)
            data = f'{{"files":[\n{lines}\n]}}\n'.encode()
            parts.append((name, data, len(chunk)))
    return parts


def read_latest(out: Path, key: Ed25519PublicKey) -> Manifest | None:
    """The manifest of OUT's newest version if this key signed it, else None."""
    try:
        return open_envelope((out / LATEST).read_bytes(), key)
    except (OSError, BundleError):
        return None


@dataclass(frozen=True)
class Published:
    version: str
    files: int
    bytes: int
    new_files: int
    new_bytes: int
    unchanged: bool  # nothing changed since the newest version: OUT was left as it was


def publish(directory: Path, out: Path, key: Ed25519PrivateKey, content_version: str,
            now: Callable[[], datetime] = lambda: datetime.now(UTC),
            entries: list[tuple[Entry, Path]] | None = None) -> Published:
    """Add a version of ``directory`` (already checked) to ``out``; return what was done.

    Files go first, then the version's manifest, and ``latest.json`` last, each
    by an atomic rename: a deployment syncing meanwhile sees the old version or
    the new one, complete.
    """
    scanned = scan(directory) if entries is None else entries
    listing = check_entries(e for e, _ in scanned)
    digest = tree_digest(listing)
    total = sum(e.size for e in listing)
    latest = read_latest(out, key.public_key())
    if latest and latest.digest == digest:
        return Published(latest.version, len(listing), total, 0, 0, unchanged=True)
    new_files = new_bytes = 0
    for entry, path in scanned:
        if _store(out, entry.sha256, path):
            new_files += 1
            new_bytes += entry.size
    sources = {entry.sha256: path for entry, path in scanned}
    parts = []
    for name, data, count in _parts(listing):
        sha = hashlib.sha256(data).hexdigest()
        _store(out, sha, data)
        write_pack(out, sha, parse_part(data), sources)
        parts.append({"name": name, "sha256": sha, "size": len(data), "files": count})
    created = now().astimezone(UTC)
    version = f"{created:%Y%m%dT%H%M%S}Z-{digest[:8]}"
    manifest = json.dumps({
        "format": FORMAT, "version": version,
        "created": created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "content_version": content_version, "files": len(listing), "bytes": total,
        "digest": digest, "parts": parts,
    }, ensure_ascii=False, separators=(",", ":"))
    envelope = make_envelope(manifest, key)
    signature = json.loads(envelope)["signature"]
    write_atomic(out / "versions" / version / "manifest.json", manifest.encode("utf-8"))
    write_atomic(out / "versions" / version / "manifest.sig", signature.encode() + b"\n")
    write_atomic(out / LATEST, envelope)
    return Published(version, len(listing), total, new_files, new_bytes, unchanged=False)
