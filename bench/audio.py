"""What the voice prompts weigh per language: 8 kHz u-law WAV (before issue 18) beside MP3.

For each language of the shipped ``content/`` tree, takes every ``--every``-th
prompt of the voice manifest (the texts a caller hears: menus, articles,
digits), speaks it with espeak-ng into the WAV the service made before, and
converts that WAV to the MP3 it makes now (``voice_prompts.tts.to_phone_mp3``:
what `prompts render` and `content publish` run). Prints, per language, the
seconds of speech, both sizes, their ratio (the baseline is the WAV of the same
prompt in the same run), the kbit/s on disk, and both totals scaled to the
whole manifest. Every MP3 is listened to (ffmpeg volumedetect): the largest
difference in duration and in loudness from its WAV is printed too.

Then what a field office's sync fetches when those prompts are recordings in
the content tree (``audio/<lang>/<id>.wav`` with sidecars, as `prompts record
--content` made them before): the shipped tree plus the recordings is
published twice, as it is (``MIGRANTLINE_AUDIO_FORMAT=wav``, the baseline) and
with the WAVs carried as MP3 (``mp3``), and a fresh deployment syncs each from
a local HTTP server; bytes and requests are the sync's own counts.

Run: ``.venv/bin/python bench/audio.py [--every 8] [--workers 2]``
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.content_load import _cpu  # noqa: E402
from ussd_app.channels.voice.ui_messages import VOICE_UI_MESSAGES  # noqa: E402
from ussd_app.engine.loader import read_tree  # noqa: E402
from ussd_app.i18n import default_catalogs  # noqa: E402
from voice_prompts import build_manifest, tts  # noqa: E402
from voice_prompts.manifest import Prompt  # noqa: E402


def one(prompt: Prompt, folder: Path) -> tuple[str, int, int, float, float, float, float]:
    """(lang, WAV bytes, MP3 bytes, seconds, |duration diff|, |loudness diff|, convert s)."""
    wav = folder / prompt.lang / f"{prompt.sha256}.wav"
    mp3 = wav.with_suffix(".mp3")
    tts.synthesize(prompt.text, prompt.lang, wav, "off")
    start = time.perf_counter()
    tts.to_phone_mp3(wav, mp3)
    took = time.perf_counter() - start
    before, after = tts.listen(wav), tts.listen(mp3)
    return (prompt.lang, wav.stat().st_size, mp3.stat().st_size, before.seconds,
            abs(after.seconds - before.seconds), abs(after.mean_db - before.mean_db), took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=int, default=8, help="take every Nth prompt")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tree = read_tree(ROOT / "content")
    manifest = build_manifest(tree, default_catalogs().gettext, VOICE_UI_MESSAGES)
    print(f"machine: {_cpu()}, Python {platform.python_version()}, "
          f"MP3 {tts.MP3_BITRATE}bit/s mono {tts.RATE} Hz; WAV 8 kHz u-law")
    totals = {lang: len({p.sha256 for p in manifest.all(lang)}) for lang in manifest.languages}
    sample = []
    for lang in manifest.languages:
        distinct = list({p.sha256: p for p in manifest.all(lang)}.values())
        sample += distinct[::args.every]
    print(f"speaking {len(sample)} of {sum(totals.values())} distinct prompts ...",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        with ThreadPoolExecutor(args.workers) as pool:
            rows = list(pool.map(lambda p: one(p, Path(tmp)), sample))
        report(rows, manifest.languages, totals)
        synced(Path(tmp), sample)


def synced(base: Path, sample: list[Prompt]) -> None:
    """Fresh-sync bytes of the shipped tree with ``sample`` as WAV recordings, as published
    before and now."""
    import json
    import shutil

    from tests.static_server import serving
    from ussd_app.content import bundle, check, sync
    from ussd_app.content.compress import compress_audio

    tree = base / "tree"
    shutil.copytree(ROOT / "content", tree)
    for prompt in sample:
        wav = tree / "audio" / prompt.lang / f"{prompt.id}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base / prompt.lang / f"{prompt.sha256}.wav", wav)
        wav.with_suffix(".json").write_text(json.dumps({"text_sha256": prompt.sha256}))
    bundle.keygen(base / "keys")
    key = bundle.load_private_key(base / "keys" / "signing.key")
    config = {"MIGRANTLINE_CONTENT_DIR": str(tree),
              "MIGRANTLINE_CENTRAL_PUBKEY": str(base / "keys" / "signing.pub")}
    checked, errors = check.check_tree(tree, config)
    assert not errors, errors[:3]
    results = {}
    for fmt in ("wav", "mp3"):
        out = base / f"out-{fmt}"
        entries = bundle.scan(tree)
        start = time.perf_counter()
        if fmt == "mp3":
            entries = compress_audio(entries, out)
        published = bundle.publish(tree, out, key, checked.version, entries=entries)
        took = time.perf_counter() - start
        with serving(out) as server:
            result = sync.sync({**config, "MIGRANTLINE_CENTRAL_URL": server.url,
                                "MIGRANTLINE_DATA_DIR": str(base / f"var-{fmt}")})
        assert result.ok, result.message
        results[fmt] = result
        print(f"publish as {fmt}: {published.files} files, {published.bytes / 1e6:.1f} MB in "
              f"{took:.1f} s; fresh sync: {result.requests} requests, "
              f"{result.bytes / 1e6:.1f} MB, {result.seconds:.1f} s")
    print(f"fresh sync bytes, mp3 / wav (baseline, same run): "
          f"{results['mp3'].bytes / results['wav'].bytes:.3f} "
          f"({results['wav'].bytes / results['mp3'].bytes:.2f}x fewer); at 1 Mbit/s: "
          f"{results['wav'].bytes * 8 / 1e6 / 60:.1f} min before, "
          f"{results['mp3'].bytes * 8 / 1e6 / 60:.1f} min now")


def report(rows: list[tuple[str, int, int, float, float, float, float]],
           languages: tuple[str, ...], totals: dict[str, int]) -> None:
    print(f"{'lang':<5}{'prompts':>8}{'speech s':>9}{'WAV':>10}{'MP3':>10}{'ratio':>7}"
          f"{'MP3 kbit/s':>11}{'all WAV':>10}{'all MP3':>10}{'max dt s':>9}{'max dB':>7}")
    grand = [0.0, 0.0, 0.0, 0.0]
    for lang in languages:
        mine = [r for r in rows if r[0] == lang]
        wav, mp3 = sum(r[1] for r in mine), sum(r[2] for r in mine)
        seconds = sum(r[3] for r in mine)
        scale = totals[lang] / len(mine)
        grand = [grand[0] + wav, grand[1] + mp3, grand[2] + wav * scale, grand[3] + mp3 * scale]
        print(f"{lang:<5}{len(mine):>8}{seconds:>9.0f}{wav / 1e6:>8.2f}MB{mp3 / 1e6:>8.2f}MB"
              f"{wav / mp3:>6.2f}x{mp3 * 8 / seconds / 1000:>11.1f}"
              f"{wav * scale / 1e6:>8.1f}MB{mp3 * scale / 1e6:>8.1f}MB"
              f"{max(r[4] for r in mine):>9.3f}{max(r[5] for r in mine):>7.2f}")
    print(f"{'all':<5}{len(rows):>8}{sum(r[3] for r in rows):>9.0f}{grand[0] / 1e6:>8.2f}MB"
          f"{grand[1] / 1e6:>8.2f}MB{grand[0] / grand[1]:>6.2f}x{'':>11}"
          f"{grand[2] / 1e6:>8.1f}MB{grand[3] / 1e6:>8.1f}MB")
    took = sorted(r[6] for r in rows)
    print(f"conversion WAV -> MP3: median {took[len(took) // 2] * 1000:.0f} ms a prompt "
          f"(ffmpeg), {sum(took):.1f} s for {len(took)}")


if __name__ == "__main__":
    main()
