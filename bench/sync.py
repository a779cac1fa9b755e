"""What a content sync costs, beside what copying the whole tree would.

Builds a synthetic tree of 20 languages x 500 nodes (``content_load.build``)
plus one audio prompt per node and language (8 kHz, 8-bit mono, 3 s: 24 kB of
incompressible bytes each, so 10,000 files and 240 MB), publishes it, serves
OUT from a local HTTP server that behaves like nginx (ETag, 304, Range), and
measures in the same run:

- a fresh deployment's first sync, by packs; beside it, the same sync file by
  file (the path a central store without packs still gets), one GET of the
  whole tree as a tar file from the same server, and a plain recursive copy on
  the same disk;
- a sync of the unchanged tree (requests, bytes);
- a sync after one article changed; beside it, the tar again (what a naive
  "download everything" sync moves) and a flat manifest (every file in one
  list, what the split manifest avoids re-fetching);
- the bytes of a fresh sync as before issue 18 (WAV prompts, no gzip) beside
  now (MP3 prompts, text gzipped by a ``gzip_static`` server), with prompts of
  real speech (``--audio speech``, the default: a spoken sentence with the
  silence around it, as a prompt is; every file differs) or noise (``--audio
  noise``: ``--audio-kb`` each, quicker, but MP3 cannot shrink noise as it
  shrinks speech);
- a fresh sync of a smaller tree (``--slow-languages`` x ``--slow-nodes``, so
  it takes well under a minute) through ``tests/throttle_proxy.py`` at 1 Mbit/s
  and a 300 ms round trip, by packs and file by file, beside the ideal (bytes
  divided by the rate).

Run: ``.venv/bin/python bench/sync.py [--languages 20] [--nodes 500] [--audio-kb 24]
[--audio speech|noise] [--slow-languages 2] [--slow-nodes 40]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.content_load import _cpu, build  # noqa: E402
from tests.static_server import serving  # noqa: E402
from tests.throttle_proxy import throttled  # noqa: E402
from ussd_app.content import bundle, check, packs, sync  # noqa: E402

SLOW_RATE = 125_000  # bytes a second: 1 Mbit/s
SLOW_DELAY = 0.15  # seconds each way: a 300 ms round trip


def wav(rng: random.Random, size: int) -> bytes:
    """A WAV header (8 kHz, 8-bit mono) and ``size`` bytes of noise."""
    header = (b"RIFF" + (36 + size).to_bytes(4, "little") + b"WAVEfmt "
              + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
              + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
              + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little")
              + (8).to_bytes(2, "little") + b"data" + size.to_bytes(4, "little"))
    return header + rng.randbytes(size)


FLIP = bytes(b ^ 1 for b in range(256))  # u-law: the lowest step of loudness
SILENT = 0.8  # seconds of silence espeak-ng is told to leave between sentences


def sentences(base: Path, count: int) -> list[bytes]:
    """``count`` spoken sentences as 8 kHz u-law samples, each with the silence around it
    a prompt has (espeak-ng, one call: quick, and real speech for the MP3 encoder)."""
    words = ("your contract wages passport agency embassy hotline salary employer visa "
             "rights fees overtime leave insurance return family contact police help "
             "recruitment licence complaint reference number press one two three nine").split()
    rng = random.Random(7)
    ssml = "<speak>" + "".join(
        " ".join(rng.choice(words) for _ in range(rng.randint(5, 9)))
        + f'.<break time="{int(SILENT * 1000)}ms"/>' for _ in range(count)) + "</speak>"
    raw, ulaw = base / "speech-raw.wav", base / "speech.wav"
    subprocess.run(["espeak-ng", "-m", "-v", "en", "-w", str(raw), ssml], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-e", "u-law", "-b", "8",
                    str(ulaw)], check=True)
    data = ulaw.read_bytes()
    samples = data[data.index(b"data") + 8:]
    # cut in the middle of each long silence (u-law: 0xFF and 0x7F are zero, near them quiet)
    quiet = [b in (0xFF, 0x7F, 0xFE, 0x7E, 0xFD, 0x7D) for b in samples]
    cuts, run = [0], 0
    for i, q in enumerate(quiet):
        run = run + 1 if q else 0
        if run == int(8000 * SILENT * 0.6):
            cuts.append(i - run // 2)
    cuts.append(len(samples))
    return [samples[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b - a > 8000]


def ulaw_wav(samples: bytes) -> bytes:
    """A WAV (8 kHz u-law mono, as prompts were before MP3) holding ``samples``."""
    size = len(samples)
    return (b"RIFF" + (36 + size).to_bytes(4, "little") + b"WAVEfmt "
            + (16).to_bytes(4, "little") + (7).to_bytes(2, "little")
            + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
            + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little")
            + (8).to_bytes(2, "little") + b"data" + size.to_bytes(4, "little") + samples)


def add_audio(root: Path, size: int, kind: str = "noise") -> int:
    """One prompt a node and language: ``size`` bytes of noise, or a spoken sentence with
    its silence before and after, as a prompt is (every file different)."""
    rng = random.Random(11)
    import yaml

    codes = [lang["code"] for lang in yaml.safe_load((root / "site.yaml").read_text())
             ["languages"]]
    nodes = sorted((root / "nodes").glob("*.yaml"))
    said = sentences(root.parent, min(len(nodes), 200)) if kind == "speech" else []
    count = 0
    for n, node in enumerate(nodes):
        for k, code in enumerate(codes):
            path = root / "audio" / code / f"{node.stem}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            if said:
                # the same sentence for another language or node differs in a low bit of
                # some samples (inaudible; silence cut at publish would undo a mere shift)
                variant = (n // len(said)) * len(codes) + k
                samples = bytearray(said[n % len(said)])
                samples[::variant + 2] = samples[::variant + 2].translate(FLIP)
                path.write_bytes(ulaw_wav(bytes(samples)))
            else:
                path.write_bytes(wav(rng, size))
            count += 1
    return count


def change_one_article(root: Path) -> str:
    import yaml

    path = sorted((root / "nodes").glob("n*.yaml"))[10]
    node = yaml.safe_load(path.read_text())
    node["body"]["en"] = "changed " + node["body"]["en"]
    path.write_text(yaml.safe_dump(node, allow_unicode=True))
    return path.relative_to(root).as_posix()


def timed_sync(config: dict[str, str]) -> sync.Result:
    result = sync.sync(config)
    assert result.ok, result.message
    return result


def file_by_file(config: dict[str, str]) -> sync.Result:
    """The sync as it was before packs (and as it still is without them)."""
    saved = packs.PACK_MIN_FILES
    packs.PACK_MIN_FILES = 10**9
    try:
        return timed_sync(config)
    finally:
        packs.PACK_MIN_FILES = saved


def slow_link(base: Path, languages: int, nodes: int, audio_kb: int) -> str:
    """A fresh sync of a small tree through a 1 Mbit/s, 300 ms link: packs, file by file."""
    tree, out = base / "slow-tree", base / "slow-out"
    build(tree, languages, nodes)
    add_audio(tree, audio_kb * 1000)
    key = bundle.load_private_key(base / "keys" / "signing.key")
    config = {"MIGRANTLINE_CONTENT_DIR": str(tree),
              "MIGRANTLINE_CENTRAL_PUBKEY": str(base / "keys" / "signing.pub"),
              "MIGRANTLINE_USSD_MAX_GSM7": "160", "MIGRANTLINE_USSD_MAX_UCS2": "70",
              "MIGRANTLINE_SMS_MAX_SEGMENTS": "2", "MIGRANTLINE_SMS_ARTICLE_MAX_SEGMENTS": "6"}
    checked, errors = check.check_tree(tree, config)
    assert not errors, errors[:3]
    published = bundle.publish(tree, out, key, checked.version)
    lines = []
    with serving(out) as server, throttled(server.url, SLOW_RATE, SLOW_DELAY) as proxy:
        for label, run in (("packs", timed_sync), ("file by file", file_by_file)):
            result = run({**config, "MIGRANTLINE_CENTRAL_URL": proxy.url,
                          "MIGRANTLINE_DATA_DIR": str(base / f"slow-var-{label[0]}")})
            ideal = result.bytes / SLOW_RATE
            lines.append(f"  {label}: {result.requests} requests, {result.bytes / 1e6:.2f} MB, "
                         f"download {result.fetch_seconds:.1f} s (whole sync "
                         f"{result.seconds:.1f} s); ideal {ideal:.1f} s: "
                         f"{result.fetch_seconds / ideal:.2f} x ideal")
    return (f"slow link (1 Mbit/s, 300 ms round trip, via tests/throttle_proxy.py), a "
            f"smaller tree: {languages} languages x {nodes} nodes, {published.files} files, "
            f"{published.bytes / 1e6:.1f} MB\n" + "\n".join(lines))


def fetch(url: str) -> tuple[int, float]:
    import requests

    start = time.perf_counter()
    with requests.get(url, stream=True, timeout=60) as response:
        size = sum(len(chunk) for chunk in response.iter_content(1 << 20))
    return size, time.perf_counter() - start


def publish_now(tree: Path, out: Path, key: object, version: str) -> bundle.Published:
    """As ``content publish`` does now: WAV prompts as MP3, text with a gzip copy."""
    from ussd_app.content.compress import compress_audio

    return bundle.publish(tree, out, key, version,  # type: ignore[arg-type]
                          entries=compress_audio(bundle.scan(tree), out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--languages", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--audio-kb", type=int, default=24, help="size of each audio file")
    parser.add_argument("--audio", choices=("speech", "noise"), default="speech")
    parser.add_argument("--slow-languages", type=int, default=2)
    parser.add_argument("--slow-nodes", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        tree, out, before_out, data = base / "tree", base / "out", base / "out-wav", base / "var"
        print(f"building {args.languages} languages x {args.nodes} nodes + audio "
              f"({args.audio}) ...", file=sys.stderr)
        build(tree, args.languages, args.nodes)
        audio = add_audio(tree, args.audio_kb * 1000, args.audio)
        files = [p for p in tree.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        bundle.keygen(base / "keys")
        key = bundle.load_private_key(base / "keys" / "signing.key")
        config = {"MIGRANTLINE_DATA_DIR": str(data), "MIGRANTLINE_CONTENT_DIR": str(tree),
                  "MIGRANTLINE_CENTRAL_PUBKEY": str(base / "keys" / "signing.pub"),
                  "MIGRANTLINE_USSD_MAX_GSM7": "160", "MIGRANTLINE_USSD_MAX_UCS2": "70",
                  "MIGRANTLINE_SMS_MAX_SEGMENTS": "2", "MIGRANTLINE_SMS_ARTICLE_MAX_SEGMENTS": "6"}

        print("publishing as before (WAV) and as now (MP3, gzip copies) ...", file=sys.stderr)
        start = time.perf_counter()
        checked, errors = check.check_tree(tree, config)
        assert not errors, errors[:3]
        check_seconds = time.perf_counter() - start
        start = time.perf_counter()
        bundle.publish(tree, before_out, key, checked.version)
        for gz in before_out.rglob("*.gz"):  # before issue 18 there were none
            gz.unlink()
        before_seconds = time.perf_counter() - start
        start = time.perf_counter()
        published = publish_now(tree, out, key, checked.version)
        publish_seconds = time.perf_counter() - start

        with serving(before_out) as old:
            old.gzip_static = False
            print("syncing a fresh deployment as before (file by file, WAV) ...",
                  file=sys.stderr)
            baseline = file_by_file({**config, "MIGRANTLINE_CENTRAL_URL": old.url,
                                     "MIGRANTLINE_DATA_DIR": str(base / "var0")})
            shutil.rmtree(base / "var0")
        with serving(out) as server:
            config["MIGRANTLINE_CENTRAL_URL"] = server.url
            print("syncing a fresh deployment, by packs ...", file=sys.stderr)
            fresh = timed_sync(config)
            synced = Path(os.path.realpath(data / "content" / "current"))
            with tarfile.open(out / "whole-tree.tar", "w") as tar:
                tar.add(synced, arcname="tree")
            tar_bytes, tar_seconds = fetch(server.url + "/whole-tree.tar")
            start = time.perf_counter()
            with tarfile.open(out / "whole-tree.tar") as tar:
                tar.extractall(base / "untar", filter="data")
            untar_seconds = tar_seconds + time.perf_counter() - start
            shutil.rmtree(base / "untar")
            start = time.perf_counter()
            shutil.copytree(tree, base / "copy")
            copy_seconds = time.perf_counter() - start

            before = len(server.log)
            unchanged = timed_sync(config)
            unchanged_requests = server.log[before:]

            changed_path = change_one_article(tree)
            checked, errors = check.check_tree(tree, config)
            assert not errors
            publish_now(tree, out, key, checked.version)
            before = len(server.log)
            changed = timed_sync(config)
            changed_requests = server.log[before:]
        manifest = json.loads(json.loads((out / "latest.json").read_bytes())["manifest"])
        flat = len(json.dumps([{"path": p.relative_to(tree).as_posix(), "sha256": "0" * 64,
                                "size": p.stat().st_size} for p in files],
                              separators=(",", ":")))
        article = (tree / changed_path).stat().st_size
        shutil.rmtree(data)
        shutil.rmtree(base / "copy")
        print("syncing a smaller tree through a slow link ...", file=sys.stderr)
        slow = slow_link(base, args.slow_languages, args.slow_nodes, args.audio_kb)

    print(f"machine: {platform.machine()}, {_cpu()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores; server and deployment on 127.0.0.1")
    print(f"tree: {args.languages} languages x {args.nodes} nodes, {len(files)} files "
          f"({audio} audio of {args.audio_kb} kB, {args.audio}), {size / 1e6:.1f} MB; manifest "
          f"{len(manifest['parts'])} parts")
    print(f"publish: check {check_seconds:.1f} s; as before (WAV) {before_seconds:.1f} s; now "
          f"(MP3 conversion, gzip copies) {publish_seconds:.1f} s, {published.files} files")
    print(f"fresh sync now (packs, MP3, gzip): {fresh.requests} requests, "
          f"{fresh.bytes / 1e6:.1f} MB, download and verify {fresh.fetch_seconds:.1f} s, "
          f"whole sync {fresh.seconds:.1f} s (with assembling and the content check)")
    print(f"  baseline, as before (file by file, WAV, no gzip): {baseline.requests} requests, "
          f"{baseline.bytes / 1e6:.1f} MB, download and verify {baseline.fetch_seconds:.1f} s, "
          f"whole sync {baseline.seconds:.1f} s")
    print(f"  baseline, one GET of the synced tree as a tar: {tar_bytes / 1e6:.1f} MB, "
          f"{tar_seconds:.2f} s (read and thrown away); with extracting it: "
          f"{untar_seconds:.2f} s; plain recursive copy on the same disk: {copy_seconds:.1f} s")
    print(f"  ratios: requests 1/{baseline.requests / fresh.requests:.0f} of before; bytes "
          f"{fresh.bytes / baseline.bytes:.3f} of before (1/{baseline.bytes / fresh.bytes:.2f});"
          f" download {fresh.fetch_seconds / tar_seconds:.1f} x the tar GET "
          f"({fresh.fetch_seconds / untar_seconds:.1f} x GET and extract; whole sync "
          f"{fresh.seconds / tar_seconds:.1f} x)")
    print(f"unchanged sync: {unchanged.requests} request "
          f"({', '.join(f'{r.path} {r.status}' for r in unchanged_requests)}), "
          f"{unchanged.bytes} bytes downloaded, {unchanged.seconds * 1000:.0f} ms")
    print(f"one article changed ({article} bytes): {changed.requests} requests "
          f"({', '.join(f'{r.path[:18]} {r.status} {r.sent} B' for r in changed_requests)}), "
          f"{changed.bytes / 1e3:.1f} kB, {changed.seconds:.1f} s (includes the content check)")
    print(f"  baseline, the whole tree again: {tar_bytes / 1e6:.1f} MB; a flat manifest "
          f"alone: {flat / 1e3:.0f} kB")
    print(slow)


if __name__ == "__main__":
    main()
