"""The Arabic dashboard draws references, phone numbers, licences and dates left to right.

The pages are laid out the way a browser does (``tests/bidi_check.py``: ``dir="ltr"``
elements are isolates, blocks are paragraphs, the page is right to left) and every
number must read in the order it was written.
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from ..bidi_check import html_lines, misdrawn, numbers_in
from .conftest import file_complaint, page, post


def drawn_wrong(html: str) -> list[tuple[str, list[str]]]:
    return [(line, misdrawn(line)) for line in html_lines(html) if misdrawn(line)]


def test_arabic_dashboard_numbers_read_left_to_right(app: Flask, op: FlaskClient,
                                                     boss: FlaskClient) -> None:
    cases = [file_complaint(app, lang="ar", urgent=True),
             file_complaint(app, lang="ar", against_kind="agency", against="np demo 0002"),
             file_complaint(app, phone="+97455501234", lang="ar", contact="other",
                            contact_phone="+974 5550 9999")]
    post(op, "/operator/language", lang="ar")
    post(boss, "/operator/language", lang="ar")
    queue = page(op, "/operator/")
    assert 'dir="rtl"' in queue
    pages = [queue, page(boss, "/operator/audit"), page(op, "/operator/alerts")]
    pages += [page(op, f"/operator/complaints/{c['id']}") for c in cases]
    checked = [line for html in pages for line in html_lines(html) if numbers_in(line)]
    assert len(checked) >= 6  # references, dates, licence, phones
    wrong = [w for html in pages for w in drawn_wrong(html)]
    assert not wrong, "\n".join(map(repr, wrong))
    # The reference in the queue is isolated: without it, it would read backwards.
    reference = str(cases[0]["reference"])
    shown = f"{reference[:4]} {reference[4:]}"
    assert f'<bdi dir="ltr">{shown}</bdi>' in queue
    assert misdrawn(f"قائمة {shown} الانتظار") == [shown]
