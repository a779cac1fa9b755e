"""Numbers as a bidi-compliant display draws them: shared by the screen, SMS and dashboard tests.

``bidi.get_display`` (python-bidi, the Rust ``unicode-bidi`` crate: UAX #9 with isolates)
lays a line out and returns its characters in visual order, left to right on the glass.
A number reads right when its characters appear in that visual order exactly as typed.
Each line is laid out twice: in a right-to-left paragraph (a handset set to Arabic) and
by its first strong character (a handset that decides per line).
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

from bidi import get_display

from ussd_app.engine.bidi import NUMBER, needs_mark

LRI, PDI = "\u2066", "\u2069"
CONTROLS = "\u200e\u200f\u061c\u2066\u2067\u2068\u2069\u202a\u202b\u202c\u202d\u202e"
_UNMARK = {ord(c): None for c in CONTROLS}


def unmarked(text: str) -> str:
    return text.translate(_UNMARK)


def numbers_in(line: str) -> list[str]:
    """The numbers whose order a layout can get wrong (spaces, hyphens, a leading "+")."""
    return [n for n in NUMBER.findall(unmarked(line)) if needs_mark(n)]


def misdrawn(line: str) -> list[str]:
    """The numbers of ``line`` that a display would not draw left to right."""
    wrong = []
    for base in ("R", None):
        visual = unmarked(get_display(line, base_dir=base) if base else get_display(line))
        wrong += [n for n in numbers_in(line) if n not in visual]
    return sorted(set(wrong))


class _Lines(HTMLParser):
    """An HTML page as lines of text: ``dir`` elements become isolates, blocks break lines."""

    BLOCKS = {"p", "div", "li", "dt", "dd", "td", "th", "tr", "h1", "h2", "h3", "br", "table",
              "ul", "ol", "dl", "header", "footer", "section", "nav", "form", "label", "option",
              "title", "legend", "fieldset", "main", "caption", "summary", "details"}
    VOID = {"br", "img", "input", "meta", "link", "hr", "source", "wbr"}
    SKIP = {"script", "style", "textarea", "select"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[tuple[str, bool]] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        if tag in self.BLOCKS:
            self.out.append("\n")
        if tag in self.VOID:
            return
        isolate = dict(attrs).get("dir") == "ltr" and tag not in ("html",)
        if isolate:
            self.out.append(LRI)
        self.stack.append((tag, isolate))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        while self.stack:
            open_tag, isolate = self.stack.pop()
            if isolate:
                self.out.append(PDI)
            if open_tag == tag:
                break
        if tag in self.BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(" ".join(data.split()) if data.strip() else " ")


def html_lines(html: str) -> list[str]:
    """The page's text, one line per block, with ``dir="ltr"`` elements isolated."""
    parser = _Lines()
    parser.feed(html)
    text = unescape("".join(parser.out))
    return [line.strip() for line in re.split(r"\n+", text) if line.strip()]
