"""How long `content check` takes on the demo tree offered in 4 and in 12 languages.

Issue 16's target: the check of 12 languages x the demo tree stays under 2 s. The
12-language tree is the demo content as shipped (every text translated); the 4-language
one is the same tree with only en, ar, fr and ne left in ``site.yaml`` (the tree before
issue 16), as the baseline. Times ``check_content`` in-process (parse, contact
directory, links, coverage, paging every node in every language for the USSD and both
SMS layouts), best and median of ``--runs``, beside a bare read and YAML parse of the
same files.

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

FIRST_FOUR = ("en", "ar", "fr", "ne")


def tree(folder: Path, only: tuple[str, ...] | None) -> Path:
    """A copy of the demo tree offering every shipped language, or ``only`` these."""
    content = folder / "content"
    shutil.copytree(ROOT / "content", content)
    if only is not None:
        site = content / "site.yaml"
        data = yaml.safe_load(site.read_text("utf-8"))
        data["languages"] = [lang for lang in data["languages"] if lang["code"] in only]
        site.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
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
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, only in (("4 languages", FIRST_FOUR), ("12 languages", None)):
            content = tree(Path(tmp) / name.replace(" ", "_"), only)
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
            best[name] = c_best
            print(f"{name:>12}: check best {c_best * 1000:6.0f} ms, median {c_med * 1000:6.0f} ms"
                  f"; bare YAML parse best {b_best * 1000:5.0f} ms ({len(files)} files)")
    ratio = best["12 languages"] / best["4 languages"]
    print(f"12 languages / 4 languages: {ratio:.2f}x; target: 12 languages under 2 s "
          f"({'met' if best['12 languages'] < 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
