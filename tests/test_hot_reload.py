"""Content edited on disk is served without a restart, whole or not at all."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import yaml
from flask.testing import FlaskClient

from .conftest import DEMO_CONTENT, Phone, make_app

MAIN = Path("nodes/main/main.yaml")


def copy_content(tmp_path: Path) -> Path:
    tree = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, tree)
    return tree


def set_main_title(tree: Path, title: str, label: str | None = None) -> None:
    """Change the main menu's English title (and an option label) in one write."""
    data = yaml.safe_load((tree / MAIN).read_text())
    data["title"]["en"] = title
    if label is not None:
        data["options"][0] = {"target": "before_you_go", "label": {"en": label}}
    temp = tree / MAIN.with_suffix(".tmp")
    temp.write_text(yaml.safe_dump(data, allow_unicode=True))
    temp.replace(tree / MAIN)  # an editor's atomic save


def wait_for(client: FlaskClient, predicate, timeout: float = 30) -> dict:  # type: ignore[no-untyped-def, type-arg]
    deadline = time.time() + timeout
    while True:
        health = client.get("/healthz").json
        if predicate(health):
            return health  # type: ignore[no-any-return]
        assert time.time() < deadline, health
        time.sleep(0.05)


def english_main(client: FlaskClient) -> str:
    phone = Phone(client)
    phone.dial()
    return phone.press("1")


def test_a_good_change_is_served_without_restart(tmp_path: Path) -> None:
    tree = copy_content(tmp_path)
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(tree),
                   MIGRANTLINE_CONTENT_POLL_SECONDS="0.1")
    client = app.test_client()
    before = client.get("/healthz").json["content_version"]
    old_session = Phone(client)
    old_session.dial()
    assert "MigrantLine" in old_session.press("1")

    set_main_title(tree, "MigrantLine TEST")
    wait_for(client, lambda h: h["content_version"] != before)
    assert "MigrantLine TEST" in english_main(client)
    # The session that began before the change keeps its version.
    assert "MigrantLine TEST" not in old_session.press("00")


def test_a_broken_change_is_not_served_and_shows_in_healthz(tmp_path: Path) -> None:
    tree = copy_content(tmp_path)
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(tree),
                   MIGRANTLINE_CONTENT_POLL_SECONDS="0.1")
    client = app.test_client()
    good = client.get("/healthz").json["content_version"]

    (tree / MAIN).write_text((tree / MAIN).read_text().replace("  - at_work\n",
                                                               "  - at_wrok\n"))
    health = wait_for(client, lambda h: h["status"] == "degraded")
    assert health["content_version"] == good
    assert "main.yaml" in health["content"]["error"] and "at_wrok" in health["content"]["error"]
    assert "MigrantLine" in english_main(client)  # still the last good tree

    (tree / MAIN).write_text((tree / MAIN).read_text().replace("at_wrok", "at_work"))
    health = wait_for(client, lambda h: h["status"] == "ok")
    assert health["content"]["error"] is None


def test_no_request_sees_a_mix_of_old_and_new(tmp_path: Path) -> None:
    """Flip the title and a label together while callers walk: each screen is one or the other."""
    tree = copy_content(tmp_path)
    set_main_title(tree, "Alpha menu", "Alpha option")
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(tree),
                   MIGRANTLINE_CONTENT_POLL_SECONDS="0.02")
    seen: list[str] = []
    stop = threading.Event()

    def caller() -> None:
        client = app.test_client()
        while not stop.is_set():
            seen.append(english_main(client))

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for thread in threads:
        thread.start()
    client = app.test_client()
    try:
        for i in range(6):
            before = client.get("/healthz").json["content_version"]
            name = "Beta" if i % 2 == 0 else "Alpha"
            set_main_title(tree, f"{name} menu", f"{name} option")
            wait_for(client, lambda h, before=before: h["content_version"] != before, timeout=30)
            time.sleep(0.05)  # let the callers see this version
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    versions = {("Alpha" in s, "Beta" in s) for s in seen}
    assert (True, True) not in versions
    for screen in seen:
        assert ("Alpha menu" in screen) == ("Alpha option" in screen), screen
    assert any("Beta menu" in s for s in seen) and any("Alpha menu" in s for s in seen)
