"""One source for every contact: ``content/contacts.yaml``, referenced by id (issue 16).

Changing a number in the directory changes every list that shows it (the demo's Qatar
hotline is in "Hotlines" and in "By country → Qatar"); an id that does not exist fails
`content check` at its file and line; a number written out that is also in the
directory is a warning; ``{contact:id}`` in a text is the directory's number.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from flask.testing import FlaskClient

from ussd_app.engine.loader import ERROR, WARNING, parse_tree, read_files, read_tree
from ussd_app.engine.model import CONTACTS

from .conftest import DEMO_CONTENT, Phone, make_app
from .test_preview_and_checks import run, tree_bytes, write_tree
from .trees import SITE

DIRECTORY = """\
contacts:
  hotline:
    name:
      en: Hotline
      fr: Ligne d'aide
    phone: "+977 1 4000000"
    placeholder: true
"""
BY_ID = """\
id: help_now
type: contacts
title:
  en: Help
  fr: Aide
intro:
  en: Or call {contact:hotline} at night.
  fr: Ou appelez le {contact:hotline} la nuit.
entries:
  - contact: hotline
  - contact: hotline
    where:
      en: Kathmandu
      fr: Katmandou
"""


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_the_demo_lists_every_contact_by_id() -> None:
    tree = read_tree(DEMO_CONTENT)
    lists = [n for n in tree.nodes.values() if n.type == CONTACTS]
    assert len(lists) >= 8
    assert all(e.contact for n in lists for e in n.entries)
    # Each number is written once in the whole content folder: in the directory.
    written = "\n".join(p.read_text("utf-8") for p in DEMO_CONTENT.rglob("*.yaml"))
    for entry in (e for n in lists for e in n.entries):
        assert written.count(entry.phone) == 1, entry.phone


def test_a_number_changed_in_the_directory_changes_every_list(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, content)
    directory = content / "contacts.yaml"
    directory.write_text(directory.read_text("utf-8").replace("+974 4000 0000",
                                                               "+974 4111 2222"), "utf-8")
    tree = read_tree(content)
    shown = {n.id for n in tree.nodes.values() for e in n.entries if e.phone == "+974 4111 2222"}
    assert {"help_hotlines", "help_country_qa"} <= shown
    assert not any(e.phone == "+974 4000 0000" for n in tree.nodes.values() for e in n.entries)
    # And the caller sees it: Help now (99), By country, Qatar.
    client: FlaskClient = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(content)).test_client()
    phone = Phone(client)
    phone.dial()
    phone.press("1", "99")
    by_country = tree.nodes["help_now"].options
    phone.press(str(1 + [o.target for o in by_country].index("help_by_country")))
    qatar = [o.target for o in tree.nodes["help_by_country"].options].index("help_country_qa")
    assert "+974 4111 2222" in phone.press(str(qatar + 1))


def test_contacts_by_id_and_in_texts_are_filled_in() -> None:
    tree, problems = parse_tree(tree_bytes(contacts_yaml=DIRECTORY, nodes__help_now_yaml=BY_ID))
    assert tree is not None, problems
    node = tree.nodes["help_now"]
    assert [(e.contact, e.phone, tree.text(e.where, "fr")) for e in node.entries] == [
        ("hotline", "+977 1 4000000", ""), ("hotline", "+977 1 4000000", "Katmandou")]
    assert tree.text(node.intro, "en") == "Or call +977 1 4000000 at night."
    assert not [p for p in problems if p.severity in (ERROR, WARNING)]


def test_a_contact_id_that_does_not_exist_fails_at_its_line(tmp_path: Path) -> None:
    node = BY_ID.replace("  - contact: hotline\n    where", "  - contact: hotlin\n    where")
    root = write_tree(tmp_path / "content", contacts_yaml=DIRECTORY, nodes__help_now_yaml=node)
    result = run(tmp_path, "content", "check", str(root))
    assert result.returncode == 1, result.stdout
    line = line_of(node, "contact: hotlin\n")
    assert (f"{root}/nodes/help_now.yaml:{line}: error: entries.1.contact: no contact "
            "'hotlin' in contacts.yaml") in result.stdout
    # In a text: the same, at the text's line.
    text = BY_ID.replace("{contact:hotline} at night", "{contact:police} at night")
    tree, problems = parse_tree(tree_bytes(contacts_yaml=DIRECTORY, nodes__help_now_yaml=text))
    assert tree is None
    assert [(p.file, p.line, p.severity, p.message) for p in problems] == [
        ("nodes/help_now.yaml", line_of(text, "  en: Or call"), ERROR,
         "intro.en: no contact 'police' in contacts.yaml")]
    # A tree with no directory at all: still an error, with a hint to add one.
    tree, problems = parse_tree(tree_bytes(nodes__help_now_yaml=BY_ID))
    assert tree is None and problems[0].severity == ERROR
    assert "add contacts.yaml" in problems[0].hint


def test_a_number_copied_from_the_directory_is_a_warning(tmp_path: Path) -> None:
    copied = BY_ID.replace("  - contact: hotline\n    where:", """\
  - name:
      en: Hotline
      fr: Ligne d'aide
    phone: "+977 1 4000000"
    where:""").replace("{contact:hotline} at night", "+977 1 4000000 at night")
    root = write_tree(tmp_path / "content", contacts_yaml=DIRECTORY, nodes__help_now_yaml=copied)
    result = run(tmp_path, "content", "check", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    phone_line = line_of(copied, 'phone: "+977')
    assert (f"{root}/nodes/help_now.yaml:{phone_line}: warning: entries.1.phone: "
            "+977 1 4000000 is contact 'hotline' in contacts.yaml") in result.stdout
    assert f"help_now.yaml:{line_of(copied, '  en: Or call')}: warning: intro.en" \
        in result.stdout
    assert "contact: hotline" in result.stdout  # the hint says what to write
    assert re.search(r"0 error\(s\), 2 warning\(s\)", result.stdout), result.stdout


def test_a_bad_number_in_the_directory_is_an_error_there() -> None:
    bad = DIRECTORY.replace("+977 1 4000000", "01 4000000")
    tree, problems = parse_tree(tree_bytes(contacts_yaml=bad, nodes__help_now_yaml=BY_ID))
    assert tree is None
    assert [(p.file, p.line) for p in problems if p.severity == ERROR] == [
        ("contacts.yaml", line_of(bad, "phone:"))]


def test_the_directory_travels_with_the_tree(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "content", contacts_yaml=DIRECTORY, nodes__help_now_yaml=BY_ID)
    assert "contacts.yaml" in read_files(root)
    assert SITE  # the small tree's site file is the one the directory sits beside
