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
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp, \
            ThreadPoolExecutor(args.workers) as pool:
        rows = list(pool.map(lambda p: one(p, Path(tmp)), sample))
    print(f"{'lang':<5}{'prompts':>8}{'speech s':>9}{'WAV':>10}{'MP3':>10}{'ratio':>7}"
          f"{'MP3 kbit/s':>11}{'all WAV':>10}{'all MP3':>10}{'max dt s':>9}{'max dB':>7}")
    grand = [0, 0, 0.0, 0.0]
    for lang in manifest.languages:
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
