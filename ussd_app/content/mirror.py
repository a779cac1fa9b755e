"""The mirror on disk: the versions a deployment keeps, and which one it serves.

Under ``$MIGRANTLINE_DATA_DIR/content/`` (see ``content.sync`` for the whole
layout): ``versions/<v>`` complete trees, ``current`` and ``previous``
symlinks switched with ``os.replace``, the signed manifests and their parts,
``sync.lock`` (one sync at a time, in any process) and ``state.json`` (what
/healthz shows).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from ussd_app.content.bundle import BundleError, Entry, Manifest, parse_manifest, parse_part
from ussd_app.content.files import DISK_FULL, fsync_dir, symlink, write_atomic

log = logging.getLogger(__name__)


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
            write_atomic(self.state_path, json.dumps(state, indent=1).encode())
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

    def folder_of(self, content_version: str) -> Path | None:
        """The kept version folder whose manifest names this content version (a tree's
        ``version``): how a node finds the tree a session started on."""
        if not self.versions.is_dir():
            return None
        for folder in sorted(self.versions.iterdir(), reverse=True):
            manifest = self.manifest(folder.name)
            if manifest is not None and manifest.content_version == content_version:
                return folder
        return None

    def switch(self, version: str, envelope: bytes, staging: Path) -> None:
        """Make the assembled ``staging`` the served version, at once."""
        current = self.current()
        if current:  # dated as the moment it stopped being served (``prune`` keeps it)
            os.utime(self.versions / current)
        write_atomic(self.meta / f"{version}.json", envelope)
        final = self.versions / version
        if final.exists():  # left over from an older run; never current or previous
            shutil.rmtree(final)
        self.versions.mkdir(parents=True, exist_ok=True)
        os.rename(staging, final)
        os.sync()  # the files reach the disk before the symlink that names them does
        if current:
            symlink(self.previous_link, f"versions/{current}")
        symlink(self.current_link, f"versions/{version}")
        fsync_dir(self.root)

    def prune(self, keep_seconds: float = 0.0) -> None:
        """Keep current, previous, and versions served less than ``keep_seconds`` ago (a
        session or draft may still be on them); drop other versions, unused parts,
        downloads."""
        keep = {v for v in (self.current(), self.previous()) if v}
        since = time.time() - keep_seconds
        if self.versions.is_dir():
            for folder in self.versions.iterdir():
                if folder.name in keep:
                    continue
                try:
                    recent = keep_seconds > 0 and folder.stat().st_mtime >= since
                except OSError:
                    recent = False
                if recent:
                    keep.add(folder.name)
                else:
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

    def disk_message(self, exc: OSError) -> str:
        """What to tell about a write that failed; a full disk gets its space back first."""
        if exc.errno in DISK_FULL:
            for part in self.downloads.glob("*.part"):  # give the space back to the database
                part.unlink(missing_ok=True)
            return (f"the disk holding {self.root} is full ({exc.strerror}); nothing was "
                    "switched and the partial downloads were removed. Free some space, then "
                    "run sync again")
        where = f" ({exc.filename})" if exc.filename else ""
        return f"cannot write in {self.root}{where}: {exc.strerror}; nothing was switched"
