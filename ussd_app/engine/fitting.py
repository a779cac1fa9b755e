"""Cut text and menus into screens that each fit the channel, at word boundaries.

Fitting is exact: every candidate page is rendered and measured the way the
channel will send it, so footers, option numbers and the encoding the whole
screen forces all count. Which node is cut which way is ``paging``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache

from ussd_app.engine import messages as m
from ussd_app.engine.encoding import measure
from ussd_app.engine.model import Node, Tree
from ussd_app.engine.screens import Layout, Screen, Translate
from ussd_app.errors import FitError

HINTS = (m.INVALID, m.NO_MORE, m.EMPTY_ANSWER, m.PICK_LANGUAGE)


@lru_cache(maxsize=256)
def longest_hint(lang: str, t: Translate) -> str:
    """Pages keep room for this where the title goes, so a hint always shows."""
    return max((t(lang, h) for h in HINTS), key=lambda text: measure(text)[1])


def fits_with_hint(layout: Layout, screen: Screen, t: Translate, reserve: str) -> bool:
    """Fits as it is, and with the longest hint in place of the title."""
    probe = _probe_head(screen.title, reserve)
    if probe is not None:  # one render: the longer of title and hint decides
        longer = screen if probe == screen.title else replace(screen, title=probe)
        return layout.fits(layout.render(longer, t))
    return (layout.fits(layout.render(screen, t))
            and layout.fits(layout.render(replace(screen, title=reserve), t)))


@lru_cache(maxsize=1024)
def _footers(lang: str, t: Translate, here: tuple[tuple[str, str], ...],
             closing: tuple[tuple[str, str], ...] = ()
             ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The "more" footer and the last page's footer for one position in the text.

    ``closing``: keys offered once the text is read (an article's full text); they take
    the place of "00 Menu", which still works, as UCS-2 screens have no room for both."""
    more = nav(lang, t, ("98", m.MORE), *here)
    if closing:
        return more, nav(lang, t, *closing, *here)
    last = nav(lang, t, *here, ("00", m.MAIN_MENU)) if here else ()
    return more, last


def _probe_head(head: str, reserve: str) -> str | None:
    """The head that decides the fit when title and hint share an encoding, else None."""
    if not reserve:
        return head
    (head_enc, head_len), (hint_enc, hint_len) = measure(head), measure(reserve)
    if head and head_enc is not hint_enc:
        return None
    return head if head_len >= hint_len else reserve


_NEWLINE = re.compile("\n")
_DOUBLE = re.compile("[\\^{}\\\\\\[~\\]|\u20ac\f\U00010000-\U0010ffff]")
_SPACE = re.compile("[ \n]")


def nav(lang: str, t: Translate, *keys: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((key, t(lang, label)) for key, label in keys)


def menu_pages(lang: str, title: str, intro: str, options: Sequence[tuple[str, str]],
               layout: Layout, t: Translate, back: tuple[tuple[str, str], ...],
               node_id: str, reserve: str = "", page_back: bool = True,
               together: bool = False) -> list[Screen]:
    """Options never split from the screen that lists them; long menus page.

    ``together`` (a choice: one answer of several): when the question and its options do
    not share a screen but the options fit one alone, the question gets pages of its
    own first, so the caller sees every answer at once; else they page as a menu's."""
    pages: list[Screen] = []
    rest = list(options)
    head_title, head_body = title, intro
    while rest:
        # On a later page of the main menu, 0 goes back a page (said unless ``page_back``
        # is off: the first screen keeps its room for language names).
        here = back or ((("0", m.BACK),) if pages and page_back else ())
        whole = Screen(lang, head_title, head_body, tuple(rest), nav(lang, t, *here),
                       node=node_id)
        if fits_with_hint(layout, whole, t, reserve):
            pages.append(whole)
            break
        more = nav(lang, t, ("98", m.MORE), *here)

        def fits(n: int, title: str = head_title, body: str = head_body,
                 more: tuple[tuple[str, str], ...] = more,
                 rest: list[tuple[str, str]] = rest) -> bool:
            return fits_with_hint(layout, Screen(lang, title, body, tuple(rest[:n]), more), t,
                                  reserve)

        count = _largest(fits, len(rest))
        if together and (head_title or head_body) and count < len(rest) and \
                fits_with_hint(layout, Screen(lang, "", "", tuple(rest), nav(lang, t, *(
                    back or (("0", m.BACK),)))), t, reserve):
            count = 0  # the question on its own pages, then every option on one
            if not head_body:
                head_title, head_body = "", head_title
        if count == 0:
            if head_body:  # an intro too long to share a screen: pages of its own
                pages += _intro_pages(lang, head_title, head_body, layout, t, more, node_id,
                                      reserve)
                head_title, head_body = "", ""
                continue
            raise FitError(f"menu '{node_id}' in {lang}: option {rest[0][0]} "
                           f"'{rest[0][1]}' does not fit on a screen")
        pages.append(Screen(lang, head_title, head_body, tuple(rest[:count]), more,
                            node=node_id))
        rest = rest[count:]
        head_title, head_body = "", ""
    return _numbered(pages)


def _intro_pages(lang: str, title: str, intro: str, layout: Layout, t: Translate,
                 more: tuple[tuple[str, str], ...], node_id: str,
                 reserve: str) -> list[Screen]:
    """A menu's intro cut at word boundaries into pages that each end with 98, before
    the options: greedy, since an intro is a sentence or two, not an article."""
    pages: list[Screen] = []
    start, head = 0, title
    while start < len(intro):
        def fits(end: int, start: int = start, head: str = head) -> bool:
            return fits_with_hint(layout, Screen(lang, head, intro[start:end].strip(), (), more),
                                  t, reserve)

        if fits(len(intro)):
            end: int | None = len(intro)
        else:
            end = _last_fitting(_breaks(_SPACE, intro, start, len(intro)), fits)
        if end is None:
            cut = _largest(_from(start, fits), len(intro) - start)
            if cut == 0:
                raise FitError(f"menu '{node_id}' in {lang}: the title and footer alone "
                               "do not fit")
            end = start + cut
        pages.append(Screen(lang, head, intro[start:end].strip(), (), more, node=node_id))
        start, head = _skip_blanks(intro, end), ""
    return pages


def _numbered(pages: list[Screen]) -> list[Screen]:
    n = len(pages)
    return [Screen(p.lang, p.title, p.body, p.options, p.nav, p.hint, p.end, p.node, i, n)
            for i, p in enumerate(pages)]


def text_pages(lang: str, title: str, text: str, layout: Layout, t: Translate,
               back: tuple[tuple[str, str], ...], node_id: str,
               by_line: bool = False, reserve: str = "",
               closing: tuple[tuple[str, str], ...] = ()) -> list[Screen]:
    """Page long text at word (or, for contacts, line) boundaries behind 98; the last
    page offers ``closing`` (an article's "1 Send the full text") above its keys.

    Pages are slices of ``text`` ending at a separator: most found by arithmetic and
    checked with one render, the rest by binary search over the separators, so a long
    article costs about two renders per page."""
    separator = _NEWLINE if by_line else _SPACE
    frames: dict[tuple[str, object], str] = {}  # the rendered frame, once per footer
    probes = (_probe_head(title, reserve), _probe_head("", reserve))
    limit = max(layout.limit_for(text + title) if hasattr(layout, "limit_for") else len(text), 1)
    pages: list[Screen] = []
    start = 0
    # First page: the node's own back key (none at the root); later pages: 0 is a page back.
    footers = [_footers(lang, t, back, closing),
               _footers(lang, t, back or (("0", m.BACK),), closing)]
    while True:
        head = title if not pages else ""
        here = back or ((("0", m.BACK),) if pages else ())
        more, last = footers[bool(pages)]
        if len(text) - start <= limit and \
                fits_with_hint(layout, Screen(lang, head, text[start:], (), last), t, reserve):
            pages.append(Screen(lang, head, text[start:], (), last, node=node_id))
            return _numbered(pages)
        probe = probes[bool(pages)]

        def fits(end: int, head: str = head, start: int = start, probe: str | None = probe,
                 more: tuple[tuple[str, str], ...] = more) -> bool:
            if probe is not None:  # one render: the longer of title and hint
                return layout.fits(layout.render(Screen(lang, probe, text[start:end], (), more),
                                                 t))
            return fits_with_hint(layout, Screen(lang, head, text[start:end], (), more), t, reserve)

        reach = start + limit + 1  # no page holds more characters than the limit
        end = None
        if probe is not None:
            frame = _frame(layout, t, frames, lang, probe, more)
            end = _guess_end(layout, frame, text, start, reach, separator, fits)
        if end is None:
            end = _last_fitting(_breaks(separator, text, start, reach), fits)
        if end is None and by_line:  # a line too long for this page: cut it between words
            end = _within_line(text, start, reach, fits)
        if end is None:  # one word longer than a screen: cut inside it
            cut = _largest(_from(start, fits), len(text) - start)
            if cut == 0:
                raise FitError(f"'{node_id}' in {lang}: the title and footer alone do not fit")
            if start + cut == len(text):  # the rest fits, but not with the last keys
                return _numbered([*pages, *_last_pages(
                    Screen(lang, head, text[start:], (), more, node=node_id), layout, t,
                    reserve, last, nav(lang, t, *here), bool(closing))])
            pages.append(Screen(lang, head, text[start:start + cut], (), more, node=node_id))
            start += cut
            continue
        if not by_line:
            end = _paragraph_end(text, start, end)
        pages.append(Screen(lang, head, text[start:end].strip("\n"), (), more, node=node_id))
        start = _skip_blanks(text, end + 1)


def _last_pages(rest: Screen, layout: Layout, t: Translate, reserve: str,
                last: tuple[tuple[str, str], ...], here: tuple[tuple[str, str], ...],
                closing: bool) -> list[Screen]:
    """The rest of a text that fits a page under "98 More" but not under the last
    page's keys: without "00 Menu" (which still works); or, when the last page offers
    keys of its own (``closing``), those keys on a page of their own after it."""
    if not closing:
        return [replace(rest, nav=here)]
    keys = Screen(rest.lang, "", "", (), last, node=rest.node)
    if not fits_with_hint(layout, keys, t, reserve):
        raise FitError(f"'{rest.node}' in {rest.lang}: its keys alone do not fit")
    return [rest, keys]


def _frame(layout: Layout, t: Translate, frames: dict[tuple[str, object], str], lang: str,
           probe: str, more: tuple[tuple[str, str], ...]) -> str:
    """A page rendered with no body (its title or hint and footer), once per footer."""
    frame = frames.get((probe, more))
    if frame is None:
        frame = frames[(probe, more)] = layout.render(Screen(lang, probe, "", (), more), t)
    return frame


def _within_line(text: str, start: int, reach: int, fits: Callable[[int], bool]) -> int | None:
    """Where a line too long for a page is cut: the furthest space that fits."""
    line_end = text.find("\n", start + 1)
    line_end = len(text) if line_end < 0 else line_end
    return _last_fitting(_breaks(_SPACE, text, start, min(reach, line_end)), fits)


def _from(start: int, fits: Callable[[int], bool]) -> Callable[[int], bool]:
    """``fits`` asked of a length from ``start`` instead of an end position."""
    return lambda n: fits(start + n)


def _skip_blanks(text: str, start: int) -> int:
    """The next page starts past the spaces and line breaks where this one ended."""
    while start < len(text) and text[start] in " \n":
        start += 1
    return start


def article_fits(tree: Tree, node: Node, lang: str, layout: Layout, t: Translate) -> None:
    """Raise ``FitError`` when ``text_pages`` could not page this article.

    Paging only fails when a page's title and footer leave no room for a
    single character (everything else is cut to fit), so checking that is as
    good as paging the whole article, at the cost of two renders.
    """
    body = tree.text(node.body, lang)
    if not body:
        return
    reserve = longest_hint(lang, t)
    back = (("0", m.BACK),)
    for head in (tree.text(node.title, lang), ""):
        more, _ = _footers(lang, t, back)
        if not fits_with_hint(layout, Screen(lang, head, body[0], (), more), t, reserve):
            raise FitError(f"'{node.id}' in {lang}: the title and footer alone do not fit")


def _guess_end(layout: Layout, rendered: str, text: str, start: int, reach: int,
               separator: re.Pattern[str], fits: Callable[[int], bool]) -> int | None:
    """Where the page ends by arithmetic, checked by one render; None to search instead.

    With no character that counts double (GSM-7 extension, emoji), a body of n
    characters costs n units, so the room left beside the frame (title, hint,
    footer) says where the page ends. Most pages are settled this way with a
    single render; anything unusual falls back to the binary search.
    """
    limit_for = getattr(layout, "limit_for", None)
    if limit_for is None:
        return None
    window = text[start:reach]
    if _DOUBLE.search(rendered) or _DOUBLE.search(window):
        return None
    room = limit_for(rendered + window) - len(rendered) - (1 if rendered else 0)
    if room <= 0:
        return None
    candidates = _breaks(separator, text, start, min(start + room + 1, len(text)))
    if not candidates or not fits(candidates[-1]):
        return None
    return candidates[-1]


def _breaks(separator: re.Pattern[str], text: str, start: int, stop: int) -> list[int]:
    """Positions of separators in (start, stop)."""
    return [found.start() for found in separator.finditer(text, start + 1, stop)]


def _last_fitting(candidates: list[int], fits: Callable[[int], bool]) -> int | None:
    """The furthest candidate end such that text up to it fits."""
    n = _largest(lambda k: fits(candidates[k - 1]), len(candidates))
    return candidates[n - 1] if n else None


def _paragraph_end(text: str, start: int, end: int) -> int:
    """End the page at a paragraph break when that keeps it at least 2/3 full."""
    para = text.rfind("\n", start, end)
    if para > start + (2 * (end - start)) // 3:
        return para
    return end


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
