"""Arabic screens read right to left with option numbers in place, as a handset lays them out.

``bidi.get_display`` applies the Unicode bidirectional algorithm the way a
phone does, line by line, and gives the characters in visual order (left to
right on the glass). Reading Arabic starts at the right, so the option key
must be the rightmost thing on its line.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from pathlib import Path

from bidi import get_display
from flask.testing import FlaskClient

from ussd_app.channels.ussd.layout import UssdLayout
from ussd_app.engine.encoding import Limits, fits
from ussd_app.engine.loader import read_tree
from ussd_app.engine.paging import node_pages
from ussd_app.i18n import Catalogs

from .conftest import DEMO_CONTENT, Phone, make_app

ARABIC = re.compile(r"[\u0600-\u06ff]")
KEY_FIRST = re.compile(r"^\u200f?(\d+)[-.]? ")
LAYOUT = UssdLayout(Limits(160, 70))


def first_strong(line: str) -> str:
    for ch in line:
        kind = unicodedata.bidirectional(ch)
        if kind in ("L", "R", "AL"):
            return kind
    return ""


def arabic_screens() -> list[str]:
    tree = read_tree(DEMO_CONTENT)
    t = Catalogs().gettext
    return [LAYOUT.render(page, t) for node in tree.nodes.values()
            for page in node_pages(tree, node, "ar", LAYOUT, t, root=node.id == tree.main)]


def test_option_and_nav_keys_stay_at_the_right_of_arabic_lines() -> None:
    checked = 0
    for screen in arabic_screens():
        for line in screen.split("\n"):
            match = KEY_FIRST.match(line)
            if not match or not ARABIC.search(line):
                continue
            visual = get_display(line).rstrip("\u200f")
            assert visual.endswith(match.group(1)), (line, visual)
            checked += 1
    assert checked > 100


def test_every_arabic_line_is_laid_out_right_to_left() -> None:
    for screen in arabic_screens():
        assert fits(screen, Limits(160, 70))
        for line in screen.split("\n"):
            if ARABIC.search(line):
                assert first_strong(line) in ("R", "AL"), line


def test_a_line_starting_with_a_latin_word_is_marked(tmp_path: Path) -> None:
    tree = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, tree)
    article = tree / "nodes" / "before_you_go" / "bg_fees.yaml"
    text = article.read_text()
    article.write_text(re.sub(r"(\n  ar: \|\n    )", r"\1ILO 181: ", text, count=1))
    client: FlaskClient = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(tree)).test_client()
    phone = Phone(client)
    phone.dial()
    phone.press("2", "1")
    body = phone.press("2", "2")[4:]  # the article, then its full text ("Read it all here")
    line = next(line for line in body.split("\n") if "ILO" in line)
    assert line.startswith("\u200f")
    visual = get_display(line)
    # Right to left: the Latin words come first in reading order, at the right edge.
    assert visual.rstrip("\u200f").rstrip().endswith("ILO 181:") or \
        visual.index("ILO") > visual.index(ARABIC.search(visual).group(0))  # type: ignore[union-attr]


def test_left_to_right_languages_are_untouched() -> None:
    tree = read_tree(DEMO_CONTENT)
    t = Catalogs().gettext
    for lang in ("en", "fr", "ne"):
        for node in tree.nodes.values():
            for page in node_pages(tree, node, lang, LAYOUT, t, root=node.id == tree.main):
                assert "\u200f" not in LAYOUT.render(page, t)
