"""`migrantline content translations export|import`: a language out to a PO file and back.

Driven through the CLI as field staff run it, on a copy of the demo tree; what is
asserted is what lands in the YAML files and what `content check` then says.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from babel.messages.pofile import read_po, write_po

from tests.conftest import DEMO_CONTENT
from ussd_app.engine.yamlfile import _FastLoader

BIN = Path(sys.executable).parent / "migrantline"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120)


def tree_copy(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, root)
    return root


FILLED = {  # context -> a Tagalog text of each shape the import must write back exactly
    "nodes/before_you_go/bg_fees.yaml:title": "Walang bayad sa recruitment",
    "nodes/before_you_go/bg_fees.yaml:body": "Huwag magbayad para magkatrabaho.\n\n"
                                             "Humingi ng resibo: pangalan, halaga at petsa.\n",
    "nodes/agencies/check_agency.yaml:options.0.label": "I-report",
    "contacts.yaml:contacts.qa_hotline.hours": "Araw-araw: 24 oras # hindi komento",
    "nodes/complaints/report_country.yaml:options.2.label": "- Qatar",
    "nodes/complaints/report_danger.yaml:options.1.label": "Hindi",  # en: No, a text (YAML 1.2)
}


def test_export_then_import_writes_only_the_new_lines(tmp_path: Path) -> None:
    root = tree_copy(tmp_path)
    po = tmp_path / "tl.po"
    out = run("content", "translations", "export", "tl", "--content", str(root), "-o", str(po))
    assert out.returncode == 0, out.stderr
    with po.open("rb") as handle:
        catalog = read_po(handle)
    messages = {m.context: m for m in catalog if m.id}
    assert out.stdout.strip() == (f"wrote {po}: {len(messages)} texts, {len(messages)} still "
                                  "to translate into tl")
    fees = messages["nodes/before_you_go/bg_fees.yaml:title"]
    assert fees.id == "No recruitment fees" and fees.string == ""
    assert "ar: لا رسوم على التوظيف" in fees.auto_comments  # the other languages ride along
    for context, text in FILLED.items():
        messages[context].string = text
    fuzzy = messages["nodes/main/main.yaml:title"]
    fuzzy.string, fuzzy.flags = "Hula lang", {"fuzzy"}  # a guess the translator did not confirm
    with po.open("wb") as handle:
        write_po(handle, catalog)
    before = {p: p.read_text("utf-8") for p in root.rglob("*.yaml")}

    done = run("content", "translations", "import", str(po), "--content", str(root))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "tl: 6 added, 0 changed, 0 unchanged; changed 5 file(s)"
    added = []
    for path, text in before.items():
        diff = difflib.unified_diff(text.splitlines(), path.read_text("utf-8").splitlines(),
                                    lineterm="", n=0)
        changes = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        assert all(line.startswith("+") for line in changes), changes  # nothing else touched
        added += changes
    assert len(added) == 5 + 4  # five one-line texts; a body: "|", two lines, a blank
    for context, text in FILLED.items():
        file, path = context.split(":")
        node = yaml.load((root / file).read_text("utf-8"), Loader=_FastLoader)  # noqa: S506
        for step in path.split("."):
            node = node[int(step)] if step.isdigit() else node[step]
        assert node["tl"] == text, context
    assert "tl" not in yaml.safe_load((root / "nodes/main/main.yaml").read_text("utf-8"))["title"]

    again = run("content", "translations", "import", str(po), "--content", str(root))
    assert again.stdout.splitlines()[0] == "tl: 0 added, 0 changed, 6 unchanged; changed 0 file(s)"
    # A translator's correction replaces the old text in place.
    messages["nodes/before_you_go/bg_fees.yaml:title"].string = "Walang singil sa recruitment"
    with po.open("wb") as handle:
        write_po(handle, catalog)
    fixed = run("content", "translations", "import", str(po), "--content", str(root))
    assert fixed.stdout.splitlines()[0] == "tl: 0 added, 1 changed, 5 unchanged; changed 1 file(s)"
    fees_yaml = (root / "nodes/before_you_go/bg_fees.yaml").read_text("utf-8")
    assert fees_yaml.count("  tl: ") == 2 and "Walang singil sa recruitment" in fees_yaml

    # The new language then loads: listed in site.yaml, the check passes with its coverage.
    site = root / "site.yaml"
    site.write_text(site.read_text("utf-8").replace(
        "  - code: ms\n    name: Bahasa Melayu\n", "  - code: tl\n    name: Tagalog\n"),
        "utf-8")  # in place of Malay: the first screen holds no more languages
    check = run("content", "check", str(root))
    assert check.returncode == 0, check.stdout + check.stderr
    assert any(line.startswith("coverage: tl ") and "NOT REVIEWED" in line
               for line in check.stdout.splitlines())


def test_export_fills_what_is_already_translated(tmp_path: Path) -> None:
    po = tmp_path / "fr.po"
    assert run("content", "translations", "export", "fr", "--content", str(DEMO_CONTENT),
               "-o", str(po)).returncode == 0
    with po.open("rb") as handle:
        catalog = read_po(handle)
    messages = [m for m in catalog if m.id]
    # Filled exactly where the tree has French: here, every text but new short versions.
    assert [m.context for m in messages if not m.string] == [
        m.context for m in messages if m.context.endswith(":short")
        and "fr" not in yaml.safe_load((DEMO_CONTENT / m.context.split(":")[0])
                                       .read_text("utf-8"))["short"]]
    title = next(m for m in catalog if m.context == "nodes/before_you_go/bg_fees.yaml:title")
    assert title.string == "Pas de frais de recrutement"


def test_bad_files_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    root = tree_copy(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*.yaml")}
    broken = tmp_path / "broken.po"
    broken.write_bytes(b'msgid "a"\nmsgstr "b\n\x00\xff')
    out = run("content", "translations", "import", str(broken), "--lang", "tl",
              "--content", str(root))
    assert out.returncode != 0 and "Traceback" not in out.stderr

    po = tmp_path / "tl.po"
    run("content", "translations", "export", "tl", "--content", str(root), "-o", str(po))
    with po.open("rb") as handle:
        catalog = read_po(handle)
    message = next(m for m in catalog if m.context == "nodes/before_you_go/bg_fees.yaml:title")
    message.string = "Oo"
    catalog.add("Gone", "Nawala", context="nodes/gone.yaml:title")  # a node since removed
    with po.open("wb") as handle:
        write_po(handle, catalog)
    bad_lang = run("content", "translations", "import", str(po), "--lang", "k m!",
                   "--content", str(root))
    assert bad_lang.returncode != 0 and "not a language code" in bad_lang.stderr
    assert {p: p.read_bytes() for p in root.rglob("*.yaml")} == before
    dry = run("content", "translations", "import", str(po), "--dry-run", "--content", str(root))
    assert dry.returncode == 0, dry.stderr
    assert "tl: 1 added" in dry.stdout and "would change 1 file(s)" in dry.stdout
    assert "skipped nodes/gone.yaml:title: no such text" in dry.stderr
    assert {p: p.read_bytes() for p in root.rglob("*.yaml")} == before
