"""How long `content check` takes on the demo tree offered in 4 and in 12 languages.

Issue 16's target: the check of 12 languages x the demo tree stays under 2 s. The
12-language tree is the demo content with the eight corridor languages added to
``site.yaml`` (their texts fall back to English: the check pages them all the same).
Times ``check_content`` in-process (parse, contact directory, links, coverage, paging
every node in every language for the USSD and both SMS layouts), best and median of
``--runs``, beside a bare read and YAML parse of the same files.

Run: ``.venv/bin/python bench/content_check_languages.py [--runs 5]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ussd_app import settings  # noqa: E402
from ussd_app.content.check import check_content  # noqa: E402
from ussd_app.content.layouts import content_layouts  # noqa: E402
from ussd_app.i18n import Catalogs  # noqa: E402

CORRIDOR = [("km", "ខ្មែរ"), ("lo", "ລາວ"), ("my", "မြန်မာ"), ("vi", "Tiếng Việt"),
            ("th", "ไทย"), ("ms", "Bahasa Melayu"), ("bn", "বাংলা"), ("am", "አማርኛ")]


def tree(folder: Path, languages: list[tuple[str, str]]) -> Path:
    content = folder / "content"
    shutil.copytree(ROOT / "content", content)
    site = content / "site.yaml"
    added = "".join(f"  - code: {code}\n    name: {name}\n" for code, name in languages)
    site.write_text(site.read_text("utf-8").replace("default_language:",
                                                    added + "default_language:"), "utf-8")
    return content


def timed(run: int, work: object) -> tuple[float, float]:
    times = []
    for _ in range(run):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    layouts = content_layouts(settings.load({}))
    with tempfile.TemporaryDirectory() as tmp:
        for name, languages in (("4 languages", []), ("12 languages", CORRIDOR)):
            content = tree(Path(tmp) / name.replace(" ", "_"), languages)
            files = sorted(content.rglob("*.yaml"))

            def bare(files: list[Path] = files) -> None:
                for path in files:
                    yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)

            def check(content: Path = content) -> None:
                # A fresh catalog each time: the check's own caches start cold, as in the CLI.
                checked = check_content(content, layouts, t=Catalogs().gettext)
                assert not checked.errors, checked.errors

            b_best, b_med = timed(args.runs, bare)
            c_best, c_med = timed(args.runs, check)
            print(f"{name:>12}: check best {c_best * 1000:6.0f} ms, median {c_med * 1000:6.0f} ms"
                  f"; bare YAML parse best {b_best * 1000:5.0f} ms ({len(files)} files)")


if __name__ == "__main__":
    main()
