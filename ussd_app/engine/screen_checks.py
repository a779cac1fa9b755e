"""Checks on what a caller sees first, screen by screen, in every language.

Run by ``migrantline content check`` (and so by publishing and sync) after the fit
check, on the layouts the service pages for:

* an article's short version fits ``MAX_SHORT_SCREENS`` screens (an error): it is
  what a USSD caller reads, and each screen is a round trip on a session that times
  out; an article with no short at all is a warning where its full text needs more
  screens than a short may (USSD shows the whole text);
* a choice screen (``choice``) of up to ``MAX_COMPARED`` options shows them all on
  one screen (its question may take pages of its own before them,
  ``fitting.menu_pages(together=True)``), and a ``confirm`` screen its keys on every
  page (errors): a caller who sees one answer of three picks before knowing the
  others. A longer choice that pages is an info line (see ``MAX_COMPARED``);
* a phone number is on the first screen of the text that shows it first (an
  article's short, or its body where it has none: an error; a contact list's first
  number: a warning, see ``_contacts``): someone in danger may read one
  screen and hang up. ``{contact:id}`` references are numbers by now (the loader
  fills them in), so they count like numbers written out.

Only numbers in international form (``+`` and the country code, as the schema asks of
contacts) are found: a bare "999" cannot be told from a count or a key ("press 99").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ussd_app.engine.keys import NAV_KEYS
from ussd_app.engine.model import ARTICLE, CHOICE, CONFIRM, CONTACTS, Node, Tree
from ussd_app.engine.paging import has_short, node_pages, short_pages, shows_full
from ussd_app.engine.problems import ERROR, INFO, WARNING, Problem
from ussd_app.engine.screens import Layout, Screen, Translate
from ussd_app.engine.yamlfile import locate
from ussd_app.errors import FitError

MAX_SHORT_SCREENS = 3
# A choice of this many options at most is one the caller weighs (yes or no, when to be
# called): seeing some but not all is choosing blind, so they must share a screen (an
# error). A longer one (a country, a currency) is a list searched for one's own answer,
# like a menu: paging it is an info line (--verbose), as no label shortening fits nine
# countries in a 70-character UCS-2 screen.
MAX_COMPARED = 4
# A number in international form: +, its country code, then digits in groups.
NUMBER = re.compile(r"\+\d[\d \u00a0-]{4,}\d")


def screen_problems(tree: Tree, layouts: Iterable[Layout], t: Translate,
                    texts: Mapping[str, str], verbose: bool = False) -> list[Problem]:
    """Every problem of the screens a caller sees first; ``texts``: the files' text, for
    the line of each problem (0 when a file's text is not given). ``verbose`` adds the
    info lines: what pages by design (a long list), what only sample data does."""
    found: list[Problem] = []
    layouts = list(layouts)
    nodes = sorted(tree.nodes.values(), key=lambda n: (n.source, n.id))
    for node in nodes:
        text = texts.get(node.source, "")
        if node.type == ARTICLE and not node.short and any(
                not shows_full(layout) and _shows(layout, node)
                and _long(tree, node, layout, t) for layout in layouts):
            found.append(Problem(node.source, _line(text, ["body"]),
                                 f"'{node.id}' has no short version: USSD shows its whole "
                                 "text", "write short: what to do, in at most "
                                 f"{MAX_SHORT_SCREENS} screens (see the field-staff guide)",
                                 WARNING))
    for layout in layouts:
        for node in nodes:
            if not _shows(layout, node):
                continue
            text = texts.get(node.source, "")
            if node.type == CONTACTS and node.entries:
                found += _contacts(tree, node, layout, t, text)
                continue
            for lang in tree.language_codes:
                try:
                    found += _node_problems(tree, node, lang, layout, t, text)
                except FitError:  # reported by the fit check, once
                    continue
    return found if verbose else [p for p in found if p.severity != INFO]


def _long(tree: Tree, node: Node, layout: Layout, t: Translate) -> bool:
    """The article's full text needs more screens than a short version may, somewhere:
    an article of one or two screens needs no short."""
    for lang in tree.language_codes:
        try:
            if len(node_pages(tree, node, lang, layout, t)) > MAX_SHORT_SCREENS:
                return True
        except FitError:
            continue
    return False


def _node_problems(tree: Tree, node: Node, lang: str, layout: Layout, t: Translate,
                   text: str) -> list[Problem]:
    if node.type == ARTICLE:
        return _article(tree, node, lang, layout, t, text)
    if node.type in (CHOICE, CONFIRM):
        return _choice(tree, node, lang, layout, t, text)
    return []


def _contacts(tree: Tree, node: Node, layout: Layout, t: Translate,
              text: str) -> list[Problem]:
    """A contact list whose first number is past its first screen: a warning, one per
    layout naming the languages (an info line on sample data, whose intro is the "not
    real yet" disclaimer a deployment replaces). Not an error: which number comes first
    depends on where the caller is (help by country), which the content check cannot
    know."""
    late = []
    phone = node.entries[0].phone
    for lang in tree.language_codes:
        try:
            pages = node_pages(tree, node, lang, layout, t)
        except FitError:
            continue
        if not _on(pages[0], phone):
            at = next((i + 1 for i, page in enumerate(pages) if _on(page, phone)), 0)
            late.append(f"{lang} (screen {at} of {len(pages)})")
    if not late:
        return []
    return [Problem(node.source, _line(text, ["entries", 0]),
                    f"{node.id}: the first number, {phone}, is past the first screen on "
                    f"{layout.key} in {', '.join(late)}",
                    "shorten the intro, or move it below the numbers",
                    INFO if node.sample else WARNING)]


def _article(tree: Tree, node: Node, lang: str, layout: Layout, t: Translate,
             text: str) -> list[Problem]:
    found: list[Problem] = []
    if has_short(node, layout, lang):
        pages = short_pages(tree, node, lang, layout, t)
        path: list[str | int] = ["short", lang if node.short and lang in node.short else
                                 tree.default_language]
        if node.short and lang in node.short and len(pages) > MAX_SHORT_SCREENS:
            found.append(Problem(
                node.source, _line(text, path),
                f"short.{lang}: the short version needs {len(pages)} screens on "
                f"{layout.key}, at most {MAX_SHORT_SCREENS}",
                "keep what to do and whom to call; the full text goes by SMS", ERROR))
        shown = tree.text(node.short, lang)
    else:
        pages = node_pages(tree, node, lang, layout, t)
        path = ["body", lang if node.body and lang in node.body else tree.default_language]
        shown = tree.text(node.body, lang)
    number = NUMBER.search(shown)
    if number is not None and not _on(pages[0], number.group()):
        found.append(_late(node, lang, layout, text, path, number.group(), pages))
    return found


def _choice(tree: Tree, node: Node, lang: str, layout: Layout, t: Translate,
            text: str) -> list[Problem]:
    pages = node_pages(tree, node, lang, layout, t)
    keys = [_keys(page) for page in pages]
    every = set().union(*keys)
    if node.type == CHOICE:
        if every in keys:
            return []
        where = ", ".join(f"page {i + 1}: {', '.join(sorted(k)) or 'none'}"
                          for i, k in enumerate(keys))
        short_list = len(node.options) <= MAX_COMPARED
        return [Problem(node.source, _line(text, ["options"]),
                        f"{node.id} in {lang}: the choice pages its options over "
                        f"{len(pages)} screens on {layout.key} ({where}); "
                        + ("all must be on one" if short_list else
                           "a list this long is scanned for one's own answer, like a menu"),
                        "shorten the labels in that language, or offer fewer options",
                        ERROR if short_list else INFO)]
    if any(k != every for k in keys):
        return [Problem(node.source, _line(text, ["title"]),
                        f"{node.id} in {lang}: not every page shows keys "
                        f"{', '.join(sorted(every))} on {layout.key}",
                        "shorten the title or the summary's labels", ERROR)]
    return []


def _keys(page: Screen) -> set[str]:
    """The keys of a page that choose something (not those that move about)."""
    return {k for k, _ in page.options} | {k for k, _ in page.nav if k not in NAV_KEYS}


def _on(page: Screen, number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return digits in re.sub(r"\D", "", page.body)


def _late(node: Node, lang: str, layout: Layout, text: str, path: list[str | int],
          number: str, pages: list[Screen]) -> Problem:
    at = next((i + 1 for i, page in enumerate(pages) if _on(page, number)), len(pages))
    return Problem(node.source, _line(text, path),
                   f"{'.'.join(map(str, path))}: {number} is on screen {at} of {len(pages)} "
                   f"on {layout.key}; a danger or help number must be on the first",
                   "put the number first: whom to call, then why", ERROR)


def _shows(layout: Layout, node: Node) -> bool:
    types = getattr(layout, "node_types", ()) or ()
    return not types or node.type in types


def _line(text: str, path: list[str | int]) -> int:
    return locate(text, path) if text else 0


__all__ = ["MAX_COMPARED", "MAX_SHORT_SCREENS", "NUMBER", "screen_problems"]
