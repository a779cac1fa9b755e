"""Outcomes of closed cases and the supervisors' analytics page and CSV.

Cases are filed through ``Complaints.file`` and worked through the dashboard's
own forms, signed in; menu usage comes from real USSD hops on the app's
webhook, counted when the hourly purge forgets the sessions.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.store import analytics as analytics_db
from ussd_app.store import complaints as complaints_db

from .conftest import audit, file_complaint, page, post

HOUR = 3600.0


def at(app: Flask, when: float) -> None:
    """Operators act at ``when`` (the complaints service's clock)."""
    app.extensions["migrantline"].complaints.clock = lambda: when


def close(client: FlaskClient, cid: int) -> None:
    assert post(client, f"/operator/complaints/{cid}/status", status="closed").status_code == 303


def stored(app: Flask, cid: int) -> dict[str, Any]:
    row = complaints_db.by_id(app.extensions["migrantline"].store, cid)
    assert row is not None
    return row


def csv_figures(client: FlaskClient, query: str = "") -> dict[tuple[str, str, str], str]:
    response = client.get("/operator/analytics.csv" + query)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "key", "measure", "value"]
    return {(r[0], r[1], r[2]): r[3] for r in rows[1:]}


def test_an_outcome_is_recorded_on_a_closed_case_with_its_history(
        app: Flask, op: FlaskClient) -> None:
    cid = int(file_complaint(app)["id"])
    close(op, cid)
    response = post(op, f"/operator/complaints/{cid}/outcome", outcome="compensation",
                    amount="1,500.5", currency="npr")
    assert response.status_code == 303
    row = stored(app, cid)
    assert (row["outcome"], row["outcome_amount"], row["outcome_currency"]) == \
        ("compensation", "1500.50", "NPR")
    shown = page(op, f"/operator/complaints/{cid}")
    assert "Outcome recorded: Compensation recovered." in shown
    assert "1500.50 NPR" in shown
    assert "Outcome recorded</td>" in shown  # the history's row
    assert [r["detail"] for r in audit(app, "outcome")] == ["compensation NPR"]
    # Recorded again: replaced, and the history keeps both.
    post(op, f"/operator/complaints/{cid}/outcome", outcome="withdrawn", amount="9",
         currency="USD")
    row = stored(app, cid)
    assert (row["outcome"], row["outcome_amount"], row["outcome_currency"]) == \
        ("withdrawn", None, None)
    kinds = [e["kind"] for e in app.extensions["migrantline"].complaints.history(cid)]
    assert kinds.count("outcome") == 2


@pytest.mark.parametrize(("form", "message"), [
    ({"outcome": "compensation", "amount": "-1", "currency": "NPR"}, "Give the amount"),
    ({"outcome": "compensation", "amount": "100000000.01", "currency": "NPR"},
     "Give the amount"),
    ({"outcome": "compensation", "amount": "1e9", "currency": "NPR"}, "Give the amount"),
    ({"outcome": "compensation", "amount": "NaN", "currency": "NPR"}, "Give the amount"),
    ({"outcome": "compensation", "amount": "", "currency": "NPR"}, "Give the amount"),
    ({"outcome": "compensation", "amount": "10.5", "currency": "JPY"}, "Give the amount"),
    ({"outcome": "compensation", "amount": "10", "currency": "XYZ"}, "ISO 4217"),
    ({"outcome": "compensation", "amount": "10", "currency": ""}, "ISO 4217"),
    ({"outcome": "paid", "amount": "", "currency": ""}, "Choose an outcome."),
])
def test_a_bad_outcome_is_refused_and_nothing_stored(app: Flask, op: FlaskClient,
                                                     form: dict[str, str],
                                                     message: str) -> None:
    cid = int(file_complaint(app)["id"])
    close(op, cid)
    response = post(op, f"/operator/complaints/{cid}/outcome", **form)
    assert response.status_code == 303
    assert message in page(op, f"/operator/complaints/{cid}")
    assert stored(app, cid)["outcome"] is None
    assert audit(app, "outcome") == []


def test_an_outcome_on_an_open_case_is_refused(app: Flask, op: FlaskClient) -> None:
    cid = int(file_complaint(app)["id"])
    shown = page(op, f"/operator/complaints/{cid}")
    assert 'name="outcome"' not in shown  # the form shows on closed cases only
    post(op, f"/operator/complaints/{cid}/outcome", outcome="resolved")
    assert "only be recorded on a closed case" in page(op, f"/operator/complaints/{cid}")
    assert stored(app, cid)["outcome"] is None


def test_analytics_are_for_supervisors_only(app: Flask, op: FlaskClient,
                                            boss: FlaskClient) -> None:
    for path in ("/operator/analytics", "/operator/analytics.csv"):
        response = op.get(path)
        assert response.status_code == 403
        assert "Only supervisors" in response.get_data(as_text=True)
    assert 'href="/operator/analytics"' not in page(op, "/operator/")
    assert 'href="/operator/analytics"' in page(boss, "/operator/")
    assert audit(app, "export_analytics") == []
    csv_figures(boss)
    assert len(audit(app, "export_analytics")) == 1


def test_the_page_and_csv_show_the_periods_figures(app: Flask, op: FlaskClient,
                                                   boss: FlaskClient) -> None:
    t0 = time.time() - 3 * 24 * HOUR
    cases = [file_complaint(app, at=t0, country="QA", category="fees"),
             file_complaint(app, at=t0, country="QA", category="unpaid_wages"),
             file_complaint(app, at=t0, country="MY", category="fees", lang="ne"),
             file_complaint(app, at=t0, urgent=True, country="AE")]
    first, second, third, urgent = (int(c["id"]) for c in cases)
    file_complaint(app, at=t0 - 400 * 24 * HOUR)  # long before the period: not counted
    for cid, hours in ((first, 1), (second, 2), (third, 10)):
        at(app, t0 + hours * HOUR)
        post(op, f"/operator/complaints/{cid}/note", note="called the agency")
    for cid, hours in ((first, 20), (second, 40)):
        at(app, t0 + hours * HOUR)
        close(op, cid)
    post(op, f"/operator/complaints/{first}/outcome", outcome="compensation",
         amount="250.75", currency="QAR")
    post(op, f"/operator/complaints/{second}/outcome", outcome="compensation",
         amount="100", currency="QAR")
    at(app, t0 + 0.5 * HOUR)
    post(op, f"/operator/complaints/{urgent}/message", template="call_us")

    shown = page(boss, "/operator/analytics")
    assert "<svg" in shown and "<script" not in shown
    assert "Cases filed in the last 12 ISO weeks" in shown and ": 4." in shown
    assert "Compensation recovered" in shown and "350.75" in shown
    assert "Recruitment fees" in shown and "Qatar" in shown and "Nepali" in shown
    for phone_part in ("+977", "9812345678"):
        assert phone_part not in shown
    figures = csv_figures(boss)
    assert figures[("cases", "all", "count")] == "4"
    assert figures[("country", "QA", "cases")] == "2"
    assert figures[("category", "fees", "cases")] == "2"
    assert figures[("channel", "ussd", "cases")] == "4"
    assert figures[("lang", "ne", "cases")] == "1"
    # First operator action: 0.5, 1, 2, 10 hours; closure: 20 and 40 hours.
    assert figures[("first_response", "all", "cases")] == "4"
    assert figures[("first_response", "all", "median_hours")] == "1.5"
    assert figures[("first_response", "all", "p90_hours")] == "10.0"
    assert figures[("closure", "all", "median_hours")] == "30.0"
    assert figures[("closure", "all", "p90_hours")] == "40.0"
    assert figures[("urgent", "all", "cases")] == "1"
    assert figures[("urgent", "all", "contacted")] == "1"
    assert figures[("urgent_first_contact", "all", "median_hours")] == "0.5"
    assert figures[("outcome", "compensation", "cases")] == "2"
    assert figures[("compensation", "QAR", "amount")] == "350.75"
    assert figures[("compensation", "QAR", "cases")] == "2"
    # One week: the case filed 3 days ago may fall outside it.
    assert int(csv_figures(boss, "?weeks=1")[("cases", "all", "count")]) <= 4
    assert csv_figures(boss, "?weeks=100000")[("cases", "all", "count")] == "4"


def hops(client: FlaskClient, session: str, phone: str, *inputs: str) -> None:
    text = ""
    for i in range(len(inputs) + 1):
        text = "*".join(inputs[:i])
        response = client.post("/ussd/africastalking", data={
            "sessionId": session, "phoneNumber": phone, "serviceCode": "*384#", "text": text})
        assert response.status_code == 200


def test_menu_usage_is_counted_when_sessions_are_forgotten(app: Flask,
                                                           boss: FlaskClient) -> None:
    phone = app.test_client()
    for i in range(6):  # six sessions: language list, English, main menu, then key 1
        hops(phone, f"walk-{i}", f"+97798000000{i:02d}", "1", "1")
    hops(phone, "other", "+9779800000099", "1", "2")  # one session elsewhere
    store = app.extensions["migrantline"].store
    rows = store.db().execute("select path, node from ussd_sessions").fetchall()
    assert len(rows) == 7 and all(r[0] and r[1] for r in rows)
    main = app.extensions["migrantline"].content.current.main
    assert all(r[0].split()[:2] == ["language", main] for r in rows)
    assert page(boss, "/operator/analytics").count("No session counted yet.") == 1

    assert store.purge_sessions(time.time() + 1) == 7  # what the hourly purge does
    assert store.db().execute("select count(*) from ussd_sessions").fetchone()[0] == 0
    columns = [c[0] for c in store.db().execute("select * from menu_counts").description]
    assert columns == ["day", "channel", "node", "reached", "ended"]  # no session, no phone

    today = time.strftime("%Y-%m-%d", time.gmtime())
    usage = {node: (reached, ended) for node, reached, ended in
             analytics_db.menu_usage(store, today, today)}
    assert usage["language"] == (7, 0) and usage[main] == (7, 0)
    walked = [node for node, (reached, ended) in usage.items() if (reached, ended) == (6, 6)]
    other = [node for node, (reached, ended) in usage.items() if (reached, ended) == (1, 1)]
    assert len(walked) == 1 and len(other) == 1
    figures = csv_figures(boss)
    assert figures[("menu", main, "reached")] == "7"
    assert figures[("menu", walked[0], "ended")] == "6"
    assert figures[("menu", other[0], "reached")] == "<5"
    assert figures[("menu", other[0], "ended")] == "<5"
    shown = page(boss, "/operator/analytics")
    assert f"<td>{other[0]}</td><td>&lt;5</td><td>&lt;5</td>" in shown
    # Purged again: nothing counted twice.
    assert store.purge_sessions(time.time() + 1) == 0
    assert csv_figures(boss)[("menu", main, "reached")] == "7"
