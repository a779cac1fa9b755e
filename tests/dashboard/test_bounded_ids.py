"""Pages, ids and filters in dashboard URLs and forms: parsed with bounds, never a 500."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.complaints.service import show_reference

from .conftest import file_complaint, page, post

HUGE = "9" * 30


@pytest.mark.parametrize("query", ["page=²", "page=١", "page=" + HUGE, "page=" + "9" * 5000,
                                   "page=-1", "page=1e400", "older=²", "older=" + "9" * 5000,
                                   "older=" + HUGE])
def test_a_queue_page_or_filter_that_is_no_small_number_shows_the_queue(
        app: Flask, op: FlaskClient, query: str) -> None:
    c = file_complaint(app)
    shown = show_reference(c["reference"])
    assert shown in page(op, f"/operator/?{query}")  # page 1, no filter: the complaint


@pytest.mark.parametrize("query", ["page=²", "page=" + HUGE, "operator=" + HUGE,
                                   "operator=①", "operator=" + "9" * 5000])
def test_an_audit_page_or_operator_that_is_no_small_number_shows_the_log(
        boss: FlaskClient, query: str) -> None:
    page(boss, f"/operator/audit?{query}")


@pytest.mark.parametrize("cid", [HUGE, "9" * 19, "١", "²", "-1", "1e400"])
def test_a_complaint_id_that_cannot_exist_is_a_404(op: FlaskClient, boss: FlaskClient,
                                                   cid: str) -> None:
    assert op.get(f"/operator/complaints/{cid}").status_code == 404
    assert post(op, f"/operator/complaints/{cid}/status", status="closed").status_code == 404
    assert post(op, f"/operator/complaints/{cid}/reveal").status_code == 404
    assert op.get(f"/operator/complaints/1/recordings/{cid}").status_code == 404
    assert post(boss, f"/operator/operators/{cid}/active", active="0").status_code == 404
    assert post(boss, f"/operator/partners/{cid}/active", active="0").status_code == 404


@pytest.mark.parametrize("wanted", ["①", "²", HUGE, "9" * 5000, "-1", "1e400"])
def test_assigning_or_referring_to_an_id_that_cannot_exist_asks_again(
        app: Flask, op: FlaskClient, wanted: str) -> None:
    c = file_complaint(app)
    response = post(op, f"/operator/complaints/{c['id']}/assign", operator_id=wanted)
    assert response.status_code == 303
    assert "Choose an operator" in page(op, f"/operator/complaints/{c['id']}")
    response = post(op, f"/operator/complaints/{c['id']}/refer", partner_id=wanted)
    assert response.status_code == 303
    assert "Choose a partner organisation" in page(op, f"/operator/complaints/{c['id']}")
