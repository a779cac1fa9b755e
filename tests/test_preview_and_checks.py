"""`content preview` shows every screen as the phone does; `content check` reads phone
numbers, reports translation coverage and, verbose, the SMS size of articles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ussd_app.channels.ussd.layout import UssdLayout
from ussd_app.engine.checks import article_sms_text, coverage, phone_problem
from ussd_app.engine.encoding import Limits, measure, sms_segments
from ussd_app.engine.loader import ERROR, WARNING, parse_tree, read_files, read_tree
from ussd_app.engine.paging import node_pages, short_pages
from ussd_app.i18n import default_catalogs

from .conftest import DEMO_CONTENT
from .trees import INFO, LANGUAGE, MAIN, SITE

CLI = Path(sys.executable).parent / "migrantline"
LAYOUT = UssdLayout(Limits(160, 70))


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRANTLINE_")}
    env.update({"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
                "MIGRANTLINE_CONTENT_DIR": str(DEMO_CONTENT),
                "MIGRANTLINE_USSD_MAX_GSM7": "160", "MIGRANTLINE_USSD_MAX_UCS2": "70"})
    return env


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], cwd=tmp_path, env=env_for(tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)


# ---------------------------------------------------------------- a small tree

HELP = """\
id: help_now
type: contacts
title:
  en: Help
  fr: Aide
entries:
  - name:
      en: Hotline
      fr: Ligne d'aide
    phone: "+977 1 4000000"
"""


def write_tree(root: Path, **changes: str) -> Path:
    files = {"site.yaml": SITE, "nodes/main/language.yaml": LANGUAGE,
             "nodes/main/main.yaml": MAIN, "nodes/info/info.yaml": INFO,
             "nodes/help_now.yaml": HELP}
    files.update({k.replace("__", "/").replace("_yaml", ".yaml"): v for k, v in changes.items()})
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return root


def tree_bytes(**changes: str) -> dict[str, bytes]:
    files = {"site.yaml": SITE, "nodes/main/language.yaml": LANGUAGE,
             "nodes/main/main.yaml": MAIN, "nodes/info/info.yaml": INFO,
             "nodes/help_now.yaml": HELP}
    files.update({k.replace("__", "/").replace("_yaml", ".yaml"): v for k, v in changes.items()})
    return {k: v.encode() for k, v in files.items()}


# ---------------------------------------------------------------- reading the page


@dataclass
class Box:
    attrs: dict[str, str]
    text: str = ""
    caption: str = ""


@dataclass
class Page(HTMLParser):
    boxes: list[Box] = field(default_factory=list)
    articles: list[dict[str, str]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)
    _box: Box | None = None
    _in_pre: bool = False
    _in_caption: bool = False

    def __post_init__(self) -> None:
        HTMLParser.__init__(self, convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "div" and "phone" in a.get("class", "").split():
            self._box = Box(a)
            self.boxes.append(self._box)
        elif tag == "pre" and self._box is not None:
            self._in_pre = True
        elif tag == "figcaption":
            self._in_caption = True
        elif tag == "article":
            self.articles.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre = False
        elif tag == "figcaption":
            self._in_caption = False
            self._box = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._box is not None and self._in_pre:
            self._box.text += data
        elif self._box is not None and self._in_caption:
            self._box.caption += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def demo_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("preview")
    result = run(tmp, "content", "preview", str(tmp / "all.html"))
    assert result.returncode == 0, result.stderr
    assert "preview: ar" in result.stderr  # progress goes to stderr
    return (tmp / "all.html").read_text("utf-8")


def test_every_node_of_every_language_appears_page_by_page(demo_html: str) -> None:
    tree = read_tree(DEMO_CONTENT)
    page = parse(demo_html)
    t = default_catalogs().gettext
    assert {(a["data-node"], a["data-lang"]) for a in page.articles} == {
        (node, lang) for node in tree.nodes for lang in tree.language_codes}
    for node in tree.nodes.values():
        for lang in tree.language_codes:
            boxes = [b for b in page.boxes if b.attrs["data-node"] == node.id
                     and b.attrs["data-lang"] == lang and "data-first-call" not in b.attrs]
            shown = [b for b in boxes if "data-short" not in b.attrs]
            pages = node_pages(tree, node, lang, LAYOUT, t, root=node.id == tree.main)
            assert [b.text for b in shown] == [LAYOUT.render(p, t) for p in pages], (node.id, lang)
            shorts = short_pages(tree, node, lang, LAYOUT, t) if node.short else []
            assert [b.text for b in boxes if "data-short" in b.attrs] == [
                LAYOUT.render(p, t) for p in shorts]  # what USSD shows first, then the rest
            assert [b.attrs["data-page"] for b in shown] == [
                str(i + 1) for i in range(len(pages))]
            assert f"#{lang}-{node.id}" in demo_html  # in the table of contents
    first = [b for b in page.boxes if "data-first-call" in b.attrs]
    assert len(first) == 1 and first[0].attrs["data-lang"] == tree.default_language
    assert "English" in first[0].text and "العربية" in first[0].text


def test_counts_are_the_measure_of_the_screen_text(demo_html: str) -> None:
    page = parse(demo_html)
    assert len(page.boxes) > 100
    for box in page.boxes:
        encoding, chars = measure(box.text)
        assert box.attrs["data-chars"] == str(chars), box.text
        assert box.attrs["data-encoding"] == encoding.value
        assert box.attrs["data-sms"] == str(sms_segments(box.text)[1])
        limit = LAYOUT.limits.for_encoding(encoding)
        assert f"{chars}/{limit} characters" in box.caption
        assert encoding.value in box.caption
        assert chars <= limit


def test_articles_show_the_sms_size_of_the_whole_text(demo_html: str) -> None:
    tree = read_tree(DEMO_CONTENT)
    node = tree.nodes["work_passport"]
    encoding, parts = sms_segments(article_sms_text(tree, node, "ar"))
    assert parts > 1
    section = demo_html.split('id="ar-work_passport"')[1].split("</article>")[0]
    assert (f'data-sms="{parts}" data-encoding="{encoding.value}">whole article as SMS: '
            f"{parts} segment(s)") in section


def test_arabic_boxes_are_right_to_left(demo_html: str) -> None:
    page = parse(demo_html)
    directions = {(b.attrs["data-lang"], b.attrs["dir"]) for b in page.boxes}
    assert directions == {(lang, "rtl" if lang == "ar" else "ltr")
                          for lang in read_tree(DEMO_CONTENT).language_codes}
    assert ("ar", "rtl") in directions and ("ne", "ltr") in directions


def test_version_and_sample_banner(demo_html: str, tmp_path: Path) -> None:
    tree = read_tree(DEMO_CONTENT)
    assert tree.sample
    assert "sample-data" in parse(demo_html).ids
    assert "SAMPLE DATA" in demo_html
    assert f'<code id="content-version">{tree.version}</code>' in demo_html
    # A tree that is not sample data has no banner.
    root = write_tree(tmp_path / "content")
    result = run(tmp_path, "content", "preview", "--content", str(root), str(tmp_path / "p.html"))
    assert result.returncode == 0, result.stderr
    assert "SAMPLE DATA" not in (tmp_path / "p.html").read_text("utf-8")


def test_lang_option_previews_only_that_language(tmp_path: Path) -> None:
    out = tmp_path / "ar.html"
    result = run(tmp_path, "content", "preview", "--lang", "ar", str(out))
    assert result.returncode == 0, result.stderr
    page = parse(out.read_text("utf-8"))
    assert page.boxes and {b.attrs["data-lang"] for b in page.boxes} == {"ar"}
    assert {a["data-lang"] for a in page.articles} == {"ar"}
    assert all(b.attrs["dir"] == "rtl" for b in page.boxes)
    assert not any(i.startswith(("en-", "fr-", "ne-", "lang-en")) for i in page.ids)


def test_unknown_lang_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "content", "preview", "--lang", "xx", str(tmp_path / "x.html"))
    assert result.returncode == 2
    assert "en, ar, fr, ne" in result.stderr
    assert not (tmp_path / "x.html").exists()


def test_text_is_escaped(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script> & \"q\""
    root = write_tree(
        tmp_path / "content",
        site_yaml=SITE.replace("name: Test tree", "name: '<script>bad()</script>'"),
        nodes__info__info_yaml=INFO.replace("en: Info", f"en: '{evil}'"))
    out = tmp_path / "p.html"
    result = run(tmp_path, "content", "preview", "--content", str(root), str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text("utf-8")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;" in html
    page = parse(html)
    info = [b for b in page.boxes
            if b.attrs["data-node"] == "info" and b.attrs["data-lang"] == "en"]
    assert info[0].text.startswith(evil + "\n")
    assert any("<script>bad()</script>" in text for text in page.texts)


def test_a_broken_tree_exits_one_and_says_why(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "content",
                      nodes__main__main_yaml=MAIN.replace("  - info\n", "  - infoo\n"))
    out = tmp_path / "p.html"
    result = run(tmp_path, "content", "preview", "--content", str(root), str(out))
    assert result.returncode == 1
    assert f"{root}/nodes/main/main.yaml:7: error: option 1 links to 'infoo'" in result.stderr
    assert "1 error(s)" in result.stderr
    assert not out.exists()


# ---------------------------------------------------------------- phone numbers


def phone_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if "phone:" in line)


@pytest.mark.parametrize(("phone", "message"), [
    ("+977 12", "'+977 12' cannot be a real phone number: it has too few digits"),
    ("+977 1234567890123456",
     "'+977 1234567890123456' cannot be a real phone number: it has too many digits"),
    ("01 4000000", "'01 4000000' is not a phone number that can be dialled: it has no country"),
    ("+999 1234",
     "'+999 1234' is not a phone number that can be dialled: the country code is unknown"),
])
def test_a_bad_phone_number_is_an_error_at_its_line(tmp_path: Path, phone: str,
                                                     message: str) -> None:
    help_text = HELP.replace("+977 1 4000000", phone)
    root = write_tree(tmp_path / "content", nodes__help_now_yaml=help_text)
    result = run(tmp_path, "content", "check", str(root))
    assert result.returncode == 1, result.stdout
    line = phone_line(help_text)
    expected = f"{root}/nodes/help_now.yaml:{line}: error: entries.0.phone: {message}"
    assert any(out.startswith(expected) for out in result.stdout.splitlines()), result.stdout
    assert "(hint: " in result.stdout
    tree, problems = parse_tree(tree_bytes(nodes__help_now_yaml=help_text))
    assert tree is None
    assert [(p.file, p.line, p.severity) for p in problems] == [
        ("nodes/help_now.yaml", line, ERROR)]


def test_a_possible_but_unused_number_is_a_warning(tmp_path: Path) -> None:
    help_text = HELP.replace("+977 1 4000000", "+1 555 0100")
    root = write_tree(tmp_path / "content", nodes__help_now_yaml=help_text)
    result = run(tmp_path, "content", "check", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"{root}/nodes/help_now.yaml:{phone_line(help_text)}: warning: entries.0.phone: "
            "'+1 555 0100' is not a valid number in United States (+1)") in result.stdout
    assert "0 error(s), 1 warning(s)" in result.stdout


def test_a_placeholder_number_is_only_checked_for_being_possible() -> None:
    assert phone_problem("+1 555 0100", placeholder=True) is None
    assert phone_problem("+1 555 0100")[0] == WARNING  # type: ignore[index]
    assert phone_problem("+977 12", placeholder=True)[0] == ERROR  # type: ignore[index]
    assert phone_problem("+977 1 4000000") is None


def test_every_demo_number_is_valid() -> None:
    _, problems = parse_tree(read_files(DEMO_CONTENT))
    assert not [p for p in problems if "phone" in p.message]


# ---------------------------------------------------------------- coverage and SMS size


def test_coverage_lines_for_every_language(tmp_path: Path) -> None:
    tree = read_tree(DEMO_CONTENT)
    total = coverage(tree)[0].total
    assert total > 100
    result = run(tmp_path, "content", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for lang in tree.language_codes:
        assert any(line.startswith(f"coverage: {lang} 100% ({total}/{total} texts); ")
                   for line in lines), lang
    # The source language is not "unreviewed"; every translation without a reviewer is said.
    assert f"coverage: en 100% ({total}/{total} texts); source language" in lines
    for lang in tree.languages:
        if lang.code != "en" and not lang.reviewed_by:
            assert (f"coverage: {lang.code} 100% ({total}/{total} texts); NOT REVIEWED by a "
                    f"native speaker, translated by {lang.translated_by}") in lines


def test_a_reviewed_language_says_by_whom(tmp_path: Path) -> None:
    site = (DEMO_CONTENT / "site.yaml").read_text("utf-8").replace(
        "  - code: fr\n    name: Français\n",
        "  - code: fr\n    name: Français\n    reviewed_by: Awa Diop, 2026-11-30\n")
    root = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, root)
    (root / "site.yaml").write_text(site, "utf-8")
    result = run(tmp_path, "content", "check", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    fr = next(line for line in result.stdout.splitlines() if line.startswith("coverage: fr "))
    assert fr.endswith("; reviewed by Awa Diop, 2026-11-30, translated by MigrantLine team, "
                       "machine-assisted draft"), fr
    assert "NOT REVIEWED" not in fr


def test_a_missing_translation_lowers_coverage(tmp_path: Path) -> None:
    info = INFO.replace("  fr: Gardez votre passeport.\n", "")
    tree, _ = parse_tree(tree_bytes(nodes__info__info_yaml=info))
    assert tree is not None
    assert [str(c).split(";")[0] for c in coverage(tree)] == [
        "coverage: en 100% (6/6 texts)", "coverage: fr 83% (5/6 texts)"]
    root = write_tree(tmp_path / "content", nodes__info__info_yaml=info)
    result = run(tmp_path, "content", "check", str(root))
    assert result.returncode == 0
    lines = [line.split(";")[0] for line in result.stdout.splitlines()]
    assert "coverage: fr 83% (5/6 texts)" in lines and "coverage: en 100% (6/6 texts)" in lines
    assert f"{root}/nodes/info/info.yaml:6: warning: body: no text in fr" in result.stdout


def test_sms_segments_of_articles_only_when_verbose(tmp_path: Path) -> None:
    quiet = run(tmp_path, "content", "check")
    assert ": info: " not in quiet.stdout
    verbose = run(tmp_path, "content", "check", "--verbose")
    assert verbose.returncode == 0
    tree = read_tree(DEMO_CONTENT)
    articles = [n for n in tree.nodes.values() if n.type == "article"]
    infos = [line for line in verbose.stdout.splitlines()
             if ": info: " in line and " SMS segment(s) in " in line]
    assert len(infos) == len(articles) * len(tree.language_codes)
    node = tree.nodes["work_passport"]
    encoding, parts = sms_segments(article_sms_text(tree, node, "ar"))
    text = (DEMO_CONTENT / node.source).read_text("utf-8").splitlines()
    line = next(i for i, t in enumerate(text, 1) if t.startswith("  ar:") and i > text.index(
        "body:"))
    assert any(out.endswith(f"{node.source}:{line}: info: ar: {parts} SMS segment(s) in "
                            f"{encoding.value} (title and body, "
                            f"{measure(article_sms_text(tree, node, 'ar'))[1]} characters)")
               for out in infos), infos
    assert "0 warning(s)" in verbose.stdout  # info lines are not warnings


def test_preview_refuses_a_tree_whose_agency_registry_has_errors(tmp_path: Path) -> None:
    """Preview runs the same check as `content check`: a bad agencies.csv is an error."""
    root = write_tree(tmp_path / "content")
    (root / "agencies.csv").write_text("licence,name\nNP-1,Demo\n", "utf-8")
    out = tmp_path / "p.html"
    result = run(tmp_path, "content", "preview", "--content", str(root), str(out))
    assert result.returncode == 1
    assert "agencies.csv:1: error: missing column" in result.stderr
    assert not out.exists()
