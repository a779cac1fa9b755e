"""Content sync: mirror the central store's newest signed bundle, switch atomically.

A deployment keeps its mirror under ``$MIGRANTLINE_DATA_DIR/content/``::

    current -> versions/<v>       the tree being served: a symlink, switched by os.replace
    previous -> versions/<v>      the one before, for ``migrantline content rollback``
    versions/<v>/                 complete, verified, checked trees (current and previous)
    meta/<v>.json                 the signed manifest each version came with
    parts/<sha256>                manifest parts (file lists) of the kept versions
    .downloads/<sha256>[.part]    files fetched for the next version; ``.part`` while being
                                  fetched (resumed with an HTTP Range request next time)
    .staging/<v>/                 the next version being assembled
    sync.lock                     flock: one sync at a time, in any process
    state.json                    last attempt, last success, result: what /healthz shows

A sync asks for ``latest.json`` with the validators of the last answer
(``If-None-Match``/``If-Modified-Since``): a 304 ends it. Otherwise the
signature is checked against ``MIGRANTLINE_CENTRAL_PUBKEY``, the missing
manifest parts and files are fetched by hash (unchanged files are hard links
to the current version's), each is checked against its SHA-256, the new
version is assembled beside the current one, the content check runs on it,
and only then does ``current`` point to it. Any failure before that leaves
``current`` as it was, so the service goes on serving the last good version;
nothing the service does waits on the network (the background sync is a job
of its own, see ``BackgroundSync``).
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ussd_app import jobs, settings
from ussd_app.content.bundle import (
    BundleError,
    Entry,
    Manifest,
    _write_atomic,
    check_entries,
    check_tree,
    load_public_key,
    open_envelope,
    parse_manifest,
    parse_part,
    sha256_file,
)
from ussd_app.content.central import (  # noqa: F401 - SyncError is part of this module's interface
    CHUNK,
    DirCentral,
    HttpCentral,
    SyncError,
    _reason,
    open_central,
    public_url,
)

log = logging.getLogger(__name__)

DOWNLOAD_THREADS = 8  # parallel downloads: a fresh sync of many small files pays the RTT
DISK_RESERVE = 16 * 1024 * 1024  # left free for the database after the downloads
RETRY_FIRST = 30.0  # background: first retry after a failure (or the interval if shorter)
RETRY_MAX = 3600.0  # background: retries back off up to this (or the interval if longer)
JITTER = 0.2  # background: each wait is the interval +/- 20 %
FIRST_WITHIN = 30.0  # background: the first sync starts within this after start-up
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class Progress(Protocol):
    def start(self, total_bytes: int, files: int) -> None: ...
    def advance(self, done: int) -> None: ...
    def finish(self) -> None: ...


@dataclass
class Result:
    """What a sync (or rollback) did; ``status`` is one of the ``STATUSES``."""

    status: str
    message: str
    version: str | None = None  # served afterwards
    available: str | None = None  # the central store's newest, when it was read
    requests: int = 0
    bytes: int = 0
    files: int = 0
    seconds: float = 0.0
    code: int = 1

    STATUSES = ("updated", "current", "pinned", "rolled back", "failed", "busy")

    @property
    def ok(self) -> bool:
        return self.status in ("updated", "current", "pinned", "rolled back")

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else self.code


def data_dir(config: settings.Config) -> Path:
    return settings.of(config).data_dir


def configured(config: settings.Config) -> bool:
    return bool(settings.of(config).central_url)


def served_content_dir(config: settings.Config) -> Path:
    """The folder the service serves: the mirror's ``current`` once sync is configured.

    Not resolved: ``current`` is a symlink, and the registry must follow it
    when a sync (or a rollback, from another process) switches it.
    """
    config = settings.of(config)
    if configured(config):
        return data_dir(config) / "content" / "current"
    return config.content_dir.resolve()




# ---------------------------------------------------------------- the mirror on disk


class Mirror:
    def __init__(self, root: Path):
        self.root = root
        self.versions = root / "versions"
        self.meta = root / "meta"
        self.parts = root / "parts"
        self.downloads = root / ".downloads"
        self.staging = root / ".staging"
        self.current_link = root / "current"
        self.previous_link = root / "previous"
        self.state_path = root / "state.json"
        self.lock_path = root / "sync.lock"

    def _target(self, link: Path) -> str | None:
        try:
            name = PurePosixPath(os.readlink(link)).name
        except OSError:
            return None
        return name if (self.versions / name).is_dir() else None

    def current(self) -> str | None:
        return self._target(self.current_link)

    def previous(self) -> str | None:
        return self._target(self.previous_link)

    @contextmanager
    def locked(self) -> Iterator[str | None]:
        """Hold ``sync.lock``; yields None when held, else who holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                yield f"pid {holder}" if holder else "another process"
                return
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield None
        finally:
            os.close(fd)  # releases the lock

    def read_state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_path.read_bytes()))
        except (OSError, ValueError, TypeError):
            return {}

    def write_state(self, state: Mapping[str, Any]) -> None:
        try:
            _write_atomic(self.state_path, json.dumps(state, indent=1).encode())
        except OSError as exc:  # a full disk must not turn a sync result into a crash
            log.warning("could not record the sync state in %s: %s", self.state_path, exc)

    def manifest(self, version: str | None) -> Manifest | None:
        if not version:
            return None
        try:
            envelope = json.loads((self.meta / f"{version}.json").read_bytes())
            return parse_manifest(envelope["manifest"])
        except (OSError, ValueError, KeyError, TypeError, BundleError):
            return None

    def entries(self, version: str | None) -> list[Entry]:
        """The files of a kept version, from its manifest parts (empty when unknown)."""
        manifest = self.manifest(version)
        if manifest is None:
            return []
        found: list[Entry] = []
        for part in manifest.parts:
            try:
                found += parse_part((self.parts / part.sha256).read_bytes())
            except (OSError, BundleError):
                return []
        return found

    def local_files(self, versions: list[str | None]) -> dict[str, Path]:
        """SHA-256 -> a file of a kept version with those bytes (by its size)."""
        have: dict[str, Path] = {}
        for version in versions:
            if not version:
                continue
            for entry in self.entries(version):
                if entry.sha256 in have:
                    continue
                path = self.versions / version / entry.path
                try:
                    if path.stat().st_size == entry.size:
                        have[entry.sha256] = path
                except OSError:
                    continue
        return have

    def switch(self, version: str, envelope: bytes, staging: Path) -> None:
        """Make the assembled ``staging`` the served version, at once."""
        current = self.current()
        _write_atomic(self.meta / f"{version}.json", envelope)
        final = self.versions / version
        if final.exists():  # left over from an older run; never current or previous
            shutil.rmtree(final)
        self.versions.mkdir(parents=True, exist_ok=True)
        os.rename(staging, final)
        os.sync()  # the files reach the disk before the symlink that names them does
        if current:
            _symlink(self.previous_link, f"versions/{current}")
        _symlink(self.current_link, f"versions/{version}")
        _fsync_dir(self.root)

    def prune(self) -> None:
        """Keep current and previous; drop other versions, unused parts, downloads."""
        keep = {v for v in (self.current(), self.previous()) if v}
        if self.versions.is_dir():
            for folder in self.versions.iterdir():
                if folder.name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)
        parts: set[str] = set()
        for version in keep:
            manifest = self.manifest(version)
            if manifest is not None:
                parts.update(p.sha256 for p in manifest.parts)
        for folder, wanted in ((self.meta, {f"{v}.json" for v in keep}), (self.parts, parts)):
            if folder.is_dir():
                for path in folder.iterdir():
                    if path.name not in wanted:
                        path.unlink(missing_ok=True)
        shutil.rmtree(self.downloads, ignore_errors=True)
        shutil.rmtree(self.staging, ignore_errors=True)


def _symlink(link: Path, target: str) -> None:
    temp = link.with_name(f".{link.name}.tmp")
    temp.unlink(missing_ok=True)
    os.symlink(target, temp)
    os.replace(temp, link)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync(config: settings.Config, progress: Progress | None = None) -> Result:
    """Bring the mirror to the central store's newest version, or leave it as it was."""
    started = time.monotonic()
    config = settings.of(config)
    url = config.central_url or ""
    if not url:
        return Result("failed", "MIGRANTLINE_CENTRAL_URL is not set: set it to the URL "
                      "(or folder) where the central store serves what `migrantline content "
                      "publish` wrote", code=2)
    mirror = Mirror(data_dir(config) / "content")
    try:
        with mirror.locked() as holder:
            if holder is not None:
                return Result("busy", f"another sync is running ({holder}); this one did "
                              "nothing", version=mirror.current())
            return _locked_sync(mirror, url, config, progress, started)
    except OSError as exc:
        return Result("failed", f"cannot use {mirror.root}: {exc.strerror}")


def _locked_sync(mirror: Mirror, url: str, config: settings.Settings,
                 progress: Progress | None, started: float) -> Result:
    state = mirror.read_state()
    central: HttpCentral | DirCentral | None = None
    try:
        pubkey = config.central_pubkey
        if not pubkey:
            raise SyncError("MIGRANTLINE_CENTRAL_PUBKEY is not set: sync refuses to run "
                            "without it. Set it to the path of the signing.pub that "
                            "`migrantline content keygen` wrote centrally", code=2)
        key = load_public_key(pubkey)
        central = open_central(url)
        result = _sync(mirror, central, key, state, config, progress)
    except (SyncError, BundleError) as exc:
        result = Result("failed", str(exc), code=getattr(exc, "code", 1))
    except OSError as exc:
        result = Result("failed", _disk_message(exc, mirror))
    finally:
        if progress is not None:
            progress.finish()
        if central is not None:
            central.close()
    if not result.ok:
        shutil.rmtree(mirror.staging, ignore_errors=True)
    result.version = mirror.current()
    if central is not None:
        result.requests, result.bytes = central.requests, central.bytes
    result.seconds = time.monotonic() - started
    _record(mirror, state, result, url)
    return result


def _disk_message(exc: OSError, mirror: Mirror) -> str:
    if exc.errno in _DISK_FULL:
        for part in mirror.downloads.glob("*.part"):  # give the space back to the database
            part.unlink(missing_ok=True)
        return (f"the disk holding {mirror.root} is full ({exc.strerror}); nothing was "
                "switched and the partial downloads were removed. Free some space, then run "
                "sync again")
    where = f" ({exc.filename})" if exc.filename else ""
    return f"cannot write in {mirror.root}{where}: {exc.strerror}; nothing was switched"


def _record(mirror: Mirror, state: dict[str, Any], result: Result, url: str) -> None:
    now = time.time()
    state.update({
        "central": public_url(url), "last_attempt": now, "result": result.status,
        "message": result.message, "version": result.version,
        "requests": result.requests, "bytes": result.bytes, "files": result.files,
        "seconds": round(result.seconds, 3),
    })
    if result.available:
        state["available"] = result.available
    if result.ok:
        state["last_success"] = now
        state["consecutive_failures"] = 0
    elif result.status == "failed":
        state["consecutive_failures"] = int(state.get("consecutive_failures") or 0) + 1
    mirror.write_state(state)


def _created(manifest: Manifest | None) -> str:
    return manifest.created.strftime("%Y-%m-%d %H:%M UTC") if manifest else "?"


def _sync(mirror: Mirror, central: HttpCentral | DirCentral, key: Any, state: dict[str, Any],
          config: settings.Settings, progress: Progress | None) -> Result:
    current, previous = mirror.current(), mirror.previous()
    pinned = state.get("rolled_back_from") or None
    validators = dict(state.get("validators") or {})
    if not current or validators.get("version") not in (current, pinned and pinned["version"]):
        validators = {}
    body, new_validators = central.latest(validators)
    if body is None:  # 304: the version these validators came with
        if validators["version"] == current:
            return Result("current", f"already up to date: version {current}",
                          available=current)
        return _pinned(str(validators["version"]), pinned, current)

    manifest = open_envelope(body, key)
    remembered = {**new_validators, "version": manifest.version} if new_validators else {}
    if manifest.version == current:
        state["validators"] = remembered
        return Result("current", f"already up to date: version {current}", available=current)
    if pinned and manifest.created <= datetime.fromisoformat(pinned["created"]):
        state["validators"] = remembered
        return _pinned(manifest.version, pinned, current)
    served = mirror.manifest(current)
    if served is not None and manifest.created < served.created:
        raise SyncError(f"the central store offers version {manifest.version} (published "
                        f"{_created(manifest)}), older than the version served ({current}, "
                        f"published {_created(served)}): not installed. If the central store "
                        "was restored from a backup, publish the content again")

    entries = _fetch_entries(mirror, central, manifest)
    have = mirror.local_files([current, previous])
    wanted: dict[str, tuple[int, str]] = {}
    for entry in entries:
        done = mirror.downloads / entry.sha256
        if entry.sha256 in have:
            continue
        if done.is_file() and done.stat().st_size == entry.size:  # fetched by a failed sync
            have[entry.sha256] = done
        else:
            wanted.setdefault(entry.sha256, (entry.size, entry.path))
    _check_space(mirror, wanted)
    if progress is not None:
        progress.start(sum(size for size, _ in wanted.values()), len(wanted))
    have.update(_download(mirror, central, wanted, progress.advance if progress else None))
    staging = _assemble(mirror, manifest.version, entries, have)
    tree, errors = check_tree(staging, config)
    if errors:
        raise SyncError(f"version {manifest.version} fails the content check ({len(errors)} "
                        f"error(s); first: {errors[0]}); not installed. Fix the content "
                        "centrally (`migrantline content check` lists the errors) and publish "
                        "again")
    mirror.switch(manifest.version, body, staging)
    state["validators"] = remembered
    state["rolled_back_from"] = None
    mirror.prune()
    kept = f"; version {current} kept for `migrantline content rollback`" if current else ""
    return Result("updated", f"now serving version {manifest.version} (content "
                  f"{tree.version}, {manifest.files} files){kept}",
                  available=manifest.version, files=len(wanted))


def _pinned(version: str, pinned: Mapping[str, str], current: str | None) -> Result:
    what = ("was rolled back" if version == pinned["version"] else
            f"is not newer than {pinned['version']}, which was rolled back")
    return Result("pinned", f"version {version} {what}: still serving {current} until a newer "
                  "version is published", available=version)


def _fetch_entries(mirror: Mirror, central: HttpCentral | DirCentral,
                   manifest: Manifest) -> list[Entry]:
    """Every file of the version: its parts from disk when kept, else fetched."""
    wanted = {p.sha256: (p.size, f"manifest part {p.name}") for p in manifest.parts
              if not (mirror.parts / p.sha256).is_file()}
    fetched = _download(mirror, central, wanted, None)
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


def _check_space(mirror: Mirror, wanted: Mapping[str, tuple[int, str]]) -> None:
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


def _download(mirror: Mirror, central: HttpCentral | DirCentral,
              wanted: Mapping[str, tuple[int, str]],
              advance: Callable[[int], None] | None) -> dict[str, Path]:
    """Fetch and verify files by hash, a few at a time; all of them, or raise."""
    if not wanted:
        return {}
    mirror.downloads.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    stop = threading.Event()

    def step(done: int) -> None:
        if advance is not None:
            with lock:
                advance(done)

    def one(sha: str, size: int, label: str) -> Path:
        part = mirror.downloads / f"{sha}.part"
        central.fetch(sha, size, part, step, stop, label)
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

    fetched: dict[str, Path] = {}
    failures: list[BaseException] = []
    with ThreadPoolExecutor(min(DOWNLOAD_THREADS, len(wanted)),
                            thread_name_prefix="content-download") as pool:
        futures = {pool.submit(one, sha, size, label): sha
                   for sha, (size, label) in sorted(wanted.items(), key=lambda i: -i[1][0])}
        for future in as_completed(futures):
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                fetched[futures[future]] = future.result()
                continue
            failures.append(error)
            stop.set()
            for other in futures:
                other.cancel()
    if failures:
        first = next((f for f in failures if not str(f).startswith("stopped")), failures[0])
        raise first
    return fetched


def _assemble(mirror: Mirror, version: str, entries: list[Entry],
              have: Mapping[str, Path]) -> Path:
    """The new version's folder, beside the served one: hard links, copies if need be."""
    staging = mirror.staging / version
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    root = os.path.realpath(staging)
    for entry in entries:
        target = staging.joinpath(*entry.path.split("/"))
        if os.path.commonpath([root, os.path.realpath(target.parent)]) != root:
            raise SyncError(f"the manifest names {entry.path!r}, outside the tree")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = have[entry.sha256]
        try:
            os.link(source, target)
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                raise
            shutil.copyfile(source, target)
    return staging


# ---------------------------------------------------------------- rollback


def rollback(config: settings.Config) -> Result:
    """Serve the previous version again; sync leaves it until a newer one is published."""
    mirror = Mirror(data_dir(config) / "content")
    if not mirror.root.is_dir():
        return Result("failed", f"nothing was ever synced into {mirror.root}: there is no "
                      "version to go back to")
    with mirror.locked() as holder:
        if holder is not None:
            return Result("busy", f"a sync is running ({holder}); roll back when it ends",
                          version=mirror.current())
        current, previous = mirror.current(), mirror.previous()
        if not previous or previous == current:
            return Result("failed", "there is no previous version to go back to (one is kept "
                          "from the second sync on)", version=current)
        state = mirror.read_state()
        left, back = mirror.manifest(current), mirror.manifest(previous)
        try:
            _symlink(mirror.previous_link, f"versions/{current}")
            _symlink(mirror.current_link, f"versions/{previous}")
            _fsync_dir(mirror.root)
        except OSError as exc:
            return Result("failed", _disk_message(exc, mirror), version=mirror.current())
        newer = left is not None and back is not None and left.created > back.created
        state["rolled_back_from"] = ({"version": current, "created": left.created.isoformat()}
                                     if newer and left else None)
        state.update({"result": "rolled back", "version": previous, "last_attempt": time.time(),
                      "message": f"rolled back from {current} to {previous}"})
        mirror.write_state(state)
        message = f"now serving version {previous} again; {current} is kept as the previous one"
        if newer:
            message += ("; sync will not install it again, only a version published after it")
        return Result("rolled back", message, version=previous, code=0)


# ---------------------------------------------------------------- in the service


def health(config: settings.Config) -> dict[str, Any]:
    """The last sync as /healthz shows it (read from disk: every worker shows the same)."""
    if not configured(config):
        return {"configured": False}
    state = Mirror(data_dir(config) / "content").read_state()
    return {
        "configured": True,
        "central": public_url(settings.of(config).central_url or ""),
        "result": state.get("result"),
        "message": state.get("message"),
        "last_attempt": state.get("last_attempt"),
        "last_success": state.get("last_success"),
        "consecutive_failures": state.get("consecutive_failures", 0),
        "version": state.get("version"),
        "available": state.get("available"),
        "requests": state.get("requests"),
        "bytes": state.get("bytes"),
        "seconds": state.get("seconds"),
    }


def next_delay(interval: float, failures: int, rng: random.Random) -> float:
    """Seconds to the next background sync: the interval, or a backed-off retry; jittered."""
    if failures <= 0:
        base = interval
    else:
        base = min(min(RETRY_FIRST, interval) * 2 ** (failures - 1), max(RETRY_MAX, interval))
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


class BackgroundSync:
    """Periodic sync through ``jobs.every``: jittered, backing off while it fails.

    A short tick only compares the clock; the sync itself runs when due, in
    the job's thread, so no request of the service ever waits on it.
    """

    def __init__(self, config: settings.Config, on_switch: Callable[[], object] | None = None,
                 rng: random.Random | None = None):
        self.config = config = settings.of(config)
        self.on_switch = on_switch
        self.rng = rng or random.Random()
        self.interval = config.sync_interval_seconds
        self.failures = 0
        self.last: Result | None = None
        self.next_due = time.monotonic() + self.rng.uniform(0, min(self.interval, FIRST_WITHIN))
        self._closed = False
        tick = max(0.02, min(1.0, self.interval / 4))
        self._job = jobs.every(tick, self.tick, "content-sync")
        atexit.register(self.close)  # runs before the job's own stop: no sync at exit

    def tick(self) -> None:
        if self._closed or time.monotonic() < self.next_due:
            return
        result = sync(self.config)
        self.last = result
        if result.status == "updated":
            log.info("content sync: %s", result.message)
            if self.on_switch is not None:
                self.on_switch()
        elif result.status == "failed":
            log.warning("content sync failed: %s (still serving %s)", result.message,
                        result.version or "nothing")
        self.failures = self.failures + 1 if result.status == "failed" else 0
        self.next_due = time.monotonic() + next_delay(self.interval, self.failures, self.rng)

    def close(self) -> None:
        self._closed = True

    def stop(self) -> None:
        self.close()
        self._job.stop()


def start_background(config: settings.Config,
                     on_switch: Callable[[], object] | None = None) -> BackgroundSync | None:
    if not configured(config) or settings.of(config).sync_interval_seconds <= 0:
        return None
    return BackgroundSync(config, on_switch)
