"""Any number of languages (issue 16): the first screen pages behind "98 More", the check
fails a first screen that cannot list every language within two pages, and `simulate
--lang` picks any language the content ships, on whichever page it is.

The trees are the demo content with languages added to ``site.yaml`` (their texts fall
back to English, which the coverage report says; that is all these tests need).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from ussd_app.engine.loader import read_tree

from .conftest import DEMO_CONTENT, Phone, make_app
from .test_cli import BIN, env_for, free_port
from .test_preview_and_checks import run

CORRIDOR = [("km", "ខ្មែរ"), ("lo", "ລາວ"), ("my", "မြန်မာ"), ("vi", "Tiếng Việt"),
            ("th", "ไทย"), ("ms", "Bahasa Melayu"), ("bn", "বাংলা"), ("am", "አማርኛ")]


def tree_with(tmp_path: Path, languages: list[tuple[str, str]]) -> Path:
    content = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, content)
    site = content / "site.yaml"
    text = site.read_text("utf-8")  # languages the demo already ships are not added twice
    added = "".join(f"  - code: {code}\n    name: {name}\n" for code, name in languages
                    if f"  - code: {code}\n" not in text)
    site.write_text(text.replace("default_language:", added + "default_language:"), "utf-8")
    return content


def listed(screen: str) -> dict[str, str]:
    """The language options of a screen: name -> key."""
    return {m[2]: m[1] for m in re.finditer(r"(?m)^\u200f?(\d+)\. (.+)$", screen[4:])}


def test_twelve_languages_page_behind_98_and_each_can_be_picked(tmp_path: Path) -> None:
    content = tree_with(tmp_path, CORRIDOR)
    tree = read_tree(content)
    assert len(tree.languages) == 12
    client: FlaskClient = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(content)).test_client()
    phone = Phone(client)
    first = phone.dial()
    assert first.startswith("CON ") and "98 More" in first
    second = phone.press("98")
    names = {**listed(first), **listed(second)}
    assert sorted(names) == sorted(lang.name for lang in tree.languages)  # all, in 2 pages
    assert "98 More" not in second
    assert phone.press("0") == first  # 0 still turns back a page
    # Amharic, on the second page: its number picks it from there.
    picked = Phone(client)
    picked.dial()
    picked.press("98")
    main = picked.press(names["አማርኛ"])
    assert main.startswith("CON ") and "MigrantLine" in main  # English texts, per fallback
    assert picked.press("00") == main


def test_a_first_screen_longer_than_two_pages_fails_the_check(tmp_path: Path) -> None:
    many = CORRIDOR + [(f"x{c}", f"Language number {i}") for i, c in enumerate("abcdefgh")]
    content = tree_with(tmp_path, many)
    result = run(tmp_path, "content", "check", str(content))
    assert result.returncode == 1, result.stdout
    line = next(i for i, text in enumerate((content / "site.yaml").read_text().split("\n"), 1)
                if text.startswith("languages:"))
    assert re.search(rf"{content}/site.yaml:{line}: error: the first screen needs \d pages to "
                     r"list 20 languages \(ussd:160:70\); every language must be within 2",
                     result.stdout), result.stdout
    # Twelve pass (warnings only: their texts are not translated here).
    twelve = tree_with(tmp_path / "twelve", CORRIDOR)
    assert run(tmp_path, "content", "check", str(twelve)).returncode == 0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    content = tree_with(tmp_path, CORRIDOR)
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(content))
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", content
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_simulate_lang_picks_a_language_on_the_second_page(served: tuple[str, Path],
                                                          tmp_path: Path) -> None:
    base, content = served
    result = subprocess.run(
        [str(BIN), "simulate", "--url", base, "--lang", "bn", "--phone", "+8801700000001"],
        input="", capture_output=True, text=True, timeout=60,
        env=env_for(tmp_path, MIGRANTLINE_CONTENT_DIR=str(content)))
    assert result.returncode == 0, result.stderr
    assert "> 98   (more languages)" in result.stdout
    assert re.search(r"> 11   \(language bn\)", result.stdout), result.stdout
    assert "not offered" not in result.stderr
