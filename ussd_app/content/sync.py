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
import logging
import random
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ussd_app import jobs, settings
from ussd_app.content import fetch
from ussd_app.content.bundle import BundleError, Manifest, load_public_key, open_envelope
from ussd_app.content.central import DirCentral, HttpCentral, SyncError, open_central, public_url
from ussd_app.content.check import check_tree
from ussd_app.content.mirror import Mirror
from ussd_app.content.packs import PackPlan, plan
from ussd_app.content.progress import human_bytes

log = logging.getLogger(__name__)

RETRY_FIRST = 30.0  # background: first retry after a failure (or the interval if shorter)
RETRY_MAX = 3600.0  # background: retries back off up to this (or the interval if longer)
JITTER = 0.2  # background: each wait is the interval +/- 20 %
FIRST_WITHIN = 30.0  # background: the first sync starts within this after start-up


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
    fetch_seconds: float = 0.0  # of ``seconds``, downloading and verifying the files
    code: int = 1

    STATUSES = ("updated", "current", "pinned", "rolled back", "planned", "failed", "busy")

    @property
    def ok(self) -> bool:
        return self.status in ("updated", "current", "pinned", "rolled back", "planned")

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


def session_seconds(config: settings.Config) -> float:
    """How long a session, SMS conversation or draft may stay on the content version it
    started on: a version that stopped being served is kept on disk that long."""
    config = settings.of(config)
    return float(max(60 * config.resume_minutes, 60 * config.draft_minutes,
                     3600 * config.sms_conversation_hours))


def archive(config: settings.Config) -> Callable[[str], Path | None] | None:
    """Where a node finds a content version it does not hold in memory: the mirror's
    kept version folders once sync is configured; a plain content folder keeps none."""
    if not configured(config):
        return None
    return Mirror(data_dir(config) / "content").folder_of


# ---------------------------------------------------------------- a sync


def sync(config: settings.Config, progress: Progress | None = None,
         dry_run: bool = False) -> Result:
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
            return _locked_sync(mirror, url, config, progress, started, dry_run)
    except OSError as exc:
        return Result("failed", f"cannot use {mirror.root}: {exc.strerror}")


def _locked_sync(mirror: Mirror, url: str, config: settings.Settings,
                 progress: Progress | None, started: float, dry_run: bool = False) -> Result:
    state = mirror.read_state()
    central: HttpCentral | DirCentral | None = None
    try:
        pubkey = config.central_pubkey
        if not pubkey:
            raise SyncError("MIGRANTLINE_CENTRAL_PUBKEY is not set: sync refuses to run "
                            "without it. Set it to the path of the signing.pub that "
                            "`migrantline content keygen` wrote centrally", code=2)
        key = load_public_key(pubkey)
        central = open_central(url, config.sync_max_kbps)
        result = _sync(mirror, central, key, dict(state) if dry_run else state, config,
                       progress, dry_run)
    except (SyncError, BundleError) as exc:
        result = Result("failed", str(exc), code=getattr(exc, "code", 1))
    except OSError as exc:
        result = Result("failed", mirror.disk_message(exc))
    finally:
        if progress is not None:
            progress.finish()
        if central is not None:
            central.close()
    if not result.ok:
        shutil.rmtree(mirror.staging, ignore_errors=True)
    result.version = mirror.current()
    if central is not None and result.status != "planned":
        result.requests, result.bytes = central.requests, central.bytes
    result.seconds = time.monotonic() - started
    if not dry_run:
        _record(mirror, state, result, url)
    return result


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
          config: settings.Settings, progress: Progress | None, dry_run: bool = False
          ) -> Result:
    current = mirror.current()
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
    return _install(mirror, central, manifest, body, config, progress, state, remembered,
                    dry_run)


def _install(mirror: Mirror, central: HttpCentral | DirCentral, manifest: Manifest,
             body: bytes, config: settings.Settings, progress: Progress | None,
             state: dict[str, Any], remembered: dict[str, Any], dry_run: bool = False
             ) -> Result:
    """Fetch what is missing, assemble, check, and switch to the new version (or, dry,
    only say what that would download)."""
    current, previous = mirror.current(), mirror.previous()
    entries = fetch.fetch_entries(mirror, central, manifest)
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
    packs, single = plan(fetch.part_lists(mirror, manifest), wanted)
    total = fetch.to_download(mirror, packs, single)
    if dry_run:
        return _planned(manifest, central, wanted, packs, single, total)
    fetch.check_space(mirror, wanted, packs)
    if progress is not None:
        progress.start(total, len(wanted))
    fetch_started = time.monotonic()
    have.update(fetch.fetch_planned(mirror, central, packs, single,
                              progress.advance if progress else None))
    fetch_seconds = time.monotonic() - fetch_started
    staging = fetch.assemble(mirror, manifest.version, entries, have)
    tree, errors = check_tree(staging, config)
    if errors or tree is None:
        raise SyncError(f"version {manifest.version} fails the content check ({len(errors)} "
                        f"error(s); first: {errors[0]}); not installed. Fix the content "
                        "centrally (`migrantline content check` lists the errors) and publish "
                        "again")
    mirror.switch(manifest.version, body, staging)
    state["validators"] = remembered
    state["rolled_back_from"] = None
    mirror.prune(keep_seconds=session_seconds(config))
    kept = f"; version {current} kept for `migrantline content rollback`" if current else ""
    return Result("updated", f"now serving version {manifest.version} (content "
                  f"{tree.version}, {manifest.files} files){kept}",
                  available=manifest.version, files=len(wanted), fetch_seconds=fetch_seconds)


def _planned(manifest: Manifest, central: HttpCentral | DirCentral,
             wanted: Mapping[str, tuple[int, str]], packs: list[PackPlan],
             single: Mapping[str, tuple[int, str]], total: int) -> Result:
    """What ``sync --dry-run`` says: the download ahead, in bytes and requests."""
    requests = len(packs) + len(single)
    spent = (f"; finding this out took {central.requests} request(s), "
             f"{human_bytes(central.bytes)}")
    return Result("planned", f"version {manifest.version} is available: a sync would "
                  f"download at most {human_bytes(total)} in {requests} request(s) "
                  f"({len(wanted)} of {manifest.files} files are new; {len(packs)} "
                  f"pack(s), {len(single)} single file(s)){spent}. Nothing was changed",
                  available=manifest.version, bytes=total, requests=requests)


def _pinned(version: str, pinned: Mapping[str, str], current: str | None) -> Result:
    what = ("was rolled back" if version == pinned["version"] else
            f"is not newer than {pinned['version']}, which was rolled back")
    return Result("pinned", f"version {version} {what}: still serving {current} until a newer "
                  "version is published", available=version)



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
        self.last: Result | None = None
        self.next_due = time.monotonic() + self.rng.uniform(0, min(self.interval, FIRST_WITHIN))
        # the backoff survives a restart (an office that powers down at night, hours
        # offline): failures so far and the last attempt come from state.json
        state = Mirror(data_dir(config) / "content").read_state()
        self.failures = max(0, int(state.get("consecutive_failures") or 0))
        last = state.get("last_attempt")
        if self.failures and isinstance(last, (int, float)):
            wait = last + next_delay(self.interval, self.failures, self.rng) - time.time()
            cap = max(RETRY_MAX, self.interval) * (1 + JITTER)
            self.next_due = max(self.next_due, time.monotonic() + min(wait, cap))
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
