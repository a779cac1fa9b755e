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
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ussd_app.content.files import atomic_file

PACK_MIN_FILES = 8  # fewer missing files than this: fetch them one by one
PACK_MIN_SHARE = 0.5  # and when the missing bytes are under half the pack's, too


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


def split(pack: Path, members_: list[tuple[str, int]], wanted: set[str], into: Path
          ) -> tuple[dict[str, Path], set[str]]:
    """Cut the wanted files out of a downloaded pack into ``into/<sha256>``, each checked.

    Returns the files that passed and the hashes that did not (to be fetched
    on their own): one bad file costs that file again, not the pack.
    """
    good: dict[str, Path] = {}
    bad: set[str] = set()
    with pack.open("rb") as fh:
        for sha, size in members_:
            if sha not in wanted:
                fh.seek(size, os.SEEK_CUR)
                continue
            digest = hashlib.sha256()
            temp = into / f"{sha}.part"
            with temp.open("wb") as out:
                left = size
                while left:
                    chunk = fh.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    left -= len(chunk)
            if left or digest.hexdigest() != sha:
                temp.unlink(missing_ok=True)
                bad.add(sha)
                continue
            os.chmod(temp, 0o444)
            final = into / sha
            os.replace(temp, final)
            good[sha] = final
    return good, bad
