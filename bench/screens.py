"""Screens per article (short and full) and hops per complaint, per language, beside English.

Issue 16: UCS-2 readers paid 2.7x the screens. This counts, in one run on the demo
tree, with the USSD layout the service uses (160 GSM-7 / 70 UCS-2 characters unless
``--gsm7``/``--ucs2`` say otherwise):

* per article: the screens of its short version (what USSD shows) and of its full
  text (what "2 Read it all here" shows), in every language, with the ratio to
  English; the target is no language above 1.5x English for the short versions;
* per language: the hops of the USSD complaint flow (the walk of
  ``tests/test_complaints.file_report``: dial, language, menus, consent, answers,
  send), counting a "98" wherever a caller must turn a page to see the key they need
  (an option past the first page, or the rest of a question), as a reader would.

Everything runs through the engine (``machine.step``/``view``) with the content's own
pages: no network, no database. Actions (file the complaint) answer "next".

Run: ``.venv/bin/python bench/screens.py [--gsm7 160] [--ucs2 70]``; exit status 1 when a short
version is above the target.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ussd_app.channels.ussd.layout import UssdLayout  # noqa: E402
from ussd_app.conversation.core import Conversation  # noqa: E402
from ussd_app.conversation.inbound import Caller  # noqa: E402
from ussd_app.engine.answers import ActionResult, Query  # noqa: E402
from ussd_app.engine.encoding import Limits  # noqa: E402
from ussd_app.engine.loader import read_tree  # noqa: E402
from ussd_app.engine.machine import Context, State, view  # noqa: E402
from ussd_app.engine.model import ARTICLE, Tree  # noqa: E402
from ussd_app.engine.paging import node_pages, short_pages  # noqa: E402
from ussd_app.engine.screens import Screen  # noqa: E402
from ussd_app.engine.state import LANGUAGE_NODE  # noqa: E402
from ussd_app.i18n import Catalogs  # noqa: E402

TARGET = 1.5  # no language's short version above this many times English's screens
DESCRIPTION = ("My employer has not paid me for three months and keeps my passport. "
               "I work 14 hours a day.")


def choice(tree: Tree, node_id: str, value: str) -> str:
    return str(next(i for i, o in enumerate(tree.nodes[node_id].options)
                    if o.value == value) + 1)


def menu_key(tree: Tree, node_id: str, target: str) -> str:
    return str(next(i for i, o in enumerate(tree.nodes[node_id].options)
                    if o.target == target) + 1)


def complaint_keys(tree: Tree) -> list[str]:
    """The inputs of ``file_report`` (contact any time, a PIN, not shared), from the main
    menu on."""
    return [menu_key(tree, "main", "complaints"),
            menu_key(tree, "complaints", "report_consent"),
            choice(tree, "report_consent", "yes"), choice(tree, "report_danger", "no"),
            choice(tree, "report_who", "self"),
            choice(tree, "report_category", "unpaid_wages"),
            choice(tree, "report_against", "employer"), "Golden Sands Contracting",
            choice(tree, "report_country", "qa"), "Doha", DESCRIPTION,
            choice(tree, "report_contact", "any"), choice(tree, "report_pin_choice", "yes"),
            "4321", choice(tree, "report_share", "no"), "1"]


def shows(screen: Screen, key: str) -> bool:
    return any(k == key for k, _ in (*screen.options, *screen.nav))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(header))) + " |"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def ratio(value: float, english: float) -> str:
    return f"{value / english:.2f}x" if english else "-"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gsm7", type=int, default=160)
    parser.add_argument("--ucs2", type=int, default=70)
    args = parser.parse_args()
    tree = read_tree(ROOT / "content")
    t = Catalogs().gettext
    layout = UssdLayout(Limits(args.gsm7, args.ucs2))
    langs = list(tree.language_codes)
    others = [lang for lang in langs if lang != "en"]

    def act(query: Query) -> ActionResult:
        return ActionResult("next")

    articles = sorted((n for n in tree.nodes.values() if n.type == ARTICLE), key=lambda n: n.id)
    short = {(n.id, lang): len(short_pages(tree, n, lang, layout, t))
             for n in articles for lang in langs}
    full = {(n.id, lang): len(node_pages(tree, n, lang, layout, t))
            for n in articles for lang in langs}
    header = ["article", "en short", *(f"{lang} short" for lang in others), "en full",
              *(f"{lang} full" for lang in others)]
    rows = []
    worst: dict[str, float] = dict.fromkeys(others, 0.0)
    for node in articles:
        en_s, en_f = short[node.id, "en"], full[node.id, "en"]
        row = [node.id, str(en_s)]
        for lang in others:
            row.append(f"{short[node.id, lang]} ({ratio(short[node.id, lang], en_s)})")
            worst[lang] = max(worst[lang], short[node.id, lang] / en_s)
        row.append(str(en_f))
        row += [f"{full[node.id, lang]} ({ratio(full[node.id, lang], en_f)})" for lang in others]
        rows.append(row)
    totals = ["**all articles**", str(sum(short[n.id, "en"] for n in articles))]
    for lang in others:
        s = sum(short[n.id, lang] for n in articles)
        totals.append(f"{s} ({ratio(s, sum(short[n.id, 'en'] for n in articles))})")
    totals.append(str(sum(full[n.id, "en"] for n in articles)))
    for lang in others:
        f = sum(full[n.id, lang] for n in articles)
        totals.append(f"{f} ({ratio(f, sum(full[n.id, 'en'] for n in articles))})")
    rows.append(totals)

    print(f"Machine: {platform.machine()}, {_cpu()}, Python {platform.python_version()}; "
          f"USSD screens of {args.gsm7} GSM-7 / {args.ucs2} UCS-2 characters; "
          f"content {tree.version}\n")
    print("Screens per article (short: USSD; full: '2 Read it all here'), ratio to "
          "English:\n")
    print(table(header, rows))
    conversation = Conversation(t, actions={name: act for name in (
        "file_complaint", "file_urgent", "urgent_answer", "agency_warning")})
    hop_rows = []
    english = 0
    for lang in langs:
        ctx = conversation.context(tree, layout, f"bench:{lang}")
        count, turns = _hops(conversation, tree, ctx, lang)
        english = english or count
        hop_rows.append([lang, str(count), str(turns), ratio(count, english)])
    print("\nHops to file a complaint on USSD (dial to send, reading every screen):\n")
    print(table(["language", "hops", "of which 98 (page turns)", "vs en"], hop_rows))
    over = {lang: w for lang, w in worst.items() if w > TARGET}
    print("\nWorst short version vs English: "
          + ", ".join(f"{lang} {w:.2f}x" for lang, w in worst.items())
          + f" (target: at most {TARGET}x)")
    return 1 if over else 0


def _hops(conversation: Conversation, tree: Tree, ctx: Context,
          lang: str) -> tuple[int, int]:
    """(hops, of which page turns) to file a complaint in ``lang`` on a new phone: a "98"
    wherever the key needed is not on the screen yet (a free answer: until the question
    is read), the actions run as a channel runs them (the conversation core)."""
    caller = Caller("ussd", "+97798000000", "bench")
    state = State(lang=None, node=LANGUAGE_NODE)
    count, turns = 1, 0
    language = str(tree.language_codes.index(lang) + 1)
    for key in [language, *complaint_keys(tree)]:
        screen = view(ctx, state)
        while not shows(screen, key) and shows(screen, "98"):
            state = conversation.step(ctx, state, "98", caller)[0]
            count, turns = count + 1, turns + 1
            screen = view(ctx, state)
        state = conversation.step(ctx, state, key, caller)[0]
        count += 1
        if state.hint:
            raise SystemExit(f"{lang}: '{key}' at {state.node} gave {state.hint!r}")
    return count, turns


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
