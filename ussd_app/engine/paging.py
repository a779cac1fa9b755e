"""Cut a node into screens that each fit the channel, at word boundaries.

Pages are computed once per (tree, layout, language, node) and cached on the
tree, so a caller waits only on a dictionary lookup. Fitting is exact: every
candidate page is rendered and measured the way the channel will send it, so
footers, option numbers and the encoding the whole screen forces all count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from . import messages as m
from .encoding import measure
from .model import ARTICLE, ASK, CONTACTS, LANGUAGE, MENU, Node, Tree
from .screens import Layout, Screen, Translate


class FitError(Exception):
    """Content that cannot be shown on one screen however it is cut."""


HINTS = (m.INVALID, m.NO_MORE, m.EMPTY_ANSWER, m.PICK_LANGUAGE)


def longest_hint(lang: str, t: Translate) -> str:
    """Pages keep room for this where the title goes, so a hint always shows."""
    return max((t(lang, h) for h in HINTS), key=lambda text: measure(text)[1])


def _fits(layout: Layout, screen: Screen, t: Translate, reserve: str) -> bool:
    if not layout.fits(layout.render(screen, t)):
        return False
    return not reserve or layout.fits(layout.render(replace(screen, title=reserve), t))


def nav(lang: str, t: Translate, *keys: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((key, t(lang, label)) for key, label in keys)


def node_pages(tree: Tree, node: Node, lang: str, layout: Layout, t: Translate,
               root: bool = False) -> list[Screen]:
    cache_key = ("pages", layout.key, lang, node.id, root)
    cached = tree.cache.get(cache_key)
    if cached is None:
        cached = _build(tree, node, lang, layout, t, root)
        tree.cache[cache_key] = cached
    return cached  # type: ignore[no-any-return]


def _build(tree: Tree, node: Node, lang: str, layout: Layout, t: Translate,
           root: bool) -> list[Screen]:
    title = tree.text(node.title, lang)
    back = () if root else (("0", m.BACK),)
    reserve = longest_hint(lang, t)
    if node.type in (MENU, LANGUAGE):
        if node.type == MENU:
            options = [(str(i + 1), tree.label(o, lang)) for i, o in enumerate(node.options)]
        else:
            options = [(str(i + 1), lang_.name) for i, lang_ in enumerate(tree.languages)]
        intro = tree.text(node.intro, lang)
        return menu_pages(lang, title, intro, options, layout, t, back, node.id, reserve)
    if node.type == ARTICLE:
        return text_pages(lang, title, tree.text(node.body, lang), layout, t, back, node.id,
                          reserve=reserve)
    if node.type == CONTACTS:
        return text_pages(lang, title, contacts_text(tree, node, lang), layout, t, back,
                          node.id, by_line=True, reserve=reserve)
    if node.type == ASK:
        screen = Screen(lang, title=title, body=tree.text(node.prompt, lang),
                        nav=nav(lang, t, *back, ("00", m.MAIN_MENU)), node=node.id)
        if not _fits(layout, screen, t, reserve):
            raise FitError(f"question '{node.id}' in {lang} is too long for one screen")
        return [screen]
    raise FitError(f"unknown node type {node.type}")  # the schema prevents this


def contacts_text(tree: Tree, node: Node, lang: str) -> str:
    lines = [tree.text(node.intro, lang)] if node.intro else []
    for entry in node.entries:
        lines.append(tree.text(entry.name, lang))
        lines.append(entry.phone)
        details = [tree.text(v, lang) for v in (entry.where, entry.hours) if v]
        lines.extend(details)
    return "\n".join(line for line in lines if line)


def menu_pages(lang: str, title: str, intro: str, options: Sequence[tuple[str, str]],
               layout: Layout, t: Translate, back: tuple[tuple[str, str], ...],
               node_id: str, reserve: str = "") -> list[Screen]:
    """Options never split from the screen that lists them; long menus page."""
    pages: list[Screen] = []
    rest = list(options)
    head_title, head_body = title, intro
    while rest:
        # On a later page of the main menu, 0 goes back a page.
        here = back or ((("0", m.BACK),) if pages else ())
        whole = Screen(lang, head_title, head_body, tuple(rest), nav(lang, t, *here),
                       node=node_id)
        if _fits(layout, whole, t, reserve):
            pages.append(whole)
            break
        more = nav(lang, t, ("98", m.MORE), *here)

        def fits(n: int, title: str = head_title, body: str = head_body,
                 more: tuple[tuple[str, str], ...] = more,
                 rest: list[tuple[str, str]] = rest) -> bool:
            return _fits(layout, Screen(lang, title, body, tuple(rest[:n]), more), t, reserve)

        count = _largest(fits, len(rest))
        if count == 0:
            if head_body:  # an intro too long to share a screen: give it its own page
                intro_page = Screen(lang, head_title, head_body, (), more, node=node_id)
                if not _fits(layout, intro_page, t, reserve):
                    raise FitError(f"menu '{node_id}' in {lang}: the intro is too long")
                pages.append(intro_page)
                head_title, head_body = "", ""
                continue
            raise FitError(f"menu '{node_id}' in {lang}: option {rest[0][0]} "
                           f"'{rest[0][1]}' does not fit on a screen")
        pages.append(Screen(lang, head_title, head_body, tuple(rest[:count]), more,
                            node=node_id))
        rest = rest[count:]
        head_title, head_body = "", ""
    return _numbered(pages)


def _numbered(pages: list[Screen]) -> list[Screen]:
    return [replace(p, page=i, pages=len(pages)) for i, p in enumerate(pages)]


_ATOMS = re.compile(r"[^ \n]+|\n")


def text_pages(lang: str, title: str, text: str, layout: Layout, t: Translate,
               back: tuple[tuple[str, str], ...], node_id: str,
               by_line: bool = False, reserve: str = "") -> list[Screen]:
    """Page long text at word (or, for contacts, line) boundaries behind 98."""
    atoms = text.split("\n") if by_line else _ATOMS.findall(text)
    sep = "\n" if by_line else " "
    pages: list[Screen] = []
    start = 0
    while True:
        head = title if not pages else ""
        here = back or ((("0", m.BACK),) if pages else ())
        more = nav(lang, t, ("98", m.MORE), *here)
        last = nav(lang, t, *here, ("00", m.MAIN_MENU)) if here else ()
        body = _join(atoms[start:], sep)
        final = Screen(lang, head, body, (), last, node=node_id)
        if _fits(layout, final, t, reserve):
            pages.append(final)
            return _numbered(pages)

        def fits(n: int, head: str = head, start: int = start,
                 more: tuple[tuple[str, str], ...] = more) -> bool:
            screen = Screen(lang, head, _join(atoms[start:start + n], sep), (), more)
            return _fits(layout, screen, t, reserve)

        remaining = len(atoms) - start
        count = _largest(fits, remaining)
        if count == remaining:
            # All of it fits only under the shorter "more" footer: keep something back
            # for the last page rather than end on a page with no text.
            if remaining > 1:
                count -= 1
            else:
                pages.append(Screen(lang, head, body, (), nav(lang, t, *here), node=node_id))
                return _numbered(pages)
        if count == 0:  # the next word or line alone is too long for this page: cut it
            atoms[start:start + 1] = _cut(atoms[start], lambda part, head=head, more=more:
                                          _fits(layout, Screen(lang, head, part, (), more), t,
                                                reserve))
            if not atoms[start]:
                raise FitError(f"'{node_id}' in {lang}: the title and footer alone do not fit")
            continue
        count = _prefer_paragraph_end(atoms, start, count, by_line)
        pages.append(Screen(lang, head, _join(atoms[start:start + count], sep), (), more,
                            node=node_id))
        start += count
        while start < len(atoms) and atoms[start] == "\n":
            start += 1


def _cut(atom: str, fits: Callable[[str], bool]) -> list[str]:
    """The longest head of ``atom`` that fits, cut between words when it can."""
    words = atom.split(" ")
    n = _largest(lambda k: fits(" ".join(words[:k])), len(words))
    if n:
        return [" ".join(words[:n]), " ".join(words[n:])]
    cut = _largest(lambda k: fits(atom[:k]), len(atom))  # one word longer than a screen
    return [atom[:cut], atom[cut:]] if cut else [""]


def _join(atoms: Sequence[str], sep: str) -> str:
    if sep == "\n":
        return "\n".join(atoms)
    out: list[str] = []
    for atom in atoms:
        if atom == "\n":
            out.append("\n")
        else:
            if out and out[-1] != "\n":
                out.append(" ")
            out.append(atom)
    return "".join(out).strip("\n")


def _largest(fits: Callable[[int], bool], upper: int) -> int:
    """Largest n in [0, upper] with fits(n), given fits is monotone."""
    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _prefer_paragraph_end(atoms: Sequence[str], start: int, count: int, by_line: bool) -> int:
    """End the page at a paragraph break when that keeps it at least 2/3 full."""
    if by_line:
        return count
    for i in range(start + count - 1, start + (2 * count) // 3, -1):
        if atoms[i] == "\n":
            return i - start
    return count

