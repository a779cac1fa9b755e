"""Fetching a version from the central store into the mirror.

The manifest parts a deployment lacks are fetched first, then every file it
has in no kept version, by hash, a few at a time; each is checked against the
SHA-256 the signed manifest names before it is used. The new version is then
assembled beside the served one (hard links to files it already has), ready
for the content check and the switch.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

from ussd_app.content.bundle import Entry, Manifest, check_entries, parse_part
from ussd_app.content.central import DirCentral, HttpCentral, NotServed, SyncError
from ussd_app.content.files import DISK_FULL, sha256_file
from ussd_app.content.mirror import Mirror
from ussd_app.content.packs import PackPlan, PackSink

DOWNLOAD_THREADS = 8  # parallel downloads: a fresh sync of many small files pays the RTT
PACK_THREADS = 4  # packs are large: more at once only fight over the CPU (measured: 8 slower)
DISK_RESERVE = 16 * 1024 * 1024  # left free for the database after the downloads

Central = HttpCentral | DirCentral
Wanted = Mapping[str, tuple[int, str]]  # sha256 -> (size, what it is, for messages)


def fetch_entries(mirror: Mirror, central: Central,
                   manifest: Manifest) -> list[Entry]:
    """Every file of the version: its parts from disk when kept, else fetched."""
    wanted = {p.sha256: (p.size, f"manifest part {p.name}") for p in manifest.parts
              if not (mirror.parts / p.sha256).is_file()}
    fetched = download(mirror, central, wanted, None)
    mirror.parts.mkdir(parents=True, exist_ok=True)
    for sha, path in fetched.items():
        os.replace(path, mirror.parts / sha)
    entries: list[Entry] = []
    for part in manifest.parts:
        entries += parse_part((mirror.parts / part.sha256).read_bytes())
    entries = check_entries(entries)
    if len(entries) != manifest.files or sum(e.size for e in entries) != manifest.bytes:
        raise SyncError(f"version {manifest.version}: the manifest's totals do not match its "
                        "file lists; not installed. Publish again")
    return entries


def part_lists(mirror: Mirror, manifest: Manifest) -> list[tuple[str, str, list[Entry]]]:
    """(part sha256, part name, its files) for each part, read from the mirror."""
    return [(p.sha256, p.name, parse_part((mirror.parts / p.sha256).read_bytes()))
            for p in manifest.parts]


def to_download(mirror: Mirror, packs: Sequence[PackPlan], single: Wanted) -> int:
    """Bytes still to download: what interrupted syncs left in ``.part`` files is resumed."""
    total = 0
    for sha, (size, _) in single.items():
        part = mirror.downloads / f"{sha}.part"
        total += size - (min(size, part.stat().st_size) if part.is_file() else 0)
    for pack in packs:
        have = PackSink(pack, mirror.downloads).resume_from()
        total += 0 if have is None else pack.size - have
    return total


def check_space(mirror: Mirror, wanted: Mapping[str, tuple[int, str]],
                packs: Sequence[PackPlan] = ()) -> None:
    # a pack is cut into its files as it arrives: only the files wanted take space
    need = 0
    for sha, (size, _) in wanted.items():
        part = mirror.downloads / f"{sha}.part"
        need += max(0, size - (part.stat().st_size if part.exists() else 0))
    free = shutil.disk_usage(mirror.root).free
    if need + DISK_RESERVE > free:
        raise SyncError(f"not enough disk space in {mirror.root}: the new version needs "
                        f"{need / 1e6:.1f} MB and {DISK_RESERVE / 1e6:.0f} MB must stay free "
                        f"for the database, but {free / 1e6:.1f} MB are free. Free some "
                        "space, then run sync again; nothing was downloaded")


def download(mirror: Mirror, central: Central, wanted: Wanted,
             advance: Callable[[int], None] | None) -> dict[str, Path]:
    """Fetch and verify files by hash, a few at a time; all of them, or raise."""
    if not wanted:
        return {}
    mirror.downloads.mkdir(parents=True, exist_ok=True)
    jobs = {sha: (lambda step, stop, sha=sha, size=size, label=label:
                  {sha: _fetch_one(mirror, central, sha, size, label, step, stop)})
            for sha, (size, label) in sorted(wanted.items(), key=lambda i: -i[1][0])}
    return _parallel(jobs, advance)


def fetch_planned(mirror: Mirror, central: Central, packs: list[PackPlan], single: Wanted,
                  advance: Callable[[int], None] | None) -> dict[str, Path]:
    """The packs, each cut into its files (each checked), then the files on their own:
    those planned so, those that failed their hash in a pack, and those of packs the
    central store does not serve (published before packs existed)."""
    mirror.downloads.mkdir(parents=True, exist_ok=True)
    again: dict[str, tuple[int, str]] = {}
    lock = threading.Lock()

    def job(pack: PackPlan) -> Callable[[Callable[[int], None], threading.Event],
                                        dict[str, Path]]:
        def run(step: Callable[[int], None], stop: threading.Event) -> dict[str, Path]:
            sink = PackSink(pack, mirror.downloads)
            sizes = dict(pack.members)
            try:
                central.fetch(f"packs/{pack.part_sha}", pack.size, sink, step, stop,
                              f"the pack of {pack.name}")
            except NotServed:
                sink.discard()
                bad = set(pack.wanted)
                good: dict[str, Path] = {}
            else:
                good, bad = sink.result()
            with lock:
                for sha in bad:
                    again[sha] = (sizes[sha], f"a file of {pack.name}")
            return good

        return run

    have = _parallel({f"pack {p.part_sha}": job(p) for p in
                      sorted(packs, key=lambda p: -p.size)}, advance, PACK_THREADS)
    have.update(download(mirror, central, {**single, **again}, advance))
    return have


Job = Callable[[Callable[[int], None], threading.Event], dict[str, Path]]


def _parallel(jobs: Mapping[str, Job], advance: Callable[[int], None] | None,
              threads: int = DOWNLOAD_THREADS) -> dict[str, Path]:
    """Run the downloads a few at a time; the first failure stops the others."""
    if not jobs:
        return {}
    lock = threading.Lock()
    stop = threading.Event()

    def step(done: int) -> None:
        if advance is not None:
            with lock:
                advance(done)

    fetched: dict[str, Path] = {}
    failures: list[BaseException] = []
    with ThreadPoolExecutor(min(threads, len(jobs)),
                            thread_name_prefix="content-download") as pool:
        futures: dict[Future[dict[str, Path]], str] = {
            pool.submit(run, step, stop): key for key, run in jobs.items()}
        for future in as_completed(futures):
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                fetched.update(future.result())
                continue
            failures.append(error)
            stop.set()
            for other in futures:
                other.cancel()
    if failures:
        first = next((f for f in failures if not str(f).startswith("stopped")), failures[0])
        raise first
    return fetched


def _fetch_one(mirror: Mirror, central: Central, sha: str, size: int, label: str,
               step: Callable[[int], None], stop: threading.Event) -> Path:
    """One file into ``.downloads/<sha256>``, resumed from its ``.part``, checked."""
    part = mirror.downloads / f"{sha}.part"
    central.fetch(f"files/{sha}", size, part, step, stop, label)
    if not part.exists():  # an empty file: nothing was sent
        part.touch()
    if sha256_file(part) != sha:
        part.unlink(missing_ok=True)
        raise SyncError(f"{label}: the file received does not match the SHA-256 in the "
                        "signed manifest (corrupted on the way, or tampered with on the "
                        "central store); it was discarded and nothing was installed. Run "
                        "sync again; if it fails again, publish the content again")
    os.chmod(part, 0o444)
    final = mirror.downloads / sha
    os.replace(part, final)
    return final


def assemble(mirror: Mirror, version: str, entries: list[Entry],
              have: Mapping[str, Path]) -> Path:
    """The new version's folder, beside the served one: hard links, copies if need be.
    ``entries`` are ``fetch_entries``'s, every path already checked."""
    staging = mirror.staging / version
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # The folder is new and only this loop writes into it (folders and hard links, never
    # a symlink), so the entries' paths, each checked by its text in ``fetch_entries``
    # (``check_entries``: relative, no "..", no hidden name), stay inside it; resolving
    # each file's folder on disk (realpath) was half of this.
    root = os.fspath(staging)
    made: set[str] = set()
    for entry in entries:
        folder, _, _ = entry.path.rpartition("/")
        if folder and folder not in made:
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            made.add(folder)
        target = os.path.join(root, entry.path)
        source = have[entry.sha256]
        try:
            os.link(source, target)
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise
            shutil.copyfile(source, target)
    return staging
