"""The queue: order, filters, search, paging, the 48 h highlight, the chart, the CSV export."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import date

from flask import Flask
from flask.testing import FlaskClient

from ussd_app.dashboard import chart
from ussd_app.dashboard.export import cell

from .conftest import audit, file_complaint, page

DAY = 86400


def references(html: str) -> list[str]:
    return [a + b for a, b in re.findall(
        r'/operator/complaints/\d+"><bdi dir="ltr">(\d{4}) (\d{4})</bdi></a>', html)]


def test_urgent_first_then_the_oldest_and_numbers_masked(app: Flask, op: FlaskClient) -> None:
    now = time.time()
    young = file_complaint(app, at=now - 3600)
    old = file_complaint(app, at=now - 5 * DAY, phone="+9779811112222")
    urgent = file_complaint(app, at=now - 60, urgent=True)
    html = page(op, "/operator/")
    assert references(html) == [urgent["reference"], old["reference"], young["reference"]]
    assert "+977••••••••22" in html and "9779811112222" not in html
    assert "No pay for three months" not in html  # no free text in lists


def test_filters(app: Flask, op: FlaskClient) -> None:
    now = time.time()
    wages = file_complaint(app, at=now - 10 * DAY, country="QA")
    fees = file_complaint(app, category="fees", country="SA", at=now - DAY)
    urgent = file_complaint(app, urgent=True, country="SA", at=now - 60)
    closed = file_complaint(app, at=now - 20 * DAY)
    app.extensions["migrantline"].complaints.set_status(closed["id"], "closed", None, "test")
    w, f, u, c = (x["reference"] for x in (wages, fees, urgent, closed))
    cases = {
        "/operator/": {w, f, u},
        "/operator/?status=": {w, f, u, c},
        "/operator/?status=closed": {c},
        "/operator/?category=fees": {f},
        "/operator/?country=sa": {f, u},
        "/operator/?urgent=yes": {u},
        "/operator/?urgent=no&country=SA": {f},
        "/operator/?older=7": {w},
        "/operator/?untouched=1&status=": {w},  # closed ones are never "untouched"
        f"/operator/?q={w[:4]}%20{w[4:]}": {w},
        "/operator/?category=bogus&status=nonsense": {w, f, u, c},
    }
    for path, expected in cases.items():
        assert set(references(page(op, path))) == expected, path
    assert 'value="SA" selected' in page(op, "/operator/?country=SA")


def test_search_by_agency_and_assignment_filter(app: Flask, op: FlaskClient) -> None:
    store = app.extensions["migrantline"].store
    matched = file_complaint(app, against_kind="agency", against="x")
    plain = file_complaint(app)
    from ussd_app.store import complaints as complaints_db

    complaints_db.update(store, matched["id"], {"agency_name": "Himal 100% Manpower",
                                                "agency_licence": "NP-DEMO-0001"})
    assert references(page(op, "/operator/?q=himal")) == [matched["reference"]]
    assert references(page(op, "/operator/?q=demo-0001")) == [matched["reference"]]
    assert references(page(op, "/operator/?q=100%25")) == [matched["reference"]]
    assert references(page(op, "/operator/?q=_")) == []  # a wildcard is only a character
    me = app.extensions["dashboard"].accounts.get("op@example.org")["id"]
    app.extensions["migrantline"].complaints.act(plain["id"], "assign", me, "operator",
                                                 fields={"assigned_to": me})
    assert references(page(op, "/operator/?assigned=me")) == [plain["reference"]]
    assert references(page(op, "/operator/?assigned=nobody")) == [matched["reference"]]


def test_untouched_for_48_hours_is_highlighted_until_an_operator_acts(
        app: Flask, op: FlaskClient) -> None:
    stale = file_complaint(app, at=time.time() - 3 * DAY)
    file_complaint(app)
    html = page(op, "/operator/")
    assert html.count('class=" untouched"') == 1 and "badge untouched" in html
    app.extensions["migrantline"].complaints.act(stale["id"], "note", None, "operator", "seen")
    assert "class=\" untouched\"" not in page(op, "/operator/")


def test_pages_of_25(app: Flask, op: FlaskClient) -> None:
    now = time.time()
    for i in range(27):
        file_complaint(app, at=now - 1000 + i)
    first, second = page(op, "/operator/"), page(op, "/operator/?page=2")
    assert len(references(first)) == 25 and len(references(second)) == 2
    assert "Page 1 of 2" in first and "?page=2" in first
    assert not set(references(first)) & set(references(second))


def test_weeks_and_bars() -> None:
    today = date(2026, 11, 25)  # a Wednesday, ISO week 48
    weeks = chart.weekly([("2026-11-23", "fees", 2), ("2026-11-24", "fees", 1),
                          ("2026-09-07", "abuse", 4), ("2026-08-01", "abuse", 9)], today)
    assert len(weeks) == 12 and weeks[-1].label == "2026-W48" and weeks[0].label == "2026-W37"
    assert weeks[-1].counts == {"fees": 3} and weeks[0].counts == {"abuse": 4}
    bars, top = chart.bars(weeks, ("abuse", "fees"))
    assert top == 5 and len(bars) == 2 and bars[0].height > bars[1].height
    assert [chart.scale_top(n) for n in (0, 6, 11, 21, 51, 101)] == [5, 10, 20, 50, 100, 200]


def test_the_chart_page(app: Flask, op: FlaskClient) -> None:
    file_complaint(app, category="fees")
    file_complaint(app, category="fees")
    file_complaint(app, category="abuse")
    html = page(op, "/operator/stats")
    assert "<svg" in html and html.count("<rect x=") == 2
    assert "Recruitment fees 2</title>" in html


def test_csv_export_is_for_supervisors_and_neutralises_formulas(
        app: Flask, boss: FlaskClient) -> None:
    file_complaint(app, description="=HYPERLINK(\"http://evil\",\"x\")",
                   employer="+SUM(A1:A2)", city="@city", against_kind="employer")
    file_complaint(app, description="<script>alert(1)</script>", category="fees")
    response = boss.get("/operator/export.csv?category=unpaid_wages")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == 1
    row = rows[0]
    assert row["description"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert row["employer"] == "'+SUM(A1:A2)" and row["city"] == "'@city"
    assert row["phone_masked"].startswith("'+977•") and "9812345678" not in response.text
    assert [cell(v) for v in ("-1", "\tx", "ok", None)] == ["'-1", "'\tx", "ok", ""]
    assert audit(app, "export_csv")[0]["detail"].startswith("1 complaints;")
