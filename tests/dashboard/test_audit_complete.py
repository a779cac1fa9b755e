"""Audit completeness: account changes made with the CLI and every purge are in the audit
log, read as a supervisor reads it (the audit page); a failed sign-in keeps a keyed hash
of the email typed, never the text."""

from __future__ import annotations

import getpass
import re
import time
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from tests import stored
from tests.conftest import TEST_SECRET
from ussd_app.cli import main

from .conftest import PASSWORD, audit, file_complaint, page, sign_in

ACTOR = f"cli:{getpass.getuser()}"


def cli(app: Flask, *args: str, stdin: str = "") -> str:
    env = {"MIGRANTLINE_DATA_DIR": app.config["MIGRANTLINE_DATA_DIR"],
           "MIGRANTLINE_SECRET_KEY": TEST_SECRET}
    result = CliRunner().invoke(main, list(args), input=stdin, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def rows_of(html: str) -> list[str]:
    """The audit table's rows, as text (tags dropped)."""
    return [re.sub(r"<[^>]+>", " ", row) for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)]


def test_operator_changes_made_with_the_cli_are_audited(app: Flask, boss: FlaskClient) -> None:
    cli(app, "operators", "add", "new@example.org", "--role", "operator",
        stdin="a long enough password\n")
    cli(app, "operators", "disable", "new@example.org")
    cli(app, "operators", "enable", "new@example.org")
    cli(app, "operators", "password", "new@example.org", stdin="another long password\n")
    rows = rows_of(page(boss, "/operator/audit"))
    for action in ("operator_add", "operator_disable", "operator_enable", "operator_password"):
        found = [r for r in rows if f" {action} " in r]
        assert len(found) == 1, (action, rows[:6])
        assert ACTOR in found[0] and "new@example.org" in found[0]
    assert "role operator" in next(r for r in rows if " operator_add " in r)


def test_a_failed_sign_in_keeps_no_text_typed(app: Flask, boss: FlaskClient) -> None:
    typed = "Hunter2-typed-in-the-email-field"
    assert sign_in(app.test_client(), typed, "whatever-password").status_code == 401
    assert sign_in(app.test_client(), "op@example.org", "wrong password!").status_code == 401
    app.extensions["migrantline"].store.flush()
    data = Path(app.config["MIGRANTLINE_DATA_DIR"])
    raw = stored.at_rest(data, app.extensions["migrantline"].store.db().conn)  # files or rows
    assert typed.encode() not in raw and typed.lower().encode() not in raw
    failed = audit(app, "sign_in_failed")
    accounts = app.extensions["dashboard"].accounts
    assert {r["detail"] for r in failed} == {accounts.email_key(typed),
                                             accounts.email_key("op@example.org")}
    assert accounts.email_key(typed) == accounts.email_key(f"  {typed.upper()} ")
    rows = [r for r in rows_of(page(boss, "/operator/audit")) if " sign_in_failed " in r]
    assert any("op@example.org" in r for r in rows)  # a known account: resolved on the page
    assert any(accounts.email_key(typed) in r for r in rows)
    assert not any(typed.lower() in r.lower() for r in rows)


def test_the_lock_out_still_counts_per_account(app: Flask) -> None:
    codes = [sign_in(app.test_client(), "OP@example.org ", "nope-nope-nope").status_code
             for _ in range(3)]
    assert codes == [401, 401, 429]
    assert sign_in(app.test_client(), "op@example.org", PASSWORD).status_code == 429


def test_every_retention_purge_is_audited(app: Flask, boss: FlaskClient) -> None:
    cli(app, "retention", "purge")  # nothing to erase: the run is still recorded
    complaint = file_complaint(app)
    services = app.extensions["migrantline"]
    services.complaints.set_status(complaint["id"], "closed", None, "operator:test")
    services.store.db().execute("update complaints set closed_at = ? where id = ?",
                                [time.time() - 400 * 86400, complaint["id"]])
    cli(app, "retention", "purge")
    runs = audit(app, "retention_purge")
    assert len(runs) == 2 and all(r["actor"] == ACTOR for r in runs)
    assert "of 1 complaint(s)" in runs[0]["detail"] and "of 0 complaint(s)" in runs[1]["detail"]
    erased = audit(app, "complaint_erased")
    assert [r["complaint_id"] for r in erased] == [complaint["id"]]
    html = page(boss, f"/operator/audit?reference={complaint['reference']}")
    assert "complaint_erased" in html and ACTOR in html
