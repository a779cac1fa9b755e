"""The agency flag and import pages in a real headless browser (Debian's chromium, driven
by Playwright), as a supervisor uses them: raise a flag and see it on the phone; upload an
official list, read the difference, apply it; a bad list changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from ..conftest import DEMO_CONTENT, make_app
from ..test_agencies import read, search
from .conftest import add_operator, cheap_hashes
from .test_browser import ARGS, CHROMIUM, serving, sign_in_as

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not shutil.which("chromium"),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)")

MAPPING = """columns: {licence: Licence No, name: Agency, status: Status, expires: Valid Until}
statuses: {Active: licensed, Cancelled: revoked}
date_format: "%d/%m/%Y"
country: NP
"""


@pytest.fixture
def own_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on a copy of the demo content: the import page writes its registry."""
    content = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, content)
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(content))
    cheap_hashes(app)
    add_operator(app, "boss@example.org", "supervisor")
    yield app
    app.extensions["migrantline"].store.close()


@pytest.fixture
def served(own_app: Flask) -> Iterator[str]:
    with serving(own_app) as url:
        yield url


def test_flag_an_agency_and_import_a_list(own_app: Flask, served: str,
                                          tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    content = tmp_path / "content"
    good = tmp_path / "dofe.csv"
    good.write_text("Licence No,Agency,Status,Valid Until\n"
                    "NP-DEMO-0003,Golden Gate Recruitment (sample),Cancelled,30/09/2027\n"
                    "NP-B-77,Browser Test Manpower,Active,01/01/2029\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("Licence No,Agency,Status,Valid Until\n"
                   "NP-B-1,One,Active,01/01/2029\nnp b 1,Two,Active,01/01/2029\n",
                   encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM,
                                    args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            sign_in_as(page, served, "boss@example.org")
            page.wait_for_url("**/operator/")

            # Flag an agency that is in the registry.
            page.get_by_role("link", name="Agency flags").click()
            page.wait_for_url("**/operator/agencies/flags")
            assert "No agency is flagged." in page.locator("#flags").inner_text()
            page.fill("#f-licence", "NP-DEMO-0001")
            page.select_option("#f-reason", "investigation")
            page.fill("#f-source", "DoFE Nepal")
            page.fill("#f-date", "2026-11-20")
            page.get_by_role("button", name="Raise the flag").click()
            assert "Flag raised" in page.locator(".flash").inner_text()
            row = page.locator("#flags tbody tr").first.inner_text()
            assert "Sunrise Himal Manpower (sample)" in row and "DoFE Nepal" in row
            assert "Under investigation by the authorities." in row

            # A bad list: the errors, no apply button, the registry unchanged.
            before = (content / "agencies.csv").read_bytes()
            page.get_by_role("link", name="Import agencies").click()
            page.wait_for_url("**/operator/agencies/import")
            page.set_input_files("#i-list", str(bad))
            page.fill("#i-source", "DoFE Nepal")
            page.fill("#i-date", "2026-12-01")
            page.fill("#i-mapping", MAPPING)
            page.get_by_role("button", name="Compare").click()
            problems = page.locator("#problems").inner_text()
            assert "bad.csv:3: error: licence 'np b 1' is also on line 2" in problems
            assert page.get_by_role("button", name="Apply these changes").count() == 0
            assert (content / "agencies.csv").read_bytes() == before

            # A good list: the difference first, then applied.
            page.set_input_files("#i-list", str(good))
            page.fill("#i-source", "Demo registry NP (sample)")
            page.fill("#i-date", "2026-12-01")
            page.fill("#i-mapping", MAPPING)
            page.get_by_role("button", name="Compare").click()
            diff = page.locator("#diff").inner_text()
            assert "new: 1\n  NP-B-77  Browser Test Manpower" in diff
            assert "revoked: 1\n  NP-DEMO-0003" in diff
            assert (content / "agencies.csv").read_bytes() == before  # not yet
            page.get_by_role("button", name="Apply these changes").click()
            assert "Imported." in page.locator(".flash").inner_text()
        finally:
            browser.close()
    registry = (content / "agencies.csv").read_text(encoding="utf-8")
    assert "NP-B-77,Browser Test Manpower,,NP,licensed,2029-01-01" in registry
    assert ",NP,revoked,2027-09-30,Demo registry NP (sample),2026-12-01" in registry
    # The flag reaches the phone.
    text = read(search(own_app.test_client(), "fr", "NP-DEMO-0001"))
    assert "Fait l'objet d'une enquête des autorités." in text
