"""Agency flags (#19 point 5): a supervisor raises one on the dashboard, with a reason
from a fixed list, a source and a date; a caller checking the agency reads it in their
language; complaint counts help decide and are never shown to callers."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.agencies.flags import FLAG_LINE, REASONS
from ussd_app.store import agency_flags as flags_db

from ..test_agencies import LANGS, flat, read, search, t
from .conftest import audit, file_complaint, page, post


def warning(lang: str, reason: str, source: str, day: str) -> str:
    return flat(t(lang, FLAG_LINE, reason=t(lang, REASONS[reason]), source=source, date=day))


def raise_flag(boss: FlaskClient, **form: str) -> str:
    response = post(boss, "/operator/agencies/flags", **form)
    assert response.status_code == 302, response.status_code
    return page(boss, "/operator/agencies/flags")


@pytest.mark.parametrize("lang", LANGS)
def test_a_flag_is_read_by_callers_in_their_language(app: Flask, boss: FlaskClient,
                                                     lang: str) -> None:
    client = app.test_client()
    assert "WARNING" not in read(search(client, lang, "NP-DEMO-0001"))
    html = raise_flag(boss, licence="np demo 0001", reason="investigation",
                      source="DoFE Nepal", flagged_on="2026-11-20")
    assert "Sunrise Himal Manpower (sample)" in html
    text = read(search(client, lang, "NP-DEMO-0001"))
    assert warning(lang, "investigation", "DoFE Nepal", "2026-11-20") in text
    assert text.index(warning(lang, "investigation", "DoFE Nepal", "2026-11-20")) \
        > text.index("Sunrise Himal Manpower (sample)")
    assert audit(app, "agency_flag_raised")


def test_an_agency_missing_from_the_registry_is_flagged_by_name(app: Flask,
                                                                boss: FlaskClient) -> None:
    raise_flag(boss, name="Shadow Visa Brokers", reason="not_licensed",
               source="Migrant Resource Centre", flagged_on="2026-11-02")
    text = read(search(app.test_client(), "ne", "shadow visa brokers"))
    assert "Shadow Visa Brokers" in text
    assert warning("ne", "not_licensed", "Migrant Resource Centre", "2026-11-02") in text


def test_a_flag_whose_agency_left_the_registry_shows_as_orphaned(app: Flask,
                                                                 boss: FlaskClient) -> None:
    html = raise_flag(boss, licence="XX-GONE-1", name="Gone Overseas", reason="fees",
                      source="Ministry of Labour", flagged_on="2026-10-01")
    assert "no longer in the registry" in html
    text = read(search(app.test_client(), "en", "Gone Overseas"))
    assert warning("en", "fees", "Ministry of Labour", "2026-10-01") in text


def test_lifting_a_flag_removes_the_warning(app: Flask, boss: FlaskClient) -> None:
    client = app.test_client()
    raise_flag(boss, licence="NP-DEMO-0003", reason="many_reports", source="Hotline",
               flagged_on="2026-11-01")
    assert "WARNING" in read(search(client, "en", "NP-DEMO-0003"))
    flag_id = flags_db.active_flags(app.extensions["migrantline"].store)[0]["id"]
    response = post(boss, f"/operator/agencies/flags/{flag_id}/lift")
    assert response.status_code == 302
    assert "WARNING" not in read(search(client, "en", "NP-DEMO-0003"))
    assert audit(app, "agency_flag_lifted")
    assert "No agency is flagged." in page(boss, "/operator/agencies/flags")
    again = post(boss, f"/operator/agencies/flags/{flag_id}/lift")
    assert again.status_code == 302
    assert "That flag is not raised." in page(boss, "/operator/agencies/flags")


@pytest.mark.parametrize(("form", "message"), [
    ({"licence": "NP-DEMO-0001", "reason": "he is a crook", "source": "x",
      "flagged_on": "2026-11-01"}, "Choose a reason from the list."),
    ({"licence": "NOT-LISTED", "reason": "fees", "source": "x", "flagged_on": "2026-11-01"},
     "Give the agency"),
    ({"licence": "NP-DEMO-0001", "reason": "fees", "source": "", "flagged_on": "2026-11-01"},
     "Say who reported it"),
    ({"licence": "NP-DEMO-0001", "reason": "fees", "source": "x", "flagged_on": "01/11/2026"},
     "The date must be YYYY-MM-DD"),
    ({"licence": "NP-DEMO-0001", "reason": "fees", "source": "x", "flagged_on": "2999-01-01"},
     "The date must be YYYY-MM-DD"),
])
def test_bad_flags_are_refused_and_nothing_is_stored(app: Flask, boss: FlaskClient,
                                                     form: dict[str, str],
                                                     message: str) -> None:
    html = raise_flag(boss, **form)
    assert message in html.replace("&#39;", "'")
    assert "No agency is flagged." in html
    assert "WARNING" not in read(search(app.test_client(), "en", "NP-DEMO-0001"))


def test_only_supervisors_flag(op: FlaskClient) -> None:
    assert op.get("/operator/agencies/flags").status_code == 403
    response = post(op, "/operator/agencies/flags", licence="NP-DEMO-0001", reason="fees",
                    source="x", flagged_on="2026-11-01")
    assert response.status_code == 403


def test_complaints_per_agency_this_quarter(app: Flask, boss: FlaskClient) -> None:
    for _ in range(3):
        file_complaint(app, against_kind="agency", against="Golden Gate Recruitment")
    file_complaint(app, against_kind="agency", against="NP-DEMO-0001")
    html = page(boss, "/operator/agencies/flags")
    top = html[html.index('id="top"'):]
    assert top.index("NP-DEMO-0003") < top.index("NP-DEMO-0001")
    assert "<td>3</td>" in top
    # Counts decide nothing by themselves: no flag was raised, callers see none.
    assert "No agency is flagged." in html
    text = read(search(app.test_client(), "en", "NP-DEMO-0003"))
    assert "WARNING" not in text and "complaints from migrants" not in text
    assert "Never shown to callers." in html


def test_an_agency_missing_from_the_registry_reported_again_and_again(
        app: Flask, boss: FlaskClient) -> None:
    for typed in ("Shadow Visa Brokers", "shadow visa brokers", "SHADOW-VISA BROKERS!"):
        file_complaint(app, against_kind="agency", against=typed)
    newest = file_complaint(app, against_kind="both", against="Shadow Visa Brokers")
    file_complaint(app, against_kind="agency", against="Other Unknown Agents")
    html = page(boss, "/operator/agencies/flags")
    unlisted = html[html.index('id="unlisted"'):]
    assert ('<td dir="auto">Shadow Visa Brokers</td><td>4</td>'
            f'<td><a href="/operator/complaints/{newest["id"]}">') in unlisted, unlisted
    assert unlisted.index("Shadow Visa Brokers") < unlisted.index("Other Unknown Agents")
    # the name is sealed in the complaint; what is grouped on is a keyed hash
    row = app.extensions["migrantline"].store.db().execute(
        "select agency_name_key from complaints where id = ?", [newest["id"]]).fetchone()
    assert row[0] and "shadow" not in row[0].lower()
    app.extensions["migrantline"].complaints.erase(newest["reference"])
    row = app.extensions["migrantline"].store.db().execute(
        "select agency_name_key from complaints where id = ?", [newest["id"]]).fetchone()
    assert row[0] is None  # erasing the complaint erases its key too
    assert "<td>3</td>" in page(boss, "/operator/agencies/flags").split('id="unlisted"')[1]


def test_callers_read_a_count_only_from_the_threshold(tmp_path: Path) -> None:
    from ussd_app.engine.messages import AGENCY_REPORTS
    from ussd_app.i18n import default_catalogs

    from ..conftest import make_app
    ngettext = default_catalogs().ngettext
    app = make_app(tmp_path, MIGRANTLINE_AGENCY_REPORTS_PUBLIC_FROM="3")
    counts = app.extensions["migrantline"].ussd.services["agency_search"].reports
    try:
        for n in range(1, 4):
            file_complaint(app, against_kind="agency", against="Golden Gate Recruitment")
            counts._read_at = -1e18  # the five-minute cache, as if it had passed
            text = read(search(app.test_client(), "fr", "NP-DEMO-0003"))
            shown = flat(ngettext("fr", *AGENCY_REPORTS, n).format(count=n))
            assert (shown in text) == (n >= 3), (n, text)
        # an erased complaint no longer counts
        rows = app.extensions["migrantline"].store.db().execute(
            "select reference from complaints").fetchall()
        app.extensions["migrantline"].complaints.erase(str(rows[0][0]))
        counts._read_at = -1e18
        assert "migrants" not in read(search(app.test_client(), "en", "NP-DEMO-0003"))
    finally:
        app.extensions["migrantline"].store.close()


def test_a_flag_reaches_sms_in_the_callers_language(app: Flask, boss: FlaskClient) -> None:
    from ..test_sms import Texter

    raise_flag(boss, licence="NP-DEMO-0001", reason="licence_cancelled",
               source="DoFE Nepal", flagged_on="2026-11-21")
    texter = Texter(app)
    texter.send("")
    texter.send("3")  # Français
    reply = texter.send("agence sunrise himal") or ""
    assert warning("fr", "licence_cancelled", "DoFE Nepal", "2026-11-21") in flat(reply)
    assert "ATTENTION" in reply
