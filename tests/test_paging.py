"""Paging over the real demo content: every screen fits, nothing is lost or cut."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from ussd_app.channels.ussd.layout import UssdLayout
from ussd_app.engine import messages as m
from ussd_app.engine.answers import fill, is_templated, sample_label_answers
from ussd_app.engine.encoding import Limits, fits
from ussd_app.engine.fitting import HINTS, FitError, longest_hint, nav, text_pages
from ussd_app.engine.loader import read_tree
from ussd_app.engine.machine import Context, State, view
from ussd_app.engine.model import (
    ARTICLE,
    CHOICE,
    CONTACTS,
    LANGUAGE,
    MENU,
    Entry,
    Language,
    Node,
    Tree,
)
from ussd_app.engine.paging import contacts_text, node_pages
from ussd_app.engine.screens import Screen
from ussd_app.i18n import Catalogs

DEMO = Path(__file__).resolve().parent.parent / "content"
t = Catalogs().gettext
TREE = read_tree(DEMO)
CASES = [(node_id, lang) for node_id in sorted(TREE.nodes) for lang in TREE.language_codes]
FITTING_LIMITS = [Limits(160, 70), Limits(120, 60)]
BIDI_MARKS = "\u200e\u200f\u061c"  # a layout may add these for right-to-left screens


def unmarked(line: str) -> str:
    return line.translate({ord(c): None for c in BIDI_MARKS})


def pages_of(tree: Tree, node: Node, lang: str, layout: UssdLayout) -> list[Screen]:
    return node_pages(tree, node, lang, layout, t, root=node.id == tree.main)


def expected_options(tree: Tree, node: Node, lang: str) -> list[tuple[str, str]]:
    if node.type == LANGUAGE:
        return [(str(i + 1), lang_.name) for i, lang_ in enumerate(tree.languages)]
    if is_templated(node):  # checked with the shortest form a caller may see (a code)
        return [(str(i + 1), fill(tree.label(o, lang), sample_label_answers(tree, node, lang)))
                for i, o in enumerate(node.options)]
    return [(str(i + 1), tree.label(o, lang)) for i, o in enumerate(node.options)]


def squeeze(texts: Iterable[str]) -> str:
    return "".join("".join(text.split()) for text in texts)


def cut_words(text: str, pages: list[Screen]) -> list[tuple[str, str]]:
    """(word, line) for each page boundary that falls inside a word of ``text``."""
    spans, pos = [], 0  # (start, end, word, line) in the whitespace-free text
    for line in text.split("\n"):
        for word in line.split():
            spans.append((pos, pos + len(word), word, line))
            pos += len(word)
    cut, pos = [], 0
    for page in pages[:-1]:
        pos += len(squeeze([page.body]))
        cut += [(word, line) for a, b, word, line in spans if a < pos < b]
    return cut


def fits_alone(text: str, lang: str, layout: UssdLayout) -> bool:
    """Whether the text fits a page of its own, with the hint line and 98/0."""
    more = nav(lang, t, ("98", m.MORE), ("0", m.BACK))
    screen = Screen(lang, longest_hint(lang, t), text, (), more)
    return layout.fits(layout.render(screen, t))


def check_pages(tree: Tree, node: Node, lang: str, layout: UssdLayout) -> None:
    pages = pages_of(tree, node, lang, layout)
    assert [(p.page, p.pages) for p in pages] == [(i, len(pages)) for i in range(len(pages))]
    for page in pages:
        text = layout.render(page, t)
        assert fits(text, layout.limits), f"page {page.page} too long:\n{text}"
    title = tree.text(node.title, lang)
    if node.type in (MENU, LANGUAGE, CHOICE):
        got = [o for p in pages for o in p.options]
        assert got == expected_options(tree, node, lang)
        line = t(lang, m.OPTION_LINE)
        for page in pages:
            rendered = [unmarked(line) for line in layout.render(page, t).split("\n")]
            for key, label in page.options:
                assert line.format(key=key, label=label) in rendered
    elif node.type == ARTICLE:
        body = tree.text(node.body, lang)
        assert squeeze(p.body for p in pages) == squeeze([body])
        for word, _ in cut_words(body, pages):  # only a word that fits no screen is cut
            assert not fits_alone(word, lang, layout), word
        assert [p.title for p in pages] == [title] + [""] * (len(pages) - 1)
    elif node.type == CONTACTS:
        text = contacts_text(tree, node, lang)
        assert squeeze(p.body for p in pages) == squeeze([text])
        assert [p.title for p in pages] == [title] + [""] * (len(pages) - 1)
    if len(pages) > 1:
        assert all(("98", t(lang, m.MORE)) in p.nav for p in pages[:-1])
        assert ("98", t(lang, m.MORE)) not in pages[-1].nav


def check_hints(tree: Tree, node: Node, lang: str, layout: UssdLayout) -> None:
    ctx = Context(tree, layout, t)
    for index in range(len(pages_of(tree, node, lang, layout))):
        for hint in HINTS:
            screen = view(ctx, State(lang, node.id, page=index, hint=hint))
            assert screen.hint == t(lang, hint), (index, hint)
            assert layout.fits(layout.render(screen, t))


@pytest.mark.parametrize("limits", FITTING_LIMITS, ids=lambda x: f"{x.gsm7}-{x.ucs2}")
@pytest.mark.parametrize(("node_id", "lang"), CASES)
def test_demo_node_pages_fit_and_keep_everything(node_id: str, lang: str,
                                                 limits: Limits) -> None:
    layout = UssdLayout(limits)
    check_pages(TREE, TREE.nodes[node_id], lang, layout)
    check_hints(TREE, TREE.nodes[node_id], lang, layout)


@pytest.mark.parametrize(("node_id", "lang"), CASES)
def test_tight_screens_page_more_or_refuse_only_what_cannot_fit(node_id: str,
                                                                lang: str) -> None:
    tree, node = TREE, TREE.nodes[node_id]
    layout = UssdLayout(Limits(100, 50))
    try:
        pages = pages_of(tree, node, lang, layout)
    except FitError as exc:
        # Only a menu (the language menu is one) may refuse, and only when one option
        # truly has no room: with the reserved hint line (and the title, for option 1)
        # and 98/0.
        assert node.type in (MENU, LANGUAGE, CHOICE), exc
        options = expected_options(tree, node, lang)
        number = next(k for k, label in options if f"option {k} '{label}'" in str(exc))
        option = options[int(number) - 1]
        more = nav(lang, t, ("98", m.MORE), ("0", m.BACK))
        heads = [longest_hint(lang, t)] + ([tree.text(node.title, lang)] if number == "1" else [])
        renders = [layout.render(Screen(lang, h, "", (option,), more), t) for h in heads]
        assert not all(layout.fits(r) for r in renders)
        return
    check_pages(tree, node, lang, layout)
    check_hints(tree, node, lang, layout)
    wide = pages_of(tree, node, lang, UssdLayout(Limits(160, 70)))
    assert len(pages) >= len(wide)


@pytest.mark.parametrize("lang", TREE.language_codes)
def test_tighter_screens_give_more_article_pages(lang: str) -> None:
    articles = [n for n in TREE.nodes.values() if n.type == ARTICLE]
    wide = sum(len(pages_of(TREE, n, lang, UssdLayout(Limits(160, 70)))) for n in articles)
    tight = sum(len(pages_of(TREE, n, lang, UssdLayout(Limits(120, 60)))) for n in articles)
    assert tight > wide


def one_node_tree(node: Node) -> Tree:
    langs = tuple(Language(k, k) for k in node.title)
    return Tree(version="t", languages=langs, default_language=langs[0].code, main=node.id,
                help=node.id, nodes={node.id: node})


def article_tree(body: dict[str, str]) -> Tree:
    return one_node_tree(Node(id="art", type=ARTICLE, title={k: "Title" for k in body},
                              body=body))


@pytest.mark.parametrize("limits", [Limits(160, 70), Limits(100, 50)],
                         ids=lambda x: f"{x.gsm7}-{x.ucs2}")
@pytest.mark.parametrize("word", ["x" * 1000, "ب" * 500, "€" * 400, "😀" * 200, "a€" * 300],
                         ids=["latin", "arabic", "extension", "astral", "mixed"])
def test_a_single_word_longer_than_a_screen_is_cut_within_the_limit(word: str,
                                                                    limits: Limits) -> None:
    layout = UssdLayout(limits)
    tree = article_tree({"en": word})
    pages = node_pages(tree, tree.nodes["art"], "en", layout, t)
    assert len(pages) > 2
    assert "".join(p.body for p in pages) == word
    for page in pages:
        assert fits(layout.render(page, t), limits)
    check_hints(tree, tree.nodes["art"], "en", layout)


def test_long_word_between_short_ones_keeps_the_short_words_whole() -> None:
    layout = UssdLayout(Limits(160, 70))
    text = "before " + "y" * 400 + " after"
    pages = text_pages("en", "T", text, layout, t, (("0", m.BACK),), "n",
                       reserve=longest_hint("en", t))
    assert "".join(p.body for p in pages).replace(" ", "") == text.replace(" ", "")
    assert pages[0].body == "before"
    assert pages[-1].body.endswith(" after")


def test_paragraph_breaks_survive_paging() -> None:
    layout = UssdLayout(Limits(160, 70))
    paragraphs = [" ".join(f"p{i}w{j}" for j in range(12)) for i in range(8)]
    tree = article_tree({"en": "\n".join(paragraphs)})
    pages = node_pages(tree, tree.nodes["art"], "en", layout, t)
    assert len(pages) > 1
    lines = [line for p in pages for line in p.body.split("\n")]
    assert " ".join(lines).split() == " ".join(paragraphs).split()
    for line in lines:  # no line mixes the end of one paragraph and the start of the next
        assert len({w.split("w")[0] for w in line.split()}) == 1


@pytest.mark.parametrize("lang", ["ar", "ne"])
def test_no_page_is_blank(lang: str) -> None:
    layout = UssdLayout(Limits(160, 70))
    word = {"ar": "ببب", "ne": "ककक"}[lang]
    blank = []
    for n in range(1, 120):
        tree = article_tree({lang: " ".join([word] * n)})
        pages = node_pages(tree, tree.nodes["art"], lang, layout, t)
        blank += [(n, p.page) for p in pages if not p.body]
    assert blank == []


@pytest.mark.parametrize("limits", FITTING_LIMITS, ids=lambda x: f"{x.gsm7}-{x.ucs2}")
def test_demo_contacts_are_cut_at_word_boundaries(limits: Limits) -> None:
    layout, cut = UssdLayout(limits), []
    for node in TREE.nodes.values():
        if node.type != CONTACTS:
            continue
        for lang in TREE.language_codes:
            pages = pages_of(TREE, node, lang, layout)
            text = contacts_text(TREE, node, lang)
            cut += [(node.id, lang, word) for word, _ in cut_words(text, pages)
                    if fits_alone(word, lang, layout)]
    assert cut == []


def test_a_long_contact_line_is_cut_between_words() -> None:
    hours = ("Monday to Friday from nine in the morning until five in the afternoon, and on "
             "Saturday from nine until noon; closed on public holidays and 1 May")
    node = Node(id="c", type=CONTACTS, title={"en": "Hotlines"},
                entries=(Entry(name={"en": "Hotline"}, phone="+1 234", hours={"en": hours}),))
    tree = one_node_tree(node)
    layout = UssdLayout(Limits(160, 70))
    pages = node_pages(tree, node, "en", layout, t)
    assert squeeze(p.body for p in pages) == squeeze([contacts_text(tree, node, "en")])
    assert cut_words(contacts_text(tree, node, "en"), pages) == []
