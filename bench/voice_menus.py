"""How long a voice caller listens before they can choose: seconds of audio per menu.

For each language of the shipped ``content/`` tree, a new caller from Qatar
(+974) calls as Twilio calls: the language menu, their language, the main
menu's first prompt (with "for help now, press 99", said once a call), its
further options ("9 for more"), help now (99: the Qatar numbers first, read
in digit groups) and the hotline list. Every prompt heard is generated for
real with espeak-ng (``prompts render`` does the same), every ``<Play>`` is
fetched from ``/audio/`` and decoded whole (ffmpeg), and its seconds summed:
the time the caller hears, before the provider's own gaps between plays.

The baseline is issue 16's measure of the same menus before this change
(each option read as "label, press N", the whole menu at once).

Run: ``.venv/bin/python bench/voice_menus.py [--lang ne]``
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.content_load import _cpu  # noqa: E402
from tests.conftest import make_app  # noqa: E402
from tests.voice_audio import Ears, render_walk  # noqa: E402
from ussd_app import jobs  # noqa: E402
from ussd_app.channels.voice.speech import VOICE_OPTIONS  # noqa: E402

# Issue 16, before (seconds): the language menu, the main menu, the hotline list.
BASELINE = {"language": 10.9, "en": 24.9, "ne": 28.4, "ar": 27.8, "hotlines": 96.7}
BOUND = 12.0
HOTLINES = "2"  # help now -> hotlines (content/nodes/help_now/help_now.yaml)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", action="append", help="only these languages")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"machine: {_cpu()}, Python {platform.python_version()}; espeak-ng speech, "
          f"MP3 8 kHz; {VOICE_OPTIONS} options per prompt")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-voice-menus-") as tmp:
        app = make_app(Path(tmp))
        tree = app.extensions["migrantline"].content.current
        ears = Ears(app)
        print(f"{'lang':<5}{'language menu':>14}{'main menu':>10}{'(again)':>8}"
              f"{'more 1':>8}{'more 2':>8}{'help now':>9}{'hotlines':>9}{'before':>8}  bound")
        for n, language in enumerate(tree.languages, start=1):
            if args.lang and language.code not in args.lang:
                continue
            walk = (str(n), "9", "9", "99", HOTLINES)
            heard = render_walk(app, walk, number=f"+9745550{n:03d}0")
            again = render_walk(app, (str(n), "9", "00"), number=f"+9745551{n:03d}0")[-1]
            secs = [ears.listen(h) for h in heard]
            main_menu = secs[1].seconds
            left = sum(s.says for s in secs)
            before = BASELINE.get(language.code)
            print(f"{language.code:<5}{secs[0].seconds:>13.1f}s{main_menu:>9.1f}s"
                  f"{ears.listen(again).seconds:>7.1f}s{secs[2].seconds:>7.1f}s"
                  f"{secs[3].seconds:>7.1f}s{secs[4].seconds:>8.1f}s{secs[5].seconds:>8.1f}s"
                  f"{(f'{before:.1f}s' if before else '-'):>8}  "
                  f"{'ok' if max(s.seconds for s in secs[1:4]) < BOUND else 'OVER'}"
                  + (f"  ({left} pieces in the provider's voice, not counted)" if left else ""))
        print(f"before (issue 16): language menu {BASELINE['language']} s, hotline list "
              f"{BASELINE['hotlines']} s")
        jobs.stop_started_since(started)  # before its folder goes: the app's jobs write there
        app.extensions["migrantline"].store.close()


if __name__ == "__main__":
    main()
