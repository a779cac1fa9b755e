"""Content sync against a real HTTP server on 127.0.0.1: the deployment serves the last
good version whatever the link or the central store does, and switches only to a complete,
verified, checked one.
"""

from __future__ import annotations

import base64
import fcntl
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from ussd_app.cli import main
from ussd_app.content import bundle, central, fetch
from ussd_app.content.sync import next_delay

from .conftest import DEMO_CONTENT, TEST_SECRET, Phone, make_app
from .static_server import Fault, StaticServer, serving

ARTICLE = Path("nodes/before_you_go/bg_contract.yaml")
ORIGINAL = "Get a written contract before you leave."
EDITED = "SYNCED EDIT: a written contract first."
OLD = "before you leave"  # on the article's first screen, in ORIGINAL only


# ---------------------------------------------------------------- helpers


class Setup:
    """A central side (tree, keys, OUT served over HTTP) and one deployment's data dir."""

    def __init__(self, tmp_path: Path, server: StaticServer):
        self.tmp = tmp_path
        self.tree = tmp_path / "tree"
        shutil.copytree(DEMO_CONTENT, self.tree)
        self.out = tmp_path / "out"
        self.out.mkdir()
        self.keys = tmp_path / "keys"
        bundle.keygen(self.keys)
        self.server = server
        server.root = self.out
        self.data = tmp_path / "var"
        self.env = {
            "MIGRANTLINE_DATA_DIR": str(self.data),
            "MIGRANTLINE_CONTENT_DIR": str(DEMO_CONTENT),
            "MIGRANTLINE_CENTRAL_URL": server.url,
            "MIGRANTLINE_CENTRAL_PUBKEY": str(self.keys / "signing.pub"),
            "MIGRANTLINE_SIGNING_KEY": str(self.keys / "signing.key"),
            "MIGRANTLINE_SECRET_KEY": TEST_SECRET,
            "MIGRANTLINE_SYNC_INTERVAL_SECONDS": "0",
            # The transport is tested with random bytes named .wav: published as they are
            # (tests/test_audio_format.py publishes real recordings as MP3).
            "MIGRANTLINE_AUDIO_FORMAT": "wav",
        }
        self.runner = CliRunner()

    def cli(self, *args: str, **env: str | None) -> Any:
        return self.runner.invoke(main, list(args), env={**self.env, **env},
                                  catch_exceptions=False)

    def publish(self, tree: Path | None = None, **env: str | None) -> str:
        result = self.cli("content", "publish", str(tree or self.tree), str(self.out), **env)
        assert result.exit_code == 0, result.output
        return self.latest()

    def latest(self) -> str:
        manifest = json.loads(json.loads((self.out / "latest.json").read_bytes())["manifest"])
        return str(manifest["version"])

    def sync(self, **env: str | None) -> Any:
        return self.cli("content", "sync", **env)

    def config(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}

    def app(self, **extra: str) -> Flask:
        return make_app(self.tmp, **{**self.config(), "MIGRANTLINE_CONTENT_POLL_SECONDS": "0.05",
                                     **extra})

    def edit_article(self, text: str = EDITED) -> None:
        path = self.tree / ARTICLE
        path.write_text(path.read_text().replace(ORIGINAL, text))

    def sha(self, relative: str | Path) -> str:
        return hashlib.sha256((self.tree / relative).read_bytes()).hexdigest()

    def current(self) -> str | None:
        try:
            return Path(os.readlink(self.data / "content" / "current")).name
        except OSError:
            return None

    def add_audio(self, name: str, size: int) -> str:
        path = self.tree / "audio" / "en" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random.Random(size).randbytes(size))
        return self.sha(path.relative_to(self.tree))


@pytest.fixture
def server() -> Iterator[StaticServer]:
    with serving(Path("/nonexistent")) as running:
        yield running


@pytest.fixture
def setup(tmp_path: Path, server: StaticServer) -> Setup:
    return Setup(tmp_path, server)


def article(app: Flask) -> str:
    """The article's full text, first screen: past its short USSD version ("2 Read it
    all here" on the short's last screen)."""
    phone = Phone(app.test_client())
    phone.dial()
    return full_text(phone)


def full_text(phone: Phone) -> str:
    screen = phone.press("1", "1", "3")
    while "2 " not in screen and "98 " in screen.splitlines()[-1]:
        screen = phone.press("98")
    return phone.press("2") if "2 " in screen else screen


def served(app: Flask) -> dict[str, Any]:
    return dict(app.test_client().get("/healthz").json or {})


def wait_served(app: Flask, version_text: str, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while version_text not in article(app):
        assert time.time() < deadline, article(app)
        time.sleep(0.05)


def sign(setup: Setup, manifest: dict[str, Any]) -> None:
    """Write a manifest signed with the deployment's trusted key (a publisher's mistake)."""
    key = bundle.load_private_key(setup.keys / "signing.key")
    (setup.out / "latest.json").write_bytes(
        bundle.make_envelope(json.dumps(manifest), key))


def store_part(setup: Setup, files: list[dict[str, Any]]) -> dict[str, Any]:
    data = json.dumps({"files": files}).encode()
    sha = hashlib.sha256(data).hexdigest()
    (setup.out / "files" / sha).write_bytes(data)
    return {"name": "x", "sha256": sha, "size": len(data), "files": len(files)}


def first_sync(setup: Setup) -> str:
    version = setup.publish()
    result = setup.sync()
    assert result.exit_code == 0, result.output
    assert setup.current() == version
    return version


# ---------------------------------------------------------------- publish and keys


@pytest.mark.engine_independent
def test_keygen_publish_writes_a_signed_content_addressed_bundle(setup: Setup) -> None:
    result = setup.cli("content", "keygen", str(setup.keys))
    assert result.exit_code == 1 and "never overwritten" in result.output
    assert (setup.keys / "signing.key").stat().st_mode & 0o777 == 0o600

    version = setup.publish()
    key = bundle.load_public_key(setup.keys / "signing.pub")
    manifest = bundle.open_envelope((setup.out / "latest.json").read_bytes(), key)
    assert manifest.version == version
    assert (setup.out / "versions" / version / "manifest.json").is_file()
    entries = []
    for part in manifest.parts:
        entries += bundle.parse_part((setup.out / "files" / part.sha256).read_bytes())
    on_disk = sorted(p.relative_to(setup.tree).as_posix() for p in setup.tree.rglob("*")
                     if p.is_file())
    assert sorted(e.path for e in entries) == on_disk
    for entry in entries:
        data = (setup.out / "files" / entry.sha256).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256 and len(data) == entry.size

    again = setup.cli("content", "publish", str(setup.tree), str(setup.out))
    assert again.exit_code == 0 and "nothing changed" in again.output
    setup.edit_article()
    newer = setup.publish()
    assert newer != version and (setup.out / "versions" / version).is_dir()  # older stay


@pytest.mark.engine_independent
def test_publish_refuses_a_broken_tree_and_needs_the_key(setup: Setup) -> None:
    (setup.tree / "nodes/main/main.yaml").write_text(
        (setup.tree / "nodes/main/main.yaml").read_text().replace("  - at_work\n",
                                                                  "  - at_wrok\n"))
    result = setup.cli("content", "publish", str(setup.tree), str(setup.out))
    assert result.exit_code == 1
    assert "at_wrok" in result.output and "not published" in result.output
    assert not (setup.out / "latest.json").exists()

    result = setup.cli("content", "publish", str(setup.tree), str(setup.out),
                       MIGRANTLINE_SIGNING_KEY=None)
    assert result.exit_code == 2 and "MIGRANTLINE_SIGNING_KEY" in result.output
    result = setup.cli("content", "publish", str(setup.tree), str(setup.tree / "out"))
    assert result.exit_code == 2 and "inside DIR" in result.output


@pytest.mark.engine_independent
def test_sync_refuses_to_run_without_the_public_key(setup: Setup) -> None:
    setup.publish()
    result = setup.sync(MIGRANTLINE_CENTRAL_PUBKEY=None)
    assert result.exit_code == 2
    assert "sync refuses to run without it" in result.output
    assert setup.current() is None
    result = setup.sync(MIGRANTLINE_CENTRAL_URL=None)
    assert result.exit_code == 2 and "MIGRANTLINE_CENTRAL_URL" in result.output


# ---------------------------------------------------------------- the normal path


def test_fresh_sync_unchanged_sync_and_one_changed_article(setup: Setup) -> None:
    version = setup.publish()
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    assert "now serving version " + version in result.output
    assert setup.current() == version
    fetched = setup.server.requests_since(start)
    assert fetched[0].path == "/latest.json"
    # every file came, the text gzipped (the server has gzip_static): far fewer bytes
    tree_bytes = sum(p.stat().st_size for p in setup.tree.rglob("*") if p.is_file())
    assert any(r.gzip for r in fetched)
    assert sum(r.sent for r in fetched) < tree_bytes / 2

    app = setup.app()
    assert OLD in article(app)
    assert served(app)["sync"]["result"] == "updated"
    assert served(app)["sync"]["version"] == version

    # Unchanged: one conditional request, nothing downloaded.
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0 and "already up to date" in result.output
    requests = setup.server.requests_since(start)
    assert [(r.path, r.status, r.sent) for r in requests] == [("/latest.json", 304, 0)]
    assert requests[0].headers.get("If-None-Match")

    # One article changed: the manifest, its folder's part, the article.
    setup.edit_article()
    newer = setup.publish()
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    requests = setup.server.requests_since(start)
    paths = [r.path for r in requests]
    assert paths[0] == "/latest.json" and len(paths) == 3, paths
    assert f"/files/{setup.sha(ARTICLE)}" in paths
    assert sum(r.sent for r in requests) < 8000
    assert setup.current() == newer
    wait_served(app, "SYNCED EDIT")
    assert served(app)["content_version"] != ""
    health = served(app)["sync"]
    assert health["result"] == "updated" and health["version"] == newer
    assert health["last_success"] and health["consecutive_failures"] == 0
    # Unchanged files are shared with the previous version, not copied.
    content = setup.data / "content"
    site = [(content / "versions" / v / "site.yaml").stat().st_ino for v in (version, newer)]
    assert site[0] == site[1]
    app.extensions["migrantline"].store.close()


@pytest.mark.engine_independent
def test_a_folder_can_be_the_central_store(setup: Setup) -> None:
    version = setup.publish()
    result = setup.sync(MIGRANTLINE_CENTRAL_URL=str(setup.out))
    assert result.exit_code == 0, result.output
    assert setup.current() == version
    result = setup.sync(MIGRANTLINE_CENTRAL_URL=f"file://{setup.out}")
    assert result.exit_code == 0 and "already up to date" in result.output


# ---------------------------------------------------------------- failures


@pytest.mark.engine_independent
def test_a_cut_download_is_resumed_within_the_sync(setup: Setup) -> None:
    first_sync(setup)
    sha = setup.add_audio("long.wav", 1_500_000)
    newer = setup.publish()
    setup.server.faults[f"/files/{sha}"] = Fault("cut", times=1)
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    assert setup.current() == newer
    asked = [r for r in setup.server.requests_since(start) if r.path == f"/files/{sha}"]
    assert [r.status for r in asked] == [200, 206]
    resumed_from = int(asked[1].headers["Range"][len("bytes="):-1])
    assert 0 < resumed_from <= asked[0].sent  # what arrived before the cut is kept
    assert resumed_from + asked[1].sent == 1_500_000
    assert (setup.data / "content/current/audio/en/long.wav").stat().st_size == 1_500_000


@pytest.mark.engine_independent
def test_an_interrupted_download_is_resumed_by_the_next_sync(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(central, "RETRY_PAUSE", 0.01)
    first = first_sync(setup)
    sha = setup.add_audio("long.wav", 1_500_000)
    newer = setup.publish()
    setup.server.faults[f"/files/{sha}"] = Fault("cut", times=central.RETRIES + 1)
    result = setup.sync()
    assert result.exit_code == 1
    assert "cut short" in result.output or "interrupted" in result.output
    assert "resumes" in result.output and f"still serving version {first}" in result.output
    assert setup.current() == first
    part = setup.data / "content" / ".downloads" / f"{sha}.part"
    have = part.stat().st_size
    assert 0 < have < 1_500_000

    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    assert setup.current() == newer
    resumed = [r for r in setup.server.requests_since(start) if r.path == f"/files/{sha}"]
    assert resumed[0].headers.get("Range") == f"bytes={have}-"
    assert resumed[0].status == 206 and resumed[0].sent == 1_500_000 - have
    assert (setup.data / "content/current/audio/en/long.wav").stat().st_size == 1_500_000


@pytest.mark.engine_independent
def test_a_leftover_partial_download_is_replaced_or_discarded(setup: Setup) -> None:
    """A server without Range support sends the whole file; a bad partial is thrown away."""
    first_sync(setup)
    setup.edit_article()
    newer = setup.publish()
    downloads = setup.data / "content" / ".downloads"
    downloads.mkdir()
    part = downloads / f"{setup.sha(ARTICLE)}.part"
    part.write_bytes(b"garbage from an older attempt")
    start = len(setup.server.log)
    result = setup.sync()  # the server honours Range: the garbage prefix fails the hash
    assert result.exit_code == 1 and "does not match the SHA-256" in result.output
    assert [r.status for r in setup.server.requests_since(start)
            if r.path == f"/files/{setup.sha(ARTICLE)}"] == [206]
    assert not part.exists()

    part.write_bytes(b"garbage")
    setup.server.ranges = False  # a server that ignores Range sends the whole file: 200
    result = setup.sync()
    assert result.exit_code == 0, result.output
    assert setup.current() == newer


def test_a_corrupt_file_is_refused(setup: Setup) -> None:
    first = first_sync(setup)
    app = setup.app()
    setup.edit_article()
    setup.publish()
    setup.server.faults[f"/files/{setup.sha(ARTICLE)}"] = Fault("corrupt")
    result = setup.sync()
    assert result.exit_code == 1
    assert "does not match the SHA-256" in result.output
    assert setup.current() == first
    assert not list((setup.data / "content" / ".downloads").glob("*.part"))
    time.sleep(0.2)
    assert "SYNCED EDIT" not in article(app)
    health = served(app)["sync"]
    assert health["result"] == "failed" and health["consecutive_failures"] == 1
    assert "SHA-256" in health["message"]
    setup.server.faults.clear()
    assert setup.sync().exit_code == 0
    wait_served(app, "SYNCED EDIT")
    app.extensions["migrantline"].store.close()


@pytest.mark.engine_independent
def test_a_tampered_file_on_the_central_store_is_refused(setup: Setup) -> None:
    first = first_sync(setup)
    setup.edit_article()
    setup.publish()
    stored = setup.out / "files" / setup.sha(ARTICLE)
    tampered = stored.read_text().replace("SYNCED EDIT", "Pay the agent 5000 first.")
    stored.write_text(tampered)
    with gzip.open(stored.with_name(stored.name + ".gz"), "wt") as packed:
        packed.write(tampered)  # the copy a server with gzip_static sends first
    for gzip_static in (True, False):
        setup.server.gzip_static = gzip_static
        result = setup.sync()
        assert result.exit_code == 1 and "tampered" in result.output, result.output
        assert setup.current() == first


@pytest.mark.engine_independent
def test_a_bad_signature_is_refused(setup: Setup, tmp_path: Path) -> None:
    first = first_sync(setup)
    setup.edit_article()
    other = tmp_path / "other-keys"
    bundle.keygen(other)
    setup.publish(MIGRANTLINE_SIGNING_KEY=str(other / "signing.key"))
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 1 and "BAD SIGNATURE" in result.output
    assert [r.path for r in setup.server.requests_since(start)] == ["/latest.json"]
    assert setup.current() == first

    # The right key, but the manifest edited after signing.
    setup.publish()
    envelope = json.loads((setup.out / "latest.json").read_bytes())
    edited = re.sub(r'"files":(\d+)', lambda m: f'"files":{int(m[1]) - 1}',
                    envelope["manifest"], count=1)
    assert edited != envelope["manifest"]
    envelope["manifest"] = edited
    (setup.out / "latest.json").write_text(json.dumps(envelope))
    result = setup.sync()
    assert result.exit_code == 1 and "BAD SIGNATURE" in result.output
    envelope["signature"] = base64.b64encode(b"x" * 64).decode()
    (setup.out / "latest.json").write_text(json.dumps(envelope))
    assert setup.sync().exit_code == 1
    assert setup.current() == first


@pytest.mark.engine_independent
@pytest.mark.parametrize("path", ["../escape.yaml", "/tmp/escape.yaml", "nodes/../../escape.yaml",
                                  ".hidden/x.yaml", "nodes\\..\\escape.yaml", "nodes//x.yaml",
                                  "C:/escape.yaml"])
def test_a_manifest_naming_paths_outside_the_tree_is_refused(setup: Setup, path: str) -> None:
    first = first_sync(setup)
    data = b"id: x\n"
    sha = hashlib.sha256(data).hexdigest()
    (setup.out / "files" / sha).write_bytes(data)
    key = bundle.load_public_key(setup.keys / "signing.pub")
    good = bundle.open_envelope((setup.out / "latest.json").read_bytes(), key)
    parts = [{"name": p.name, "sha256": p.sha256, "size": p.size, "files": p.files}
             for p in good.parts]
    parts.append(store_part(setup, [{"path": path, "sha256": sha, "size": len(data)}]))
    sign(setup, {"format": 1, "version": "29990101T000000Z-00000000",
                 "created": "2999-01-01T00:00:00Z", "content_version": "x",
                 "files": good.files + 1, "bytes": good.bytes + len(data), "digest": "x",
                 "parts": parts})
    result = setup.sync()
    assert result.exit_code == 1
    assert "the manifest names" in result.output, result.output
    assert setup.current() == first
    assert not (setup.tmp / "escape.yaml").exists() and not Path("/tmp/escape.yaml").exists()
    assert not (setup.data / "escape.yaml").exists()


def test_a_server_answering_500_or_unreachable_changes_nothing(setup: Setup) -> None:
    first = first_sync(setup)
    app = setup.app()
    setup.edit_article()
    setup.publish()
    setup.server.faults["/latest.json"] = Fault("500")
    result = setup.sync()
    assert result.exit_code == 1 and "answered 500" in result.output
    setup.server.faults = {f"/files/{setup.sha(ARTICLE)}": Fault("500")}
    result = setup.sync()
    assert result.exit_code == 1 and "answered 500" in result.output
    setup.server.faults = {}
    result = setup.sync(MIGRANTLINE_CENTRAL_URL="http://127.0.0.1:9")  # nothing listens
    assert result.exit_code == 1 and "cannot reach the central store" in result.output
    assert "Connection refused" in result.output
    assert setup.current() == first
    assert served(app)["sync"]["consecutive_failures"] == 3
    assert served(app)["status"] == "ok" and "SYNCED EDIT" not in article(app)
    app.extensions["migrantline"].store.close()


@pytest.mark.engine_independent
def test_a_tree_failing_the_content_check_is_not_installed(setup: Setup) -> None:
    first = first_sync(setup)
    main_yaml = setup.tree / "nodes/main/main.yaml"
    main_yaml.write_text(main_yaml.read_text().replace("  - at_work\n", "  - at_wrok\n"))
    key = bundle.load_private_key(setup.keys / "signing.key")
    bundle.publish(setup.tree, setup.out, key, "broken")  # a publisher skipping the check
    result = setup.sync()
    assert result.exit_code == 1
    assert "fails the content check" in result.output and "at_wrok" in result.output
    assert setup.current() == first
    assert not (setup.data / "content" / ".staging").exists()


@pytest.mark.engine_independent
def test_an_older_version_offered_is_refused(setup: Setup) -> None:
    setup.publish()
    old_latest = (setup.out / "latest.json").read_bytes()
    setup.edit_article()
    newer = setup.publish()
    assert setup.sync().exit_code == 0
    (setup.out / "latest.json").write_bytes(old_latest)  # a central store restored from backup
    result = setup.sync()
    assert result.exit_code == 1 and "older than the version served" in result.output
    assert setup.current() == newer


@pytest.mark.engine_independent
def test_two_syncs_never_run_at_once(setup: Setup) -> None:
    first = first_sync(setup)
    setup.edit_article()
    setup.publish()
    with (setup.data / "content" / "sync.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = setup.sync()
        assert result.exit_code == 1 and "another sync is running" in result.output
        assert setup.current() == first
    assert setup.sync().exit_code == 0


def test_rollback_and_the_next_sync(setup: Setup) -> None:
    result = setup.cli("content", "rollback")
    assert result.exit_code == 1 and "nothing was ever synced" in result.output
    first = first_sync(setup)
    result = setup.cli("content", "rollback")
    assert result.exit_code == 1 and "no previous version" in result.output
    app = setup.app()
    setup.edit_article()
    second = setup.publish()
    assert setup.sync().exit_code == 0
    wait_served(app, "SYNCED EDIT")

    result = setup.cli("content", "rollback")
    assert result.exit_code == 0, result.output
    assert setup.current() == first
    wait_served(app, OLD)
    # The rolled-back version is not installed again ...
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0 and "was rolled back" in result.output
    assert [r.path for r in setup.server.requests_since(start)] == ["/latest.json"]
    assert setup.current() == first
    # ... a newer one is.
    setup.edit_article("SYNCED AGAIN")
    (setup.tree / ARTICLE).write_text((setup.tree / ARTICLE).read_text().replace(
        EDITED, "SYNCED AGAIN."))
    third = setup.publish()
    assert setup.sync().exit_code == 0
    assert setup.current() == third != second
    wait_served(app, "SYNCED AGAIN")
    app.extensions["migrantline"].store.close()


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "var"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(target)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip("a full disk is tested on a small tmpfs, and mounting one is not permitted "
                    f"here (needs root): {mounted.stderr.strip()}")
    try:
        yield target
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_a_full_disk_changes_nothing(setup: Setup, small_disk: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "DISK_RESERVE", 512 * 1024)
    first = first_sync(setup)
    app = setup.app()
    assert OLD in article(app)

    # Too big for the free space: refused before a byte of it is downloaded.
    huge = setup.add_audio("huge.wav", 12_000_000)
    setup.publish()
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 1 and "not enough disk space" in result.output
    assert f"/files/{huge}" not in [r.path for r in setup.server.requests_since(start)]
    assert setup.current() == first

    # Fits when the sync starts, but the disk fills up during the download (ENOSPC).
    (setup.tree / "audio" / "en" / "huge.wav").unlink()
    sha = setup.add_audio("big.wav", 3_000_000)
    setup.publish()
    filler = small_disk / "filler"

    def fill_disk() -> None:
        # Unbuffered: a buffered file would flush its remainder again on close and raise
        # ENOSPC out of the hook, breaking the connection instead of filling the disk.
        with filler.open("wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass

    setup.server.faults[f"/files/{sha}"] = Fault("hook", times=1, hook=fill_disk)
    result = setup.sync()
    assert result.exit_code == 1, result.output
    assert "is full" in result.output and "No space left" in result.output, result.output
    assert setup.current() == first
    assert not list((setup.data / "content" / ".downloads").glob("*.part"))
    filler.unlink()
    time.sleep(0.1)
    assert OLD in article(app)
    assert served(app)["content_version"]

    result = setup.sync()
    assert result.exit_code == 0, result.output
    assert (setup.data / "content/current/audio/en/big.wav").stat().st_size == 3_000_000
    app.extensions["migrantline"].store.close()


# ---------------------------------------------------------------- in the service


def test_background_sync_with_backoff_and_health(setup: Setup) -> None:
    version = setup.publish()
    app = setup.app(MIGRANTLINE_SYNC_INTERVAL_SECONDS="0.2")
    services = app.extensions["migrantline"]
    try:
        deadline = time.time() + 15
        while served(app).get("content_version") is None or setup.current() != version:
            assert time.time() < deadline, served(app)
            time.sleep(0.05)
        assert OLD in article(app)
        health = served(app)
        assert health["status"] == "ok" and health["sync"]["configured"] is True
        assert health["sync"]["result"] in ("updated", "current")

        setup.server.faults["/latest.json"] = Fault("500")
        deadline = time.time() + 15
        while served(app)["sync"]["consecutive_failures"] < 2 or services.sync.failures < 2:
            assert time.time() < deadline, served(app)["sync"]
            time.sleep(0.05)
        assert served(app)["status"] == "ok"
        setup.server.faults.clear()
        setup.edit_article()
        newer = setup.publish()
        wait_served(app, "SYNCED EDIT", timeout=20)
        assert setup.current() == newer
    finally:
        services.sync.stop()
        services.store.close()


def test_nothing_waits_on_the_network(setup: Setup) -> None:
    first_sync(setup)
    setup.server.faults["/latest.json"] = Fault("hang", seconds=3)
    app = setup.app(MIGRANTLINE_SYNC_INTERVAL_SECONDS="0.1")
    services = app.extensions["migrantline"]
    try:
        deadline = time.time() + 5
        while not any(r.path == "/latest.json" for r in setup.server.log[1:]):
            assert time.time() < deadline
            time.sleep(0.02)
        time.sleep(0.1)  # the background sync is now waiting on the central store
        client = app.test_client()
        started = time.perf_counter()
        assert OLD in article(app)
        assert client.get("/healthz").status_code == 200
        assert time.perf_counter() - started < 0.5
    finally:
        services.sync.stop()
        services.store.close()


@pytest.mark.engine_independent
def test_next_delay_is_jittered_and_backs_off() -> None:
    rng = random.Random(1)
    ok = [next_delay(900, 0, rng) for _ in range(200)]
    assert 720 <= min(ok) < 760 and 1040 < max(ok) <= 1080
    failing = [next_delay(900, n, random.Random(2)) for n in range(1, 10)]
    assert failing[0] < 40 and failing[1] > failing[0]
    assert max(failing) <= 3600 * 1.2
    assert next_delay(0.2, 1, rng) < 0.3  # a short interval retries as fast


def test_served_content_never_changes_except_to_a_complete_checked_version(
        setup: Setup, tmp_path: Path) -> None:
    """Callers walk while syncs fail every way; they only ever see v1, then v2."""
    first = first_sync(setup)
    app = setup.app(MIGRANTLINE_CONTENT_POLL_SECONDS="0.02")
    # One list per caller: a session keeps the version it began on, so across two callers a
    # session dialled just before the switch may finish after the other caller saw v2.
    seen: list[list[str]] = [[], []]
    stop = threading.Event()

    def caller(texts: list[str]) -> None:
        client = app.test_client()
        while not stop.is_set():
            phone = Phone(client)
            phone.dial()
            texts.append(full_text(phone))

    threads = [threading.Thread(target=caller, args=(texts,)) for texts in seen]
    for thread in threads:
        thread.start()
    try:
        sha = setup.add_audio("prompt.wav", 400_000)
        setup.edit_article()
        other = tmp_path / "other"
        bundle.keygen(other)
        setup.publish(MIGRANTLINE_SIGNING_KEY=str(other / "signing.key"))
        assert setup.sync().exit_code == 1  # bad signature
        newer = setup.publish()
        for fault in ("cut", "corrupt", "500"):
            setup.server.faults = {f"/files/{sha}": Fault(fault)}
            assert setup.sync().exit_code == 1, fault
            assert setup.current() == first
            time.sleep(0.1)
        setup.server.faults = {}
        result = setup.sync()
        assert result.exit_code == 0, result.output
        assert setup.current() == newer
        wait_served(app, "SYNCED EDIT")
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    everything = [text for texts in seen for text in texts]
    assert any("SYNCED EDIT" in t for t in everything) and any(OLD in t for t in everything)
    for texts in seen:
        switched = False
        for text in texts:
            assert ("SYNCED EDIT" in text) != (OLD in text), text
            switched = switched or "SYNCED EDIT" in text
            assert not (switched and OLD in text)  # never back to the old one
    app.extensions["migrantline"].store.close()


# ---------------------------------------------------------------- the "done when"


class _PlainHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_done_when_with_a_plain_static_server(setup: Setup, tmp_path: Path) -> None:
    """Publish the demo, serve it with Python's plain http.server, sync a fresh deployment,
    change an article, tamper with a file, cut the server off: always the last good version."""
    version = setup.publish()

    def plain(directory: Path) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a: _PlainHandler(*a, directory=str(directory)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    http = plain(setup.out)
    url = f"http://127.0.0.1:{http.server_address[1]}"
    try:
        assert setup.sync(MIGRANTLINE_CENTRAL_URL=url).exit_code == 0
        app = setup.app(MIGRANTLINE_CENTRAL_URL=url)
        assert OLD in article(app)
        assert served(app)["sync"]["version"] == version

        setup.edit_article()
        newer = setup.publish()
        result = setup.sync(MIGRANTLINE_CENTRAL_URL=url)
        assert result.exit_code == 0 and "1 file(s) downloaded" in result.output, result.output
        wait_served(app, "SYNCED EDIT")

        setup.edit_article("x")
        (setup.tree / ARTICLE).write_text((setup.tree / ARTICLE).read_text().replace(
            EDITED, "THIRD EDIT."))
        setup.publish()
        stored = setup.out / "files" / setup.sha(ARTICLE)
        stored.write_bytes(stored.read_bytes().replace(b"THIRD EDIT", b"TAMPERED!!"))
        result = setup.sync(MIGRANTLINE_CENTRAL_URL=url)
        assert result.exit_code == 1 and "tampered" in result.output
        assert setup.current() == newer and "SYNCED EDIT" in article(app)
    finally:
        http.shutdown()
        http.server_close()
    result = setup.sync(MIGRANTLINE_CENTRAL_URL=url)  # the server is gone
    assert result.exit_code == 1 and "cannot reach" in result.output
    assert setup.current() == newer and "SYNCED EDIT" in article(app)
    assert served(app)["status"] == "ok"
    app.extensions["migrantline"].store.close()
