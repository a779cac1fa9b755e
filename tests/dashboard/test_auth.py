"""Signing in to the dashboard: cookies, CSRF, lock-out, idle time-out, roles."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from ..conftest import make_app
from .conftest import PASSWORD, audit, csrf, file_complaint, page, post, sign_in

# ---------------------------------------------------------------- signing in


def test_every_page_needs_a_sign_in_and_the_cookie_is_protected(app: Flask) -> None:
    client = app.test_client()
    for path in ("/operator/", "/operator/stats", "/operator/complaints/1",
                 "/operator/export.csv", "/operator/audit"):
        response = client.get(path)
        assert response.status_code == 302 and "/operator/login" in response.location
    cookie = client.get("/operator/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/operator" in cookie
    assert "Secure" not in cookie
    response = sign_in(client, "op@example.org")
    assert response.status_code == 303 and response.location.endswith("/operator/")
    assert "default-src 'none'" in client.get("/operator/").headers["Content-Security-Policy"]


def test_the_cookie_is_secure_under_https(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_BASE_URL="https://hotline.example.org")
    try:
        assert "Secure" in app.test_client().get("/operator/login").headers["Set-Cookie"]
    finally:
        app.extensions["migrantline"].store.close()


def test_a_wrong_password_is_refused_and_audited(app: Flask) -> None:
    client = app.test_client()
    response = sign_in(client, "op@example.org", "wrong password!")
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)
    assert client.get("/operator/").status_code == 302
    # The email typed is kept as a keyed hash, which the audit page resolves for known accounts.
    key = app.extensions["dashboard"].accounts.email_key("op@example.org")
    assert [r["detail"] for r in audit(app, "sign_in_failed")] == [key]
    assert sign_in(client, "OP@example.org ").status_code == 303  # case and spaces forgiven
    assert len(audit(app, "sign_in")) == 1


def test_lockout_after_failures_even_with_the_right_password(app: Flask) -> None:
    client = app.test_client()
    accounts = app.extensions["dashboard"].accounts
    codes = [sign_in(client, "op@example.org", "nope-nope-nope").status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    response = sign_in(client, "op@example.org")
    assert response.status_code == 429 and "Too many failed sign-ins" in response.get_data(
        as_text=True)
    assert sign_in(app.test_client(), "boss@example.org").status_code == 303  # others: fine
    later = time.time() + accounts.lock_seconds + 1
    accounts.clock = lambda: later
    assert sign_in(client, "op@example.org").status_code == 303


def test_one_address_trying_many_accounts_is_limited(app: Flask) -> None:
    client = app.test_client()
    codes = [sign_in(client, f"guess{i}@example.org", "whatever-whatever").status_code
             for i in range(6)]
    assert codes[-1] == 429 and codes[:5] == [401] * 5
    assert sign_in(client, "op@example.org").status_code == 429  # from this address


def test_a_post_without_the_csrf_token_is_refused(app: Flask, op: FlaskClient) -> None:
    complaint = file_complaint(app)
    response = op.post(f"/operator/complaints/{complaint['id']}/note", data={"note": "hi"})
    assert response.status_code == 400
    response = op.post(f"/operator/complaints/{complaint['id']}/note",
                       data={"note": "hi", "csrf_token": "forged"})
    assert response.status_code == 400
    assert not [e for e in app.extensions["migrantline"].complaints.history(complaint["id"])
                if e["kind"] == "note"]
    fresh = app.test_client()
    response = fresh.post("/operator/login", data={"email": "op@example.org",
                                                   "password": PASSWORD})
    assert response.status_code == 400  # the sign-in form too


def test_idle_sessions_expire(app: Flask, op: FlaskClient) -> None:
    assert op.get("/operator/").status_code == 200
    with op.session_transaction("/operator/") as session:
        session["seen"] = time.time() - 31 * 60
    response = op.get("/operator/")
    assert response.status_code == 302 and "/operator/login" in response.location
    assert "signed out after a time without activity" in page(op, "/operator/login")


def test_sign_out_ends_the_session_even_for_a_copied_cookie(app: Flask,
                                                            op: FlaskClient) -> None:
    copy = app.test_client()
    cookie = op.get_cookie("migrantline_operator", path="/operator")
    assert cookie is not None
    copy.set_cookie("migrantline_operator", cookie.value, path="/operator")
    assert copy.get("/operator/").status_code == 200
    assert post(op, "/operator/logout").status_code == 303
    assert op.get("/operator/").status_code == 302
    assert copy.get("/operator/").status_code == 302


def test_a_disabled_operator_is_signed_out(app: Flask, op: FlaskClient,
                                           boss: FlaskClient) -> None:
    operator = app.extensions["dashboard"].accounts.get("op@example.org")
    assert post(boss, f"/operator/operators/{operator['id']}/active",
                active="0").status_code == 303
    assert op.get("/operator/").status_code == 302
    assert sign_in(app.test_client(), "op@example.org").status_code == 401
    assert audit(app, "operator_disable")


def test_an_old_hash_is_upgraded_at_sign_in(app: Flask) -> None:
    from argon2 import PasswordHasher

    accounts = app.extensions["dashboard"].accounts
    accounts.hasher = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    assert sign_in(app.test_client(), "op@example.org").status_code == 303
    assert "m=2048,t=2" in accounts.get("op@example.org")["password_hash"]


def test_supervisor_pages_are_closed_to_operators(op: FlaskClient, boss: FlaskClient) -> None:
    for path in ("/operator/export.csv", "/operator/audit", "/operator/partners",
                 "/operator/operators"):
        assert op.get(path).status_code == 403, path
        assert boss.get(path).status_code == 200, path
    assert post(op, "/operator/partners", name="NGO").status_code == 403
    assert "Audit log" not in page(op, "/operator/")
    assert "Audit log" in page(boss, "/operator/")


def test_sign_in_goes_back_to_the_page_asked_for_but_never_elsewhere(app: Flask) -> None:
    client = app.test_client()
    asked = client.get("/operator/stats?x=1")
    assert "next=/operator/stats" in asked.location
    for wanted, landing in (("/operator/stats?x=1", "/operator/stats?x=1"),
                            ("//evil.example/operator/", "/operator/"),
                            ("https://evil.example/", "/operator/")):
        client = app.test_client()
        response = client.post("/operator/login", data={
            "email": "op@example.org", "password": PASSWORD, "next": wanted,
            "csrf_token": csrf(client)})
        assert response.status_code == 303 and response.location == landing, wanted
