"""Content and agency registries on many nodes: every node serves the version a session
started on, and searches the agency registry of that version.

Two apps over one database (one data folder on SQLite, the test's PostgreSQL database
otherwise) stand for two nodes or two workers; ``migrantline content publish`` and
``content sync`` (a folder as the central store) make the mirror's versions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from flask import Flask

from ussd_app import store as db
from ussd_app.agencies.check import file_version
from ussd_app.cli import main
from ussd_app.content import bundle
from ussd_app.privacy.secret_key import SecretKeyError

from .conftest import DEMO_CONTENT, TEST_SECRET, Phone, make_app
from .test_agencies import AGENCY_KEY, LANG_KEYS, pin_today, read, search

MAIN = Path("nodes/main/main.yaml")
NEW_TITLE = "MigrantLine NEW"


def tree_copy(root: Path, name: str, title: str | None = None,
              renamed: str | None = None) -> Path:
    """The demo tree, its main title and the first agency's name changed if asked."""
    tree = root / name
    shutil.copytree(DEMO_CONTENT, tree)
    if title is not None:
        data = yaml.safe_load((tree / MAIN).read_text())
        data["title"]["en"] = title
        (tree / MAIN).write_text(yaml.safe_dump(data, allow_unicode=True))
    if renamed is not None:
        csv = tree / "agencies.csv"
        csv.write_text(csv.read_text(encoding="utf-8").replace("Sunrise Himal", renamed),
                       encoding="utf-8")
    return tree


def version_of(app: Flask) -> str:
    return str(app.extensions["migrantline"].content.current.version)


def agency_search(app: Flask) -> Any:
    return app.extensions["migrantline"].ussd.services["agency_search"]


# ---------------------------------------------------------------- agency registries


def test_two_nodes_on_different_versions_search_their_own_registry(tmp_path: Path) -> None:
    """Before, each node's load replaced the one table: the node that loaded last decided
    what every node's callers found."""
    old_tree = tree_copy(tmp_path, "old")
    new_tree = tree_copy(tmp_path, "new", title=NEW_TITLE, renamed="Moonrise Himal")
    node_a = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(old_tree))
    node_b = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(new_tree))
    for app in (node_a, node_b):
        pin_today(app)
    assert version_of(node_a) != version_of(node_b)
    a, b = node_a.test_client(), node_b.test_client()
    for _ in range(2):  # and again, once both have loaded
        assert read(search(a, "en", "sunrise himal")).startswith("Sunrise Himal Manpower")
        assert read(search(b, "en", "moonrise himal")).startswith("Moonrise Himal Manpower")
        assert "Moonrise" not in read(search(a, "en", "NP-DEMO-0001"))
        assert "Sunrise" not in read(search(b, "en", "NP-DEMO-0001"))
    # A node reloading its tree (a restart, a poll) stores nothing again.
    assert node_a.extensions["migrantline"].content.load() is True
    store = node_a.extensions["migrantline"].store
    versions = [v["version"] for v in db.agency_versions(store)]
    assert sorted(versions) == sorted(file_version((t / "agencies.csv").read_bytes())
                                      for t in (old_tree, new_tree))
    assert [agency_search(n).stored for n in (node_a, node_b)] == [1, 1]
    for app in (node_a, node_b):
        app.extensions["migrantline"].store.close()


LOAD = """
import sys
from ussd_app.web import create_app
app = create_app({"MIGRANTLINE_CONTENT_POLL_SECONDS": "0", "MIGRANTLINE_PROMPTS_RENDER": "off",
                  "MIGRANTLINE_INSECURE_OPEN_WEBHOOKS": "on"})
print("stored", app.extensions["migrantline"].ussd.services["agency_search"].stored)
"""


def test_one_version_loaded_by_many_processes_is_stored_once(tmp_path: Path) -> None:
    tree = tree_copy(tmp_path, "tree", renamed="Dawn Himal")  # a registry nobody stored yet
    db.open_store(tmp_path / "var").close()  # migrated (SQLite) before the processes start
    env = {**os.environ, "MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
           "MIGRANTLINE_CONTENT_DIR": str(tree), "MIGRANTLINE_SECRET_KEY": TEST_SECRET}
    procs = [subprocess.Popen([sys.executable, "-c", LOAD], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in outs]
    stored = [int(out.split("stored ")[1]) for out, _ in outs]
    assert sorted(stored) == [0, 0, 0, 1]
    store = db.open_store(tmp_path / "var")
    version = file_version((tree / "agencies.csv").read_bytes())
    assert [v["version"] for v in db.agency_versions(store)] == [version]
    names = db.agency_names(store, version)
    assert len(names) == len({row[0] for row in names}) >= 150
    assert any(name.startswith("Dawn Himal") for _, name, *_ in names)
    store.close()


# ---------------------------------------------------------------- content versions


class Central:
    """A central store in a folder, and the env of a node syncing from it."""

    def __init__(self, tmp_path: Path, **extra: str):
        self.tmp = tmp_path
        self.out = tmp_path / "out"
        self.out.mkdir()
        bundle.keygen(tmp_path / "keys")
        self.env = {
            "MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
            "MIGRANTLINE_CENTRAL_URL": str(self.out),
            "MIGRANTLINE_CENTRAL_PUBKEY": str(tmp_path / "keys" / "signing.pub"),
            "MIGRANTLINE_SIGNING_KEY": str(tmp_path / "keys" / "signing.key"),
            "MIGRANTLINE_SECRET_KEY": TEST_SECRET,
            "MIGRANTLINE_SYNC_INTERVAL_SECONDS": "0",
            **extra,
        }

    def cli(self, *args: str) -> None:
        result = CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    def publish_and_sync(self, tree: Path) -> None:
        self.cli("content", "publish", str(tree), str(self.out))
        self.cli("content", "sync")

    def node(self) -> Flask:
        app = make_app(self.tmp, **self.env)
        pin_today(app)
        return app

    def versions(self) -> list[str]:
        return sorted(p.name for p in (self.tmp / "var" / "content" / "versions").iterdir())


def on_main_menu(phone: Phone) -> str:
    phone.dial()
    return phone.press(LANG_KEYS["en"])


def test_a_session_goes_on_with_its_version_on_a_node_that_only_has_the_next(
        tmp_path: Path) -> None:
    central = Central(tmp_path)
    central.publish_and_sync(tree_copy(tmp_path, "v1"))
    node_a = central.node()
    old = Phone(node_a.test_client())
    assert NEW_TITLE not in on_main_menu(old)
    old_version = version_of(node_a)

    central.publish_and_sync(tree_copy(tmp_path, "v2", title=NEW_TITLE, renamed="Moonrise Himal"))
    node_b = central.node()  # started after the sync: it never served the first version
    assert version_of(node_b) != old_version
    old.client = node_b.test_client()
    # The next hop of the old session, on node B: the old tree, read from the mirror.
    assert NEW_TITLE not in old.press("00")
    assert old_version in node_b.extensions["migrantline"].content._trees
    # ... and the old tree's agency registry.
    old.press(AGENCY_KEY)
    assert read([old.press("sunrise himal")]).startswith("Sunrise Himal Manpower")
    # A new session on node B gets the new tree and its registry.
    assert NEW_TITLE in on_main_menu(Phone(node_b.test_client()))
    assert read(search(node_b.test_client(), "en", "moonrise")).startswith("Moonrise Himal")
    for app in (node_a, node_b):
        app.extensions["migrantline"].store.close()


def test_a_retired_version_stays_on_disk_while_a_session_may_be_on_it(tmp_path: Path) -> None:
    central = Central(tmp_path)
    for n, title in enumerate(("first", "second", "third")):
        central.publish_and_sync(tree_copy(tmp_path, f"v{n}", title=title))
    assert len(central.versions()) == 3  # a draft may be an hour old
    (tmp_path / "brief").mkdir()
    brief = Central(tmp_path / "brief", MIGRANTLINE_DRAFT_MINUTES="0",
                    MIGRANTLINE_RESUME_MINUTES="0", MIGRANTLINE_SMS_CONVERSATION_HOURS="0")
    for n, title in enumerate(("first", "second", "third")):
        brief.publish_and_sync(tree_copy(tmp_path / "brief", f"v{n}", title=title))
    assert len(brief.versions()) == 2  # current and previous (for rollback)


def test_a_session_on_a_version_no_longer_on_disk_gets_a_screen(tmp_path: Path,
                                                                caplog: Any) -> None:
    central = Central(tmp_path)
    central.publish_and_sync(tree_copy(tmp_path, "v1"))
    node_a = central.node()
    old = Phone(node_a.test_client())
    on_main_menu(old)
    old_version = version_of(node_a)
    central.publish_and_sync(tree_copy(tmp_path, "v2", title=NEW_TITLE))
    kept = tmp_path / "var" / "content" / "versions"
    for folder in kept.iterdir():  # as if pruned: only the current version is left
        if folder.resolve() != (tmp_path / "var" / "content" / "current").resolve():
            shutil.rmtree(folder)
    node_b = central.node()
    old.client = node_b.test_client()
    # The current tree, replayed from the start: the caller's menu, never an error.
    screen = old.press("00")
    assert screen.startswith("CON ") and NEW_TITLE in screen
    assert old_version in caplog.text and "not on disk" in caplog.text
    assert old.press("1").startswith("CON ")
    for app in (node_a, node_b):
        app.extensions["migrantline"].store.close()


def test_a_plain_folder_keeps_only_its_tree_and_old_sessions_go_on(tmp_path: Path) -> None:
    tree = tree_copy(tmp_path, "content")
    node_a = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(tree))
    old = Phone(node_a.test_client())
    on_main_menu(old)
    data = yaml.safe_load((tree / MAIN).read_text())
    data["title"]["en"] = NEW_TITLE
    (tree / MAIN).write_text(yaml.safe_dump(data, allow_unicode=True))
    node_b = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(tree))  # a restart
    old.client = node_b.test_client()
    assert NEW_TITLE in old.press("00")
    response = node_b.test_client().get("/healthz")
    assert response.status_code == 200 and response.json["content_version"] == version_of(node_b)
    for app in (node_a, node_b):
        app.extensions["migrantline"].store.close()


# ---------------------------------------------------------------- the secret key


@pytest.mark.postgres_only
def test_an_app_on_postgresql_needs_a_configured_secret_key(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match="MIGRANTLINE_SECRET_KEY is required"):
        make_app(tmp_path, MIGRANTLINE_SECRET_KEY=None)
    assert not (tmp_path / "var" / "secret_key").exists()  # no per-node key made
