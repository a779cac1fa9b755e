"""Packs: every file of one manifest part in one download.

A fresh sync of a tree of 10,000 small files paid one request, and one round
trip, per file. ``publish`` therefore also writes, for each manifest part::

    OUT/packs/<part sha256>    the part's files, each once, in the part's order, end to end

No index is needed and none is trusted: the signed part lists each file's
size and SHA-256, so where each file starts follows from the part, and each
file cut out of a pack is checked against its SHA-256 like a file fetched on
its own. The pack is named by the part's hash, so it is as immutable as
``files/``: a static server or a bucket serves it, and an interrupted
download resumes with a Range request. A central store published before
packs existed answers 404: sync then fetches that part's files one by one.

Text compresses (YAML, catalogs, the registry: about a fifth), audio does not
(MP3): a pack or file that gzip makes a tenth smaller gets ``<name>.gz``
beside it, which a server with ``gzip_static`` sends to a sync that asks for
gzip. A download that resumes asks for the plain bytes from where it stopped.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ussd_app.content.files import atomic_file

GZIP_WORTH = 0.9  # a .gz beside a pack or file only when it saves at least a tenth
GZIP_SAMPLE = 64 * 1024  # judged from the first bytes: MP3 and WAV packs are not tried whole
PACK_MIN_FILES = 8  # fewer missing files than this: fetch them one by one
PACK_MIN_SHARE = 0.5  # and when the missing bytes are under half the pack's, too
SAVE_EVERY = 0.5  # seconds between writes of an arriving pack's resume point


class Entry(Protocol):
    """A file a part lists (``bundle.Entry``; not imported: bundle writes packs)."""

    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...


def members(entries: Iterable[Entry]) -> list[tuple[str, int]]:
    """The (sha256, size) a part's pack holds, in order: each distinct file once."""
    seen: set[str] = set()
    found = []
    for entry in entries:
        if entry.sha256 not in seen:
            seen.add(entry.sha256)
            found.append((entry.sha256, entry.size))
    return found


def write_pack(out: Path, part_sha: str, entries: Iterable[Entry], sources: Mapping[str, Path]
               ) -> bool:
    """``OUT/packs/<part_sha>`` from the files themselves; False when it is there."""
    target = out / "packs" / part_sha
    if target.is_file():
        return False
    with atomic_file(target) as fh:
        for sha, _ in members(entries):
            with sources[sha].open("rb") as source:
                while chunk := source.read(1 << 20):
                    fh.write(chunk)
    gzip_beside(target)
    return True


def gzip_beside(path: Path) -> bool:
    """``<path>.gz`` when gzip makes ``path`` at least a tenth smaller (text: nodes, catalogs,
    the registry); a server with ``gzip_static`` (nginx) sends it to a sync asking for gzip,
    any other server the file itself. Deterministic (no name, no time in the header)."""
    size = path.stat().st_size
    if size < 512:
        return False
    with path.open("rb") as fh:
        sample = fh.read(GZIP_SAMPLE)
    if len(zlib.compress(sample, 6)) > GZIP_WORTH * len(sample):
        return False
    target = path.with_name(path.name + ".gz")
    with atomic_file(target) as out, path.open("rb") as source:
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=6,
                           mtime=0) as packed:
            while chunk := source.read(1 << 20):
                packed.write(chunk)
    if target.stat().st_size > GZIP_WORTH * size:
        target.unlink()
        return False
    return True


@dataclass
class PackPlan:
    """One pack to fetch: the part it belongs to and the files wanted from it."""

    part_sha: str
    name: str  # the part's name, for messages
    size: int
    members: list[tuple[str, int]]
    wanted: set[str]


def plan(parts: Iterable[tuple[str, str, Sequence[Entry]]], wanted: Mapping[str, tuple[int, str]]
         ) -> tuple[list[PackPlan], dict[str, tuple[int, str]]]:
    """Which parts are worth a pack, and which files to fetch on their own.

    A pack when many of a part's files are missing (a fresh sync, a new
    language); single files when a few changed, so an edited article still
    costs only the article.
    """
    packs: list[PackPlan] = []
    single: dict[str, tuple[int, str]] = {}
    taken: set[str] = set()
    for part_sha, name, entries in parts:
        inside = members(entries)
        missing = {sha for sha, _ in inside if sha in wanted and sha not in taken}
        size = sum(s for _, s in inside)
        missing_bytes = sum(s for sha, s in inside if sha in missing)
        if len(missing) >= PACK_MIN_FILES and missing_bytes >= PACK_MIN_SHARE * size:
            packs.append(PackPlan(part_sha, name, size, inside, missing))
            taken |= missing
    for sha, what in wanted.items():
        if sha not in taken:
            single[sha] = what
    return packs, single


class PackSink:
    """A pack cut into its files as it arrives: each wanted file is written once,
    hashed on the way, and kept only if it matches the signed part.

    Nothing the size of the pack is written or read back (a pack was once saved whole,
    then split: every byte went to disk twice and was read once more). An
    interrupted pack resumes where it stopped: ``<into>/pack-<part>.at`` says up to
    which file boundary the pack is in (the files before it are in ``into``) and
    the file being received is ``<into>/<sha256>.part``, hashed again on resume.
    A file that fails its hash costs that file again (``bad``), not the pack.

    That boundary is written at most every ``SAVE_EVERY`` seconds and when the pack
    stops, in place (same width, no truncation): rewriting a small file per member
    cost 2 ms each on ext4 (a truncated file's blocks are flushed before reuse), 70%
    of a fresh sync of 10,000 files. A crash loses at most that much progress; the
    files already whole stay whole.
    """

    def __init__(self, plan_: PackPlan, into: Path):
        self.members, self.wanted, self.into = plan_.members, plan_.wanted, into
        self.state = into / f"pack-{plan_.part_sha}.at"
        self._dir = os.fspath(into)  # joined as strings: a Path per member cost 40 us
        self.size = sum(size for _, size in self.members)
        self.starts: list[int] = []
        at = 0
        for _, size in self.members:
            self.starts.append(at)
            at += size
        self._index = 0  # the member being received
        self._left = 0  # its bytes still to come
        self._digest: Any = None
        self._out: BinaryIO | None = None
        self._partial = ""  # the ``.part`` file ``_out`` writes
        self._bad: set[str] = set()
        self._good: set[str] = set()  # received whole and checked in this run
        self._state_fd: int | None = None
        self._unsaved: int | None = None  # a boundary reached but not yet written
        self._saved_at = 0.0

    # ------------------------------------------------------------ resuming

    def _boundary(self) -> int:
        try:
            at = int(self.state.read_text())
        except (OSError, ValueError):
            return 0
        return at if at in self.starts or at == self.size else 0

    def resume_from(self) -> int | None:
        """Bytes of the pack already in; None when every file has been received."""
        at = self._boundary()
        if at >= self.size and self.size:
            return None
        index = self.starts.index(at) if self.members else 0
        if not self.members:
            return None
        sha, size = self.members[index]
        partial = self.into / f"{sha}.part"
        if sha in self.wanted and partial.is_file():
            have = partial.stat().st_size
            if have >= size:  # not ours to trust
                partial.unlink()
                have = 0
            return at + have
        return at

    def open(self, at: int) -> None:
        """Receive from byte ``at`` of the pack (0: from the start, anything kept dropped)."""
        self.close()
        if at == 0:
            self._unsaved = None
            self.state.unlink(missing_ok=True)
        index = max(i for i, start in enumerate(self.starts) if start <= at) \
            if self.members else 0
        self._begin(index, at - self.starts[index] if self.members else 0)

    def _begin(self, index: int, within: int) -> None:
        self._index = index
        if index >= len(self.members):
            self._left = 0
            return
        sha, size = self.members[index]
        self._left = size - within
        self._digest, self._out = None, None
        if sha in self.wanted:
            self._digest = hashlib.sha256()
            self._partial = os.path.join(self._dir, f"{sha}.part")
            if within:
                with open(self._partial, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        self._digest.update(chunk)
            self._out = open(self._partial, "ab" if within else "wb")  # noqa: SIM115 (closed in _finish)
        if self._left == 0:  # an empty file: whole as soon as it starts
            self._finish()

    # ------------------------------------------------------------ receiving

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._index >= len(self.members):
                raise ValueError("more bytes than the pack's files")
            take = view[:self._left]
            if self._out is not None:
                self._digest.update(take)
                self._out.write(take)
            self._left -= len(take)
            view = view[len(take):]
            if self._left == 0:
                self._finish()

    def _finish(self) -> None:
        sha, _ = self.members[self._index]
        if self._out is not None:
            self._out.close()
            partial = self._partial
            if self._digest.hexdigest() == sha:
                os.chmod(partial, 0o444)
                os.replace(partial, os.path.join(self._dir, sha))
                self._good.add(sha)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)
                self._bad.add(sha)
            self._out = None
        end = self.starts[self._index] + self.members[self._index][1]
        self._unsaved = end
        if time.monotonic() - self._saved_at >= SAVE_EVERY:
            self._save()
        self._begin(self._index + 1, 0)

    def _save(self) -> None:
        if self._unsaved is None:
            return
        if self._state_fd is None:
            self._state_fd = os.open(self.state, os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(self._state_fd, f"{self._unsaved:020d}".encode(), 0)
        self._unsaved, self._saved_at = None, time.monotonic()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        self._save()
        if self._state_fd is not None:
            os.close(self._state_fd)
            self._state_fd = None

    def discard(self) -> None:
        """Start again from the first byte (the server's answer did not match)."""
        self._unsaved = None
        self.close()
        self.state.unlink(missing_ok=True)
        for sha, _ in self.members:
            (self.into / f"{sha}.part").unlink(missing_ok=True)

    def result(self) -> tuple[dict[str, Path], set[str]]:
        """The wanted files received whole and checked, and those to fetch on their own."""
        self._unsaved = None
        self.close()
        self.state.unlink(missing_ok=True)
        # Files received in this run are known whole; only the others (an earlier,
        # interrupted run's, or missing) are looked for on disk.
        good = {sha: self.into / sha for sha in self._good & self.wanted}
        for sha in self.wanted - self._good:
            if (self.into / sha).is_file():
                good[sha] = self.into / sha
            (self.into / f"{sha}.part").unlink(missing_ok=True)
        return good, (set(self.wanted) - set(good)) | (self._bad - set(good))
