"""How long a big content tree takes to load and check, beside a bare YAML parse.

Builds a synthetic tree of 20 languages x 500 nodes (menus and articles of
realistic length, Latin and non-Latin scripts) in a temporary folder, then
times, in the same run:

- baseline: reading every file and parsing it with PyYAML's C loader, no checks;
- check: ``parse_tree`` (schema, links, coverage) plus paging every node in
  every language for the USSD layout, which is what ``content check`` and a
  hot reload do before a tree is served.

Run: ``.venv/bin/python bench/content_load.py [--languages 20] [--nodes 500]``
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ussd_app import settings  # noqa: E402
from ussd_app.channels.ussd.endpoints import UssdLayout  # noqa: E402
from ussd_app.content.check import content_layouts  # noqa: E402
from ussd_app.content.registry import fit_problems  # noqa: E402
from ussd_app.engine.encoding import Limits  # noqa: E402
from ussd_app.engine.loader import parse_tree, read_files  # noqa: E402
from ussd_app.i18n import Catalogs  # noqa: E402

SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyz",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "devanagari": "कखगघचछजझटठडढणतथदधनपफबभमयरलवशसह",
}
CODES = ["en", "ar", "fr", "ne", "hi", "bn", "ur", "sw", "am", "so", "ti", "km", "my", "lo",
         "th", "vi", "id", "ms", "tl", "ps", "fa", "ha", "yo", "om", "si"]


def words(rng: random.Random, script: str, count: int) -> str:
    letters = SCRIPTS[script]
    return " ".join("".join(rng.choice(letters) for _ in range(rng.randint(2, 9)))
                    for _ in range(count))


def build(root: Path, languages: int, nodes: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    codes = CODES[:languages]
    script = {c: ("arabic" if c in ("ar", "ur", "ps", "fa") else
                  "devanagari" if c in ("ne", "hi") else "latin") for c in codes}

    def text(count: int) -> dict[str, str]:
        return {c: words(rng, script[c], count) for c in codes}

    (root / "nodes").mkdir(parents=True)
    site = {"languages": [{"code": c, "name": c.upper()} for c in codes],
            "default_language": "en", "main": "main", "help": "n0001"}
    (root / "site.yaml").write_text(yaml.safe_dump(site, allow_unicode=True))
    menus = max(1, nodes // 10)
    article_ids = [f"n{i:04d}" for i in range(1, nodes - menus - 1)]
    menu_ids = ["main"] + [f"m{i:03d}" for i in range(1, menus)]
    per_menu = max(1, len(article_ids) // (len(menu_ids) - 1 or 1))
    docs = [{"id": "language", "type": "language", "title": text(1)}]
    docs.append({"id": "main", "type": "menu", "title": text(1), "options": menu_ids[1:9] or
                 article_ids[:8]})
    for i, menu_id in enumerate(menu_ids[1:]):
        chunk = article_ids[i * per_menu:(i + 1) * per_menu][:8] or article_ids[:1]
        docs.append({"id": menu_id, "type": "menu", "title": text(2), "options": chunk})
    for article_id in article_ids:
        docs.append({"id": article_id, "type": "article", "title": text(3),
                     "label": text(2), "body": text(rng.randint(40, 120))})
    for doc in docs:
        (root / "nodes" / f"{doc['id']}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--languages", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    layout = UssdLayout(Limits(160, 70))
    all_layouts = content_layouts(settings.load({}))
    catalogs = Catalogs()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"building {args.languages} languages x {args.nodes} nodes ...", file=sys.stderr)
        build(root, args.languages, args.nodes)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())

        def baseline() -> None:
            for data in read_files(root).values():
                yaml.load(data, Loader=yaml.CSafeLoader)

        def check(layouts: list[object]) -> None:
            tree, problems = parse_tree(read_files(root), root=str(root))
            assert tree is not None, [str(p) for p in problems[:5]]
            tree.cache.clear()
            assert not fit_problems(tree, layouts, catalogs.gettext)  # type: ignore[arg-type]

        print("timing ...", file=sys.stderr)
        base = statistics.median(timed(baseline, args.repeat))
        full = statistics.median(timed(lambda: check([layout]), args.repeat))
        every = statistics.median(timed(lambda: check(all_layouts), args.repeat))
    print(f"machine: {platform.processor() or platform.machine()}, {_cpu()}")
    print(f"tree: {args.languages} languages x {args.nodes} nodes, {size / 1e6:.1f} MB of YAML")
    print(f"baseline (read + parse YAML only): {base:.3f} s")
    print(f"load + full check (schema, links, coverage, paging for USSD): {full:.3f} s "
          f"(x{full / base:.1f} the baseline; target under 2 s)")
    print(f"the same, paging for USSD and both SMS layouts (what the service and "
          f"`content check` do): {every:.3f} s (x{every / base:.1f})")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                import os

                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return "unknown cpu"


if __name__ == "__main__":
    main()
