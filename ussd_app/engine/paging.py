"""Which screens each node gets: menus, articles, contacts, questions, answers.

Pages are computed once per (tree, layout, language, node) and cached on the
tree, so a caller waits only on a dictionary lookup. The cutting itself is
``fitting``'s (exact: every candidate page is rendered and measured the way
the channel will send it); the screens that show answers are ``answers``'.
"""

from __future__ import annotations

from ussd_app.engine import messages as m
from ussd_app.engine.answers import choice_pages, filled_pages, is_templated
from ussd_app.engine.fitting import (
    article_fits,
    fits_with_hint,
    longest_hint,
    menu_pages,
    nav,
    text_pages,
)
from ussd_app.engine.model import ARTICLE, ASK, CHOICE, CONTACTS, LANGUAGE, MENU, Node, Tree
from ussd_app.engine.screens import Layout, Screen, Translate
from ussd_app.errors import FitError


def node_pages(tree: Tree, node: Node, lang: str, layout: Layout, t: Translate,
               root: bool = False) -> list[Screen]:
    cache_key = ("pages", layout.key, lang, node.id, root)
    cached: list[Screen] | None = tree.cache.get(cache_key)
    if cached is None:
        cached = _build(tree, node, lang, layout, t, root)
        tree.cache[cache_key] = cached
    return cached


def shows_full(layout: Layout) -> bool:
    """Whether a layout shows articles in full (SMS sends them whole); the others (USSD,
    voice) show an article's short version first, with the full text a key away."""
    return bool(getattr(layout, "full_articles", False))


def short_pages(tree: Tree, node: Node, lang: str, layout: Layout,
                t: Translate) -> list[Screen]:
    """An article's short version: its last page offers the full text by SMS (1) and here
    (2), keys no menu of an article takes and none of the navigation keys."""
    cache_key = ("short", layout.key, lang, node.id)
    cached: list[Screen] | None = tree.cache.get(cache_key)
    if cached is None:
        cached = text_pages(lang, tree.text(node.title, lang), tree.text(node.short, lang),
                            layout, t, (("0", m.BACK),), node.id,
                            reserve=longest_hint(lang, t), closing=FULL_TEXT_KEYS)
        tree.cache[cache_key] = cached
    return cached


def has_short(node: Node, layout: Layout, lang: str) -> bool:
    """The article is shown by its short version on this layout, in ``lang``.

    A language with a body of its own but no short yet reads that body (in full, as
    before shorts): the caller's own language beats the default language's summary.
    With neither, the short falls back like any text (the default language's)."""
    if node.type != ARTICLE or not node.short or shows_full(layout):
        return False
    return lang in node.short or not (node.body and lang in node.body)


# The keys under an article's short version: the full text by SMS, or here.
FULL_TEXT_KEYS = (("1", m.SEND_FULL), ("2", m.READ_FULL))


def first_contact_pages(tree: Tree, node: Node, layout: Layout, t: Translate) -> list[Screen]:
    """The language list before a language is chosen, paged behind "98 More" like any
    long menu.

    A caller who has not picked a language reads only the names, each in its own
    script, so every character goes to them: no title, no "0 Back" (0 still turns a
    page back), and no room kept for a hint, which is shown only where it fits.
    """
    cache_key = ("first", layout.key, node.id)
    cached: list[Screen] | None = tree.cache.get(cache_key)
    if cached is None:
        options = [(str(i + 1), lang.name) for i, lang in enumerate(tree.languages)]
        cached = menu_pages(tree.default_language, "", "", options, layout, t, (), node.id,
                            page_back=False)
        tree.cache[cache_key] = cached
    return cached


def _build(tree: Tree, node: Node, lang: str, layout: Layout, t: Translate,
           root: bool) -> list[Screen]:
    title = tree.text(node.title, lang)
    back = () if root else (("0", m.BACK),)
    reserve = longest_hint(lang, t)
    if node.type == CHOICE and is_templated(node):  # checked with the longest names
        return choice_pages(tree, node, lang, {}, layout, t, sample=True)
    if node.type in (MENU, LANGUAGE, CHOICE):
        if node.type in (MENU, CHOICE):
            options = [(str(i + 1), tree.label(o, lang)) for i, o in enumerate(node.options)]
        else:
            options = [(str(i + 1), lang_.name) for i, lang_ in enumerate(tree.languages)]
        intro = tree.text(node.intro, lang)
        return menu_pages(lang, title, intro, options, layout, t, back, node.id, reserve,
                          together=node.type == CHOICE)
    if node.type == ARTICLE:
        return text_pages(lang, title, tree.text(node.body, lang), layout, t, back, node.id,
                          reserve=reserve)
    if node.type == CONTACTS:  # "1 SMS" on every page: send me this list
        return text_pages(lang, title, contacts_text(tree, node, lang), layout, t,
                          (("1", m.SEND_SMS), *back), node.id, by_line=True, reserve=reserve)
    if node.type == ASK:  # one screen; a question too long for one pages like an article
        prompt = tree.text(node.prompt, lang)
        screen = Screen(lang, title=title, body=prompt,
                        nav=nav(lang, t, *back, ("00", m.MAIN_MENU)), node=node.id)
        if fits_with_hint(layout, screen, t, reserve):
            return [screen]
        return text_pages(lang, title, prompt, layout, t, back, node.id, reserve=reserve)
    # Confirm and result nodes show answers: paged here with the longest samples, as the
    # content check sees them; callers get theirs paged with their own answers.
    return filled_pages(tree, node, lang, layout, t)


def contacts_text(tree: Tree, node: Node, lang: str) -> str:
    lines = [tree.text(node.intro, lang)] if node.intro else []
    for entry in node.entries:
        lines.append(tree.text(entry.name, lang))
        lines.append(entry.phone)
        details = [tree.text(v, lang) for v in (entry.where, entry.hours) if v]
        lines.extend(details)
    return "\n".join(line for line in lines if line)


# Defined in ``fitting`` and ``errors``; the content registry imports them from here.
__all__ = ["FULL_TEXT_KEYS", "FitError", "article_fits", "contacts_text", "first_contact_pages",
           "has_short", "node_pages", "short_pages", "shows_full"]
