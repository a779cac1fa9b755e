"""Sync over a poor link: packs, resume, a bandwidth cap, progress in words, --dry-run.

Driven like the other sync tests: the CLI against a real static server on
127.0.0.1, and through a throttling TCP proxy (real sockets) for a slow,
delayed link that cuts.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ussd_app.content import central
from ussd_app.content.progress import Meter, human_time, line
from ussd_app.content.sync import BackgroundSync, sync

from .static_server import Fault, serving
from .test_sync import Setup, first_sync
from .throttle_proxy import throttled

AUDIO_FILES = 30
AUDIO_SIZE = 20_000


@pytest.fixture(name="setup")
def _setup(tmp_path: Path) -> Iterator[Setup]:
    with serving(Path("/nonexistent")) as server:
        yield Setup(tmp_path, server)


def add_language_audio(setup: Setup, lang: str = "fr", count: int = AUDIO_FILES,
                       size: int = AUDIO_SIZE) -> dict[str, str]:
    """A folder of recordings: what a new language brings (sha -> path)."""
    rng = random.Random(lang)
    found = {}
    for i in range(count):
        path = setup.tree / "audio" / lang / f"p{i:03}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        found[hashlib.sha256(path.read_bytes()).hexdigest()] = path.relative_to(
            setup.tree).as_posix()
    return found


def tree_files(setup: Setup) -> int:
    return sum(1 for p in setup.tree.rglob("*") if p.is_file())


def served_tree_matches(setup: Setup) -> None:
    current = setup.data / "content" / "current"
    for path in setup.tree.rglob("*"):
        if path.is_file():
            rel = path.relative_to(setup.tree)
            assert (current / rel).read_bytes() == path.read_bytes(), rel


def test_publish_writes_one_pack_per_part_and_a_fresh_sync_uses_them(setup: Setup) -> None:
    add_language_audio(setup)
    version = setup.publish()
    manifest = json.loads(json.loads((setup.out / "latest.json").read_bytes())["manifest"])
    packs = {p.name for p in (setup.out / "packs").iterdir()}
    assert {p for p in packs if not p.endswith(".gz")} == \
        {part["sha256"] for part in manifest["parts"]}
    # text packs have a gzip copy beside them, audio (incompressible) none
    gzipped = {p.removesuffix(".gz") for p in packs if p.endswith(".gz")}
    names = {part["sha256"]: part["name"] for part in manifest["parts"]}
    assert gzipped and all(not names[p].startswith("audio/") for p in gzipped)
    audio_part = next(p for p in manifest["parts"] if p["name"] == "audio/fr")
    assert (setup.out / "packs" / audio_part["sha256"]).stat().st_size == \
        AUDIO_FILES * AUDIO_SIZE

    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    assert setup.current() == version
    served_tree_matches(setup)
    asked = setup.server.requests_since(start)
    assert f"/packs/{audio_part['sha256']}" in [r.path for r in asked]
    assert not any(r.path.startswith("/files/") and r.sent == AUDIO_SIZE for r in asked)
    # far fewer requests than files: the manifest, its parts, a few packs, small folders
    assert len(asked) < tree_files(setup) / 2, [r.path for r in asked]


def test_one_changed_recording_fetches_that_file_not_the_pack(setup: Setup) -> None:
    added = add_language_audio(setup)
    first_sync(setup)
    path = setup.tree / next(iter(added.values()))
    path.write_bytes(random.Random(5).randbytes(AUDIO_SIZE))
    newer = setup.publish()
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    asked = [r.path for r in setup.server.requests_since(start)]
    assert not any(p.startswith("/packs/") for p in asked), asked
    assert f"/files/{hashlib.sha256(path.read_bytes()).hexdigest()}" in asked
    assert setup.current() == newer


def audio_pack(setup: Setup) -> str:
    manifest = json.loads(json.loads((setup.out / "latest.json").read_bytes())["manifest"])
    return str(next(p for p in manifest["parts"] if p["name"] == "audio/fr")["sha256"])


def test_a_pack_cut_mid_file_is_resumed(setup: Setup) -> None:
    first_sync(setup)
    add_language_audio(setup)
    newer = setup.publish()
    pack = audio_pack(setup)
    setup.server.faults[f"/packs/{pack}"] = Fault("cut", times=1)  # cut at half: mid-file
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    asked = [r for r in setup.server.requests_since(start) if r.path == f"/packs/{pack}"]
    assert [r.status for r in asked] == [200, 206]
    assert asked[1].headers["Range"].startswith("bytes=")
    assert asked[0].sent + asked[1].sent <= AUDIO_FILES * AUDIO_SIZE + central.CHUNK
    assert setup.current() == newer
    served_tree_matches(setup)


def test_a_pack_cut_for_good_resumes_on_the_next_sync(setup: Setup,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The link drops for longer than one sync retries: the next sync asks only for the rest
    of the pack (the files received whole are kept, the one cut is continued)."""
    monkeypatch.setattr(central, "RETRY_PAUSE", 0.01)
    first_sync(setup)
    add_language_audio(setup)
    newer = setup.publish()
    pack = audio_pack(setup)
    setup.server.faults[f"/packs/{pack}"] = Fault("cut", times=central.RETRIES + 1)
    start = len(setup.server.log)
    failed = setup.sync()
    assert failed.exit_code != 0 and "run sync again" in failed.output, failed.output
    downloads = [p.name for p in (setup.data / "content" / ".downloads").iterdir()]
    assert f"pack-{pack}.at" in downloads, downloads  # how far the pack got
    assert not any(n.startswith("pack-") and n.endswith(".part") for n in downloads)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    asked = [r for r in setup.server.requests_since(start) if r.path == f"/packs/{pack}"]
    last = asked[-1]
    assert last.status == 206 and last.sent < AUDIO_FILES * AUDIO_SIZE / 2 + central.CHUNK
    assert setup.current() == newer
    served_tree_matches(setup)


def test_a_file_failing_its_hash_in_a_pack_is_fetched_alone(setup: Setup) -> None:
    first_sync(setup)
    added = add_language_audio(setup)
    newer = setup.publish()
    pack = audio_pack(setup)
    setup.server.faults[f"/packs/{pack}"] = Fault("corrupt", times=1)  # last byte flipped
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    asked = [r.path for r in setup.server.requests_since(start)]
    last = max(added, key=lambda sha: added[sha])  # the pack's last file: its last byte
    singles = [p for p in asked if p.startswith("/files/") and p[7:] in added]
    assert singles == [f"/files/{last}"], asked
    assert setup.current() == newer
    served_tree_matches(setup)


def test_a_central_store_without_packs_is_synced_file_by_file(setup: Setup) -> None:
    add_language_audio(setup)
    version = setup.publish()
    for pack in (setup.out / "packs").iterdir():  # the layout before packs
        pack.unlink()
    (setup.out / "packs").rmdir()
    start = len(setup.server.log)
    result = setup.sync()
    assert result.exit_code == 0, result.output
    assert setup.current() == version
    asked = setup.server.requests_since(start)
    assert sum(1 for r in asked if r.path.startswith("/files/") and r.sent == AUDIO_SIZE) \
        == AUDIO_FILES
    served_tree_matches(setup)


def test_dry_run_says_what_a_sync_would_cost_and_changes_nothing(setup: Setup) -> None:
    first = first_sync(setup)
    add_language_audio(setup)
    newer = setup.publish()
    result = setup.cli("content", "sync", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"version {newer} is available" in result.output
    assert "would download at most 600 kB in 1 request(s)" in result.output, result.output
    assert f"{AUDIO_FILES} of " in result.output and "Nothing was changed" in result.output
    assert setup.current() == first
    downloads = setup.data / "content" / ".downloads"
    assert not downloads.exists() or not list(downloads.iterdir())
    start = len(setup.server.log)
    assert setup.sync().exit_code == 0
    pack_bytes = sum(r.sent for r in setup.server.requests_since(start)
                     if r.path.startswith("/packs/"))
    assert pack_bytes == AUDIO_FILES * AUDIO_SIZE
    result = setup.cli("content", "sync", "--dry-run")
    assert "already up to date" in result.output and "would download nothing" in \
        result.output


def test_the_progress_line_reads_like_a_person_talks() -> None:
    assert line(12_400_000, 40_100_000, 110_000) == \
        "12.4 MB of 40.1 MB, 110 kB/s, about 4 minutes left"
    assert line(0, 5_000_000, 0) == "0 bytes of 5.0 MB, starting"
    assert human_time(20) == "less than a minute"
    assert human_time(3 * 3600) == "about 3.0 hours"
    clock = [0.0]
    meter = Meter(1_000_000, clock=lambda: clock[0])
    for _ in range(10):
        clock[0] += 1
        meter.add(50_000)
    assert meter.line() == "500 kB of 1.0 MB, 50 kB/s, less than a minute left"


def test_the_bandwidth_cap_is_honoured_and_validated(setup: Setup) -> None:
    add_language_audio(setup)
    setup.publish()
    result = setup.sync(MIGRANTLINE_SYNC_MAX_KBPS="a lot")
    assert result.exit_code != 0 and "MIGRANTLINE_SYNC_MAX_KBPS" in result.output
    started = time.monotonic()
    result = setup.sync(MIGRANTLINE_SYNC_MAX_KBPS="2000")  # 250 kB/s
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    fetched = AUDIO_FILES * AUDIO_SIZE
    assert elapsed >= fetched / 250_000 * 0.8, elapsed


def test_backoff_survives_a_restart(setup: Setup) -> None:
    setup.publish()
    config = setup.config(MIGRANTLINE_CENTRAL_URL="http://127.0.0.1:9/",
                          MIGRANTLINE_SYNC_INTERVAL_SECONDS="900")
    for _ in range(6):  # six failures: the next try is far off
        assert sync(config).status == "failed"
    background = BackgroundSync(config, rng=random.Random(1))
    try:
        assert background.failures == 6
        assert background.next_due - time.monotonic() > 0.8 * 30 * 2 ** 5 - 5
    finally:
        background.stop()


def test_a_sync_through_a_slow_delayed_link_that_cuts(setup: Setup) -> None:
    """1 MB through 2 Mbit/s with a 100 ms round trip and three cuts: it completes,
    every file verified, and the served folder switches at once."""
    first = first_sync(setup)
    add_language_audio(setup, count=25, size=40_000)
    newer = setup.publish()
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:  # what the service would read at any moment
        link = setup.data / "content" / "current"
        while not stop.is_set():
            name = os.readlink(link).rsplit("/", 1)[-1]
            seen.add(name)
            if name == newer:
                assert (link / "audio" / "fr" / "p024.wav").stat().st_size == 40_000
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with throttled(setup.server.url, rate=250_000, delay=0.05, cuts=3,
                       cut_after=(150_000, 300_000)) as proxy:
            started = time.monotonic()
            result = setup.sync(MIGRANTLINE_CENTRAL_URL=proxy.url)
            elapsed = time.monotonic() - started
    finally:
        stop.set()
        watcher.join()
    assert result.exit_code == 0, result.output
    assert proxy.cut == 3
    assert seen == {first, newer}
    assert setup.current() == newer
    served_tree_matches(setup)
    assert elapsed < 15
    assert Path(setup.data / "content" / ".downloads").exists() is False
