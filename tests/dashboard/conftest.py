"""The dashboard's tests: an app with two operators, signed-in clients, seeding helpers."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.complaints.service import Caller
from ussd_app.store import operators as operators_db

from ..conftest import make_app

# Cheap parameters: tests sign in often. Real hashes use argon2-cffi's defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"
_keys = itertools.count(1)


def cheap_hashes(app: Flask) -> None:
    app.extensions["dashboard"].accounts.hasher = FAST_HASHER


def add_operator(app: Flask, email: str, role: str = "operator", name: str = "") -> int:
    return app.extensions["dashboard"].accounts.add(email, role, PASSWORD, name)


def file_complaint(app: Flask, phone: str = "+9779812345678", lang: str = "en",
                   urgent: bool = False, at: float | None = None,
                   **answers: str) -> dict[str, Any]:
    """A complaint filed as a phone would, through ``Complaints.file``."""
    complaints = app.extensions["migrantline"].complaints
    services = app.extensions["migrantline"]
    caller = Caller("ussd", phone, services.ussd.hasher.key(phone))
    defaults = {"filed_by": "self", "category": "unpaid_wages", "contact": "any",
                "country": "QA", "description": "No pay for three months"}
    clock = complaints.clock
    if at is not None:
        complaints.clock = lambda: at
    try:
        return complaints.file(f"test-{next(_keys)}", caller, lang, {**defaults, **answers},
                               urgent=urgent)
    finally:
        complaints.clock = clock


def csrf(client: FlaskClient, path: str = "/operator/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/operator/login", data={"email": email, "password": password,
                                                "csrf_token": csrf(client)})


def post(client: FlaskClient, path: str, **form: Any) -> Any:
    """A dashboard form, sent with the session's CSRF token as the page would."""
    return client.post(path, data={**form, "csrf_token": csrf(client, "/operator/")})


def audit(app: Flask, action: str) -> list[dict[str, Any]]:
    rows, _ = operators_db.audit_rows(app.extensions["migrantline"].store, 500, 0)
    return [r for r in rows if r["action"] == action]


def page(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path, MIGRANTLINE_LOGIN_MAX_FAILURES="3",
                   MIGRANTLINE_LOGIN_IP_MAX_FAILURES="6")
    cheap_hashes(app)
    add_operator(app, "op@example.org", "operator", "Asha")
    add_operator(app, "boss@example.org", "supervisor")
    yield app
    app.extensions["migrantline"].store.close()


@pytest.fixture
def op(app: Flask) -> FlaskClient:
    """Signed in as an operator."""
    client = app.test_client()
    assert sign_in(client, "op@example.org").status_code == 303
    return client


@pytest.fixture
def boss(app: Flask) -> FlaskClient:
    """Signed in as a supervisor."""
    client = app.test_client()
    assert sign_in(client, "boss@example.org").status_code == 303
    return client
