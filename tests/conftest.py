"""Shared fixtures: an app on a fresh database with the demo content.

SQLite by default; with ``MIGRANTLINE_TEST_DATABASE_URL`` set, every test gets
a PostgreSQL database of its own (see ``tests/databases.py``).
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests import databases
from ussd_app import jobs
from ussd_app.web import create_app

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONTENT = ROOT / "content"
_ids = itertools.count(1)
# A key as strong as production needs (the service refuses weak ones): 43 base64 characters.
TEST_SECRET = "test-secret-OnYH9FJ7j3YpmozvtyYrpBRVr3vr5Uu5tfoenZ_WLaE"


def make_app(tmp_path: Path, **overrides: object) -> Flask:
    config = {
        "MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
        "MIGRANTLINE_CONTENT_DIR": str(DEMO_CONTENT),
        "MIGRANTLINE_SECRET_KEY": TEST_SECRET,
        "MIGRANTLINE_WEBHOOK_TOKEN": None,
        # The explicit opt-out: tests post unauthenticated unless they configure a token
        # (tests/test_webhook_auth.py builds apps without it and attacks them).
        "MIGRANTLINE_INSECURE_OPEN_WEBHOOKS": "on",
        "MIGRANTLINE_CONTENT_POLL_SECONDS": "0",
        "MIGRANTLINE_PROMPTS_RENDER": "off",  # tests render what they play, no more
    }
    config.update(overrides)
    return create_app(config)


# Modules whose tests open no database (a survey of the PostgreSQL pass: none of their
# tests connected; ``databases.Lazy`` would make one if they did). They test no store, so
# the PostgreSQL pass does not collect them: they ran on SQLite, with the same result.
NO_DATABASE = {"test_paging", "test_encoding", "test_providers", "test_content_loader",
               "test_engine", "test_slow_clients", "test_preview_and_checks",
               "test_architecture", "test_translations", "test_docs", "test_nginx",
               "test_sync_packs"}


@pytest.fixture(autouse=True)
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """The test's PostgreSQL database (its URL in MIGRANTLINE_DATABASE_URL), or None.

    The database is made when the test first connects to it or starts a process that
    may (``databases.Lazy``), and dropped after it. On either engine the periodic jobs
    of the apps the test made are stopped after it."""
    started = time.time()
    if not databases.on_postgres():
        monkeypatch.delenv("MIGRANTLINE_DATABASE_URL", raising=False)
        yield None
        # The test's apps' jobs: left running, they woke every few seconds for the rest of
        # the pass, and at its end wrote "no such table" into the output from data folders
        # their tests had removed.
        jobs.stop_started_since(started)
        return
    lazy = databases.Lazy()
    monkeypatch.setenv("MIGRANTLINE_DATABASE_URL", lazy.url)
    monkeypatch.setattr(psycopg, "connect", lazy.connect)
    monkeypatch.setattr(subprocess.Popen, "_execute_child", lazy.execute_child())
    yield lazy.url
    jobs.stop_started_since(started)  # the test's apps' jobs: their database goes next
    lazy.drop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each pass runs the tests of its engine: SQLite-only tests (file modes, WAL, the
    file copied by a thief) are not collected on PostgreSQL, nor PostgreSQL-only ones
    (many nodes on one database) on SQLite, nor the NO_DATABASE modules and the
    ``engine_independent`` tests (speech and audio files, and the languages after the first
    of a per-language walk: the store is incidental, and
    rendering is a third of the pass's CPU) on PostgreSQL. Nothing is skipped."""
    unwanted = "sqlite_only" if databases.on_postgres() else "postgres_only"
    kept = [item for item in items if unwanted not in item.keywords
            and not (databases.on_postgres() and (_module(item) in NO_DATABASE
                                                  or "engine_independent" in item.keywords))]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def _module(item: pytest.Item) -> str:
    return item.module.__name__.rpartition(".")[2] if item.module else ""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    yield app
    app.extensions["migrantline"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Phone:
    """A handset dialling through Africa's Talking: it keeps the cumulative text."""

    def __init__(self, client: FlaskClient, number: str | None = None, query: str = ""):
        self.client = client
        self.number = number or f"+97798{next(_ids):08d}"
        self.query = query
        self.session = ""
        self.inputs: list[str] = []

    def dial(self) -> str:
        self.session = f"ATUid_{next(_ids):012d}"
        self.inputs = []
        return self.hop_text("")

    def press(self, *keys: str) -> str:
        body = ""
        for key in keys:
            self.inputs.append(key)
            body = self.hop_text("*".join(self.inputs))
        return body

    def hop_text(self, text: str) -> str:
        response = self.client.post(
            "/ussd/africastalking" + self.query,
            data={"sessionId": self.session, "serviceCode": "*384*1234#",
                  "phoneNumber": self.number, "networkCode": "99999", "text": text},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/plain"
        body = response.get_data(as_text=True)
        assert body.startswith(("CON ", "END ")), body
        return body


@pytest.fixture
def phone(client: FlaskClient) -> Phone:
    return Phone(client)


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real audio made once: a WAV and two kinds of MP3 (see recording_server.make_audio)."""
    from tests.recording_server import make_audio

    return make_audio(tmp_path_factory.mktemp("audio"))


@pytest.fixture
def recording_server() -> Iterator[object]:
    """A stand-in for the providers' recording URLs on 127.0.0.1."""
    from tests.recording_server import serving

    with serving() as server:
        yield server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--refresh-transcripts", action="store_true",
                     help="rewrite tests/transcripts/*.txt from the app (make transcripts)")
