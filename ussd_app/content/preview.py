"""A static HTML page of every screen of a content tree, as a phone shows it.

Field staff review a tree on paper or in a browser before it goes live: each
node, in each language, paged exactly as the USSD channel pages it (same
layout, same limits, same interface strings), with what each screen costs:
its length in the encoding it forces, that encoding, and its SMS segments.
The page is self-contained (inline CSS, no script) and prints cleanly.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError

from ussd_app.channels.ussd.layout import UssdLayout
from ussd_app.content.check import check_content
from ussd_app.engine.checks import article_sms_text, coverage
from ussd_app.engine.encoding import measure, sms_segments
from ussd_app.engine.loader import Problem
from ussd_app.engine.machine import LANGUAGE_NODE, Context, first_state, view
from ussd_app.engine.model import ARTICLE, Node, Tree
from ussd_app.engine.paging import has_short, node_pages, short_pages
from ussd_app.engine.screens import Translate
from ussd_app.engine.texts import texts_of

Progress = Callable[[str], None]


def load(directory: Path, layout: UssdLayout, t: Translate) -> tuple[Tree | None, list[Problem]]:
    """The tree (None when it has an error) and its problems, as ``content check`` finds
    them for the USSD layout the preview shows."""
    checked = check_content(directory, [layout], t=t)
    return (checked.tree if not checked.errors else None), checked.problems


def text_direction(lang: str, sample: str = "") -> str:
    """``rtl`` or ``ltr``: from CLDR via Babel, else from the script of ``sample``."""
    try:
        return str(Locale.parse(lang).text_direction)
    except (UnknownLocaleError, ValueError):
        pass
    for ch in sample:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


@dataclass(frozen=True)
class Shown:
    """One screen as the phone shows it, with what it costs."""

    text: str
    page: int
    pages: int
    encoding: str
    chars: int
    limit: int
    sms: int
    note: str = ""
    short: bool = False  # a page of the article's short version (what USSD shows first)


def node_order(tree: Tree) -> list[tuple[Node, str]]:
    """Nodes in the order a caller meets them (menu order from the main menu), each with
    the keys that reach it; nodes no menu links to come last."""
    order: list[tuple[Node, str]] = []
    seen: set[str] = set()

    def walk(node_id: str, keys: str) -> None:
        node = tree.nodes.get(node_id)
        if node is None or node_id in seen:
            return
        seen.add(node_id)
        order.append((node, keys))
        for i, option in enumerate(node.options, start=1):
            walk(option.target, f"{keys} {i}".strip())
        if node.next:
            walk(node.next, keys)

    walk(tree.main, "")
    walk(tree.help, "99")
    walk(LANGUAGE_NODE, "")
    for node_id in sorted(tree.nodes):
        walk(node_id, "")
    return order


def screens(tree: Tree, node: Node, lang: str, layout: UssdLayout, t: Translate) -> list[Shown]:
    """Every page of a node in a language, rendered by the USSD layout."""
    found = []
    pages = node_pages(tree, node, lang, layout, t, root=node.id == tree.main)
    extra = []
    if node.id == LANGUAGE_NODE and lang == tree.default_language:
        # The very first screen of a first call, before any language is chosen.
        extra.append((view(Context(tree, layout, t), first_state(tree, None)),
                      "first call, no language chosen yet"))
    shorts = short_pages(tree, node, lang, layout, t) if has_short(node, layout, lang) else []
    for screen, note in [*extra, *((p, "") for p in [*shorts, *pages])]:
        text = layout.render(screen, t)
        encoding, chars = measure(text)
        found.append(Shown(text, screen.page + 1, screen.pages, encoding.value, chars,
                           layout.limits.for_encoding(encoding), sms_segments(text)[1], note,
                           short=screen in shorts))
    return found


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; line-height: 1.4; }
h1 { margin: 0 0 .3rem; font-size: 1.5rem; }
h2 { border-bottom: 2px solid #333; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 0 0 .3rem; }
.meta, figcaption, .toc small { color: #555; font-size: .85rem; }
.sample { background: #ffd400; color: #000; border: 3px solid #000; font-weight: bold;
  font-size: 1.2rem; padding: .6rem 1rem; margin: 1rem 0; text-align: center; }
.toc ol { columns: 2 22rem; padding-left: 1.5rem; }
.node { border-top: 1px solid #ccc; padding: .8rem 0; break-inside: avoid; }
.missing { color: #8a4b00; font-size: .85rem; }
.screens { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: 0; width: 15.5rem; break-inside: avoid; }
.phone { border: 2px solid #222; border-radius: 1.2rem; padding: 1.1rem .7rem;
  background: #f4f4f4; }
.phone pre { margin: 0; padding: .45rem; min-height: 9rem; background: #dfe8d6;
  border: 1px solid #9aa68f; white-space: pre-wrap; overflow-wrap: anywhere;
  font-family: ui-monospace, "DejaVu Sans Mono", "Noto Sans Mono", Menlo, Consolas, monospace,
  "Noto Sans Arabic", "Noto Sans Devanagari";
  font-size: 13px; line-height: 1.35; unicode-bidi: plaintext; text-align: start; }
.full { font-weight: bold; color: #8a4b00; }
@media print {
  body { margin: 0; }
  .lang { break-before: page; }
  .phone { background: none; }
  .phone pre { background: none; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _language_name(tree: Tree, lang: str) -> str:
    for language in tree.languages:
        if language.code == lang:
            return language.name
    return lang


def _missing(tree: Tree, node: Node, lang: str) -> list[str]:
    return [".".join(map(str, path)) for path, value in texts_of(node) if not value.get(lang)]


def render(tree: Tree, layout: UssdLayout, t: Translate, languages: Iterable[str] | None = None,
           progress: Progress | None = None) -> str:
    """The whole preview page for ``languages`` (default: every language of the tree)."""
    langs = list(languages) if languages is not None else list(tree.language_codes)
    order = node_order(tree)
    title = f"{tree.name or 'MigrantLine content'}: preview"
    out = ['<!DOCTYPE html>', '<html lang="en" dir="ltr">', '<head>', '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(title)} (version {_e(tree.version)})</title>",
           f"<style>{_CSS}</style>", "</head>", "<body>", "<header>",
           f"<h1>{_e(title)}</h1>"]
    if tree.sample:
        out.append('<p class="sample" id="sample-data">SAMPLE DATA: this content is for '
                   "demonstration. Names, numbers and addresses are placeholders; replace them "
                   "before the service goes live.</p>")
    cov = {c.lang: c for c in coverage(tree)}
    out.append(f'<p class="meta">Content version <code id="content-version">{_e(tree.version)}'
               f"</code> &middot; {len(tree.nodes)} nodes &middot; "
               f"USSD screen limit {layout.limits.gsm7} characters in GSM-7, "
               f"{layout.limits.ucs2} in UCS-2 &middot; languages: "
               + ", ".join(f"{_e(_language_name(tree, c))} ({_e(c)}, {cov[c].percent}% "
                           "translated)" for c in langs)
               + "</p>")
    out.append('<p class="meta">Each box is one screen, exactly as the phone shows it. Under '
               "it: the page, its length in the encoding it needs, that encoding, and how many "
               "SMS it would take. Keys a caller presses to reach a node are shown after its "
               "name (99 is help now, from any screen).</p>")
    out.append("</header>")

    out.append('<nav class="toc"><h2>Contents</h2>')
    for lang in langs:
        out.append(f'<h3><a href="#lang-{_e(lang)}">{_e(_language_name(tree, lang))} '
                   f"({_e(lang)})</a></h3><ol>")
        for node, keys in order:
            name = tree.text(node.title, lang)
            out.append(f'<li><a href="#{_e(lang)}-{_e(node.id)}" '
                       f'dir="{text_direction(lang, name)}">{_e(name)}</a> '
                       f"<small>{_e(node.id)}, {_e(node.type)}"
                       + (f", keys {_e(keys)}" if keys else "") + "</small></li>")
        out.append("</ol>")
    out.append("</nav>")

    for lang in langs:
        if progress:
            progress(f"preview: {lang} ({len(order)} nodes)")
        direction = text_direction(lang, _language_name(tree, lang))
        out.append(f'<section class="lang" id="lang-{_e(lang)}" data-lang="{_e(lang)}">'
                   f"<h2>{_e(_language_name(tree, lang))} ({_e(lang)}) &middot; "
                   f"{_e(cov[lang])}</h2>")
        for node, keys in order:
            out += _node_html(tree, node, keys, lang, direction, layout, t)
        out.append("</section>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _node_html(tree: Tree, node: Node, keys: str, lang: str, direction: str,
               layout: UssdLayout, t: Translate) -> list[str]:
    name = tree.text(node.title, lang)
    out = [f'<article class="node" id="{_e(lang)}-{_e(node.id)}" data-node="{_e(node.id)}" '
           f'data-lang="{_e(lang)}">',
           f'<h3><span dir="{direction}" lang="{_e(lang)}">{_e(name)}</span> '
           f"<small>({_e(node.id)}, {_e(node.type)})</small></h3>",
           f'<p class="meta">File {_e(node.source)}'
           + (f" &middot; keys from the main menu: {_e(keys)}" if keys else "")
           + (" &middot; sample" if node.sample else "")]
    if node.type == ARTICLE:
        encoding, parts = sms_segments(article_sms_text(tree, node, lang))
        out[-1] += (f' &middot; <span class="article-sms" data-sms="{parts}" '
                    f'data-encoding="{encoding.value}">whole article as SMS: {parts} '
                    f"segment(s), {encoding.value}</span>")
    out[-1] += "</p>"
    missing = _missing(tree, node, lang)
    if missing:
        out.append(f'<p class="missing">Not written in {_e(lang)}: {_e(", ".join(missing))}; '
                   f"callers see {_e(tree.default_language)} there.</p>")
    out.append('<div class="screens">')
    for shown in screens(tree, node, lang, layout, t):
        full = ' class="full"' if shown.chars > shown.limit * 0.95 else ""
        out.append(
            f'<figure><div class="phone" dir="{direction}" lang="{_e(lang)}" '
            f'data-node="{_e(node.id)}" data-lang="{_e(lang)}" data-page="{shown.page}" '
            f'data-pages="{shown.pages}" data-chars="{shown.chars}" '
            f'data-limit="{shown.limit}" data-encoding="{shown.encoding}" '
            f'data-sms="{shown.sms}"' + (' data-first-call="1"' if shown.note else "")
            + (' data-short="1"' if shown.short else "")
            + f'><pre class="screen">{_e(shown.text)}</pre></div>'
            f"<figcaption>"
            + (f"<b>{_e(shown.note)}</b><br>" if shown.note else "")
            + ("<b>short version</b> (USSD, first) &middot; " if shown.short else "")
            + f"Page {shown.page} of {shown.pages} &middot; <span{full}>{shown.chars}/"
            f"{shown.limit} characters</span> &middot; {shown.encoding} &middot; "
            f"{shown.sms} SMS</figcaption></figure>")
    out.append("</div></article>")
    return out
