"""Broken content gives a clear problem with its file and line, and no tree."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ussd_app.engine.loader import (
    ERROR,
    WARNING,
    ContentError,
    Problem,
    parse_tree,
    read_files,
    read_tree,
)

from .trees import INFO, LANGUAGE, MAIN, SITE

DEMO = Path(__file__).resolve().parent.parent / "content"
CLI = Path(sys.executable).parent / "migrantline"

HELP = "id: help_now\ntype: article\ntitle: {en: Help, fr: Aide}\nbody: {en: Call, fr: Appelez}\n"


def tree_files(**changes: str | bytes | None) -> dict[str, bytes]:
    """The valid tree with some files replaced (None removes one)."""
    files: dict[str, str | bytes | None] = {
        "site.yaml": SITE, "nodes/main/language.yaml": LANGUAGE, "nodes/main/main.yaml": MAIN,
        "nodes/info/info.yaml": INFO, "nodes/help_now.yaml": HELP,
    }
    for key, value in changes.items():
        files[key.replace("__", "/").replace("_yaml", ".yaml")] = value
    return {k: v.encode() if isinstance(v, str) else v for k, v in files.items() if v is not None}


def errors_of(files: dict[str, bytes]) -> list[Problem]:
    tree, problems = parse_tree(files)
    assert tree is None, "a tree with errors must not be built"
    errors = [p for p in problems if p.severity == ERROR]
    assert errors
    return errors


def test_the_valid_tree_loads_without_any_problem() -> None:
    tree, problems = parse_tree(tree_files())
    assert problems == []
    assert tree is not None and set(tree.nodes) == {"language", "main", "info", "help_now"}


MAIN_FILE = "nodes/main/main.yaml"
CASES = [
    ("yaml syntax", MAIN.replace("  - info\n", "  - info\n   - help: [\n"), 8, "YAML syntax"),
    ("unquoted colon", MAIN.replace("en: Main", "en: Main: the menu"), 4, "YAML syntax"),
    pytest.param(MAIN + "colour: red\n", 10, "unknown key ('colour'", id="unknown key"),
    pytest.param(MAIN.replace("  fr: Principal", "  fr: Principal\n  french: x"), 6,
                 "title: 'french' is not in the expected form", id="bad language code"),
    ("wrong type", MAIN.replace("title:\n  en: Main\n  fr: Principal", "title: Main"), 3,
     "title: 'Main' is not of type 'object'"),
    ("options not a list", MAIN.replace("options:\n  - info\n  - help_now\n  - language",
                                        "options: info"), 6, "is not of type 'array'"),
    ("unknown type", MAIN.replace("type: menu", "type: manu"), 2, "type: 'manu' is not one of"),
    ("bad id", MAIN.replace("id: main", "id: Main-Menu"), 1, "'Main-Menu' is not in the"),
    ("missing required key", MAIN.replace("title:\n  en: Main\n  fr: Principal\n", ""), 1,
     "'title' is a required property"),
    ("menu without options", MAIN.split("options:")[0], 1, "'options' is a required property"),
    ("duplicate key", MAIN + "type: article\n", 10, "duplicate key 'type'"),
    ("duplicate language", MAIN.replace("  fr: Principal", "  fr: Principal\n  en: Again"),
     6, "duplicate key 'en'"),
    ("byte-order mark", "\ufeff" + MAIN, 1, "byte-order mark"),
    ("mixed line endings", MAIN.replace("\n", "\r\n", 4), 5, "mixed line endings"),
    ("invalid UTF-8", MAIN.replace("Principal", "Princ\udcffipal"), 5, "not valid UTF-8"),
    ("NUL character", MAIN.replace("Principal", "Princ\x00ipal"), 5, "NUL character"),
    ("empty file", "# nothing here\n", 1, "file is empty"),
    ("id differs from file name", MAIN.replace("id: main", "\nid: main_menu"), 2,
     "id 'main_menu' differs from the file name"),
    ("option to a missing node", MAIN.replace("  - help_now\n", "  - help_no\n"), 8,
     "option 2 links to 'help_no', which does not exist"),
]


@pytest.mark.parametrize(("text", "line", "message"), [
    c if isinstance(c, type(pytest.param())) else pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_broken_node_file(text: str, line: int, message: str) -> None:
    data = text.encode("utf-8", "surrogateescape")
    errors = errors_of(tree_files(nodes__main__main_yaml=data))
    found = [p for p in errors if message in p.message]
    assert [(p.file, p.line) for p in found] == [(MAIN_FILE, line)], errors
    assert found[0].hint
    assert str(found[0]).startswith(f"{MAIN_FILE}:{line}: error: ")


def test_unknown_key_is_named_with_a_hint() -> None:
    errors = errors_of(tree_files(nodes__main__main_yaml=MAIN + "colour: red\n"))
    assert [(p.file, p.message) for p in errors][0] == (
        MAIN_FILE, "file: unknown key ('colour' was unexpected)")
    assert "fix its spelling" in errors[0].hint


def test_file_over_one_megabyte(tmp_path: Path) -> None:
    for name, data in tree_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    big = tmp_path / "nodes" / "big.yaml"
    big.write_bytes(INFO.replace("info", "big").encode() + b"# padding\n" * 150_000)
    assert big.stat().st_size > 1_400_000
    assert len(read_files(tmp_path)["nodes/big.yaml"]) == 1_000_001
    with pytest.raises(ContentError) as caught:
        read_tree(tmp_path)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.severity) == ("nodes/big.yaml", 1, ERROR)
    assert "larger than 1000 kB" in problem.message
    assert "nodes/big.yaml:1: error: file is larger" in str(caught.value)


def test_duplicate_ids_across_files() -> None:
    errors = errors_of(tree_files(nodes__other__info_yaml=INFO))
    assert [(p.file, p.line) for p in errors] == [("nodes/other/info.yaml", 1)]
    assert "duplicate id 'info', also in nodes/info/info.yaml" in errors[0].message


def test_missing_site_file() -> None:
    errors = errors_of(tree_files(site_yaml=None))
    assert [(p.file, p.message) for p in errors][0] == ("site.yaml", "site.yaml is missing")


@pytest.mark.parametrize(
    ("site", "line", "message"),
    [
        (SITE.replace("default_language: en", "default_language: ne"), 7,
         "default language 'ne' is not in languages"),
        (SITE.replace("main: main", "main: mian"), 8, "main node 'mian' does not exist"),
        (SITE.replace("main: main", "main: info"), 8, "main node 'info' must be a menu"),
        (SITE.replace("help: help_now", "help: help"), 9, "help node 'help' does not exist"),
        (SITE.replace("  - code: fr", "  - code: en"), 2, "a language is listed twice"),
        pytest.param(SITE.replace("languages:", "langs:"), 2, "unknown key ('langs'"),
        (SITE + "  - code: de\n", 10, "YAML syntax"),
    ],
    ids=["default", "main", "main type", "help", "twice", "unknown", "syntax"],
)
def test_broken_site_file(site: str, line: int, message: str) -> None:
    errors = errors_of(tree_files(site_yaml=site))
    found = [p for p in errors if message in p.message]
    assert [(p.file, p.line) for p in found] == [("site.yaml", line)], errors


def test_missing_language_node() -> None:
    errors = errors_of(tree_files(nodes__main__language_yaml=None,
                                  nodes__main__main_yaml=MAIN.replace("  - language\n", "")))
    assert [(p.file, p.line) for p in errors] == [("site.yaml", 1)]
    assert "no node 'language' of type language" in errors[0].message


def test_missing_translation_and_unreachable_node_are_warnings() -> None:
    orphan = "id: orphan\ntype: article\ntitle: {en: O, fr: O}\nbody: {en: B, fr: B}\n"
    info = INFO.replace("  fr: Gardez votre passeport.\n", "")
    tree, problems = parse_tree(tree_files(nodes__orphan_yaml=orphan, nodes__info__info_yaml=info))
    assert tree is not None and "orphan" in tree.nodes
    assert all(p.severity == WARNING for p in problems)
    found = {(p.file, p.line, p.message) for p in problems}
    assert found == {("nodes/orphan.yaml", 1, "nothing links to 'orphan'"),
                     ("nodes/info/info.yaml", 6, "body: no text in fr")}
    assert tree.text(tree.nodes["info"].body, "fr") == "Keep your passport."


# ---------------------------------------------------------------- the CLI


def run_check(directory: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MIGRANTLINE_USSD_MAX_GSM7": "160", "MIGRANTLINE_USSD_MAX_UCS2": "70"}
    return subprocess.run([str(CLI), "content", "check", str(directory)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


PROBLEM_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<sev>error|warning): (?P<msg>.+)$")


def problem_lines(result: subprocess.CompletedProcess[str]) -> list[re.Match[str]]:
    lines = result.stdout.splitlines()
    assert lines
    matches = [PROBLEM_LINE.match(line) for line in lines]
    assert all(matches), lines
    return [m for m in matches if m]


def test_cli_on_the_demo_tree_exits_zero(tmp_path: Path) -> None:
    result = run_check(DEMO, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout
    assert "languages en, ar, fr, ne" in result.stdout


def test_cli_on_a_broken_copy_exits_one_with_file_and_line(tmp_path: Path) -> None:
    tree = tmp_path / "content"
    shutil.copytree(DEMO, tree)
    main = tree / "nodes" / "main" / "main.yaml"
    text = main.read_text("utf-8")
    line = text.splitlines().index("  - at_work") + 1
    main.write_text(text.replace("  - at_work\n", "  - at_wrok\n"), "utf-8")
    info = tree / "nodes" / "at_work" / "work_wages.yaml"
    info.write_text(info.read_text("utf-8") + "type: menu\n", "utf-8")
    info_lines = info.read_text("utf-8").count("\n")
    result = run_check(tree, tmp_path)
    assert result.returncode == 1
    found = {(m["path"], int(m["line"]), m["sev"]) for m in problem_lines(result)}
    assert (f"{tree}/nodes/main/main.yaml", line, "error") in found
    assert (f"{tree}/nodes/at_work/work_wages.yaml", info_lines, "error") in found
    assert "option 2 links to 'at_wrok'" in result.stdout
    assert "error(s)" in result.stderr


def test_cli_reports_a_screen_that_cannot_fit(tmp_path: Path) -> None:
    tree = tmp_path / "content"
    shutil.copytree(DEMO, tree)
    main = tree / "nodes" / "main" / "main.yaml"
    long_label = "مساعدة " * 28 + "خطوط"
    assert len(long_label) == 200
    main.write_text(main.read_text("utf-8").rstrip("\n") + (
        "\n  - target: help_now\n    label:\n      en: Help\n"
        f"      ar: {long_label}\n      fr: Aide\n      ne: मद्दत\n"), "utf-8")
    result = run_check(tree, tmp_path)
    assert result.returncode == 1, result.stdout
    errors = [m for m in problem_lines(result) if m["sev"] == "error"]
    assert [(m["path"], "does not fit on a screen" in m["msg"], "in ar" in m["msg"])
            for m in errors] == [(f"{tree}/nodes/main/main.yaml", True, True)]
