"""Both centres' dashboards in a real headless browser (#17): the origin's supervisor
imports the partner's card on **Centres abroad** and refers a consenting case from its
page; the destination's supervisor finds it in the queue as "Referred from ...", moves
it on, and the origin's page shows the news. Deliveries are the job's own ``deliver``,
run between the steps (the two apps reach each other's inbox as in ``test_centres``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_centres import Centre, centre, filed, wire

from .conftest import PASSWORD
from .test_browser import ARGS, CHROMIUM, serving

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not shutil.which("chromium"),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)")


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Centre, Centre]]:
    origin = centre(tmp_path, "Kathmandu MRC", "NP", "http://127.0.0.1:1")
    dest = centre(tmp_path, "Doha MRC", "QA", "http://127.0.0.1:2")
    dest.centres.import_card(origin.centres.card_bytes(), "test")
    wire(origin, dest)
    wire(dest, origin)
    yield origin, dest
    for c in (origin, dest):
        c.store.close()
        if c.db_url:
            from tests import databases  # lazy: only on PostgreSQL

            databases.drop(c.db_url)


def test_pair_refer_and_hear_back_in_both_dashboards(two: tuple[Centre, Centre],
                                                     tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    origin, dest = two
    cid = filed(origin, share="yes")
    card = tmp_path / "doha.json"
    card.write_bytes(dest.centres.card_bytes())
    with serving(origin.app) as kh, serving(dest.app) as qa, \
            sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM,
                                    args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            sign_in(page, kh, "op@np.example")
            page.goto(kh + "/operator/centres")
            page.set_input_files("input[name=card]", str(card))
            page.get_by_role("button", name="Import", exact=True).click()
            flash = page.locator(".flash").first.inner_text()
            assert "Partner centre added: Doha MRC" in flash
            assert dest.centres.fingerprint() in flash
            page.goto(f"{kh}/operator/complaints/{cid}")
            page.select_option("#centre", label="Doha MRC (Qatar)")
            page.get_by_role("button", name="Refer abroad").click()
            assert "Referred to Doha MRC" in page.locator(".flash").first.inner_text()
            assert "Waiting to be sent" in page.locator("section.centres").inner_text()
            origin.centres.deliver()

            other = browser.new_page()
            other.set_default_timeout(10_000)
            sign_in(other, qa, "op@qa.example")
            other.locator("table.queue tbody tr", has_text="Referred from Kathmandu MRC") \
                .get_by_role("link").first.click()
            other.wait_for_url("**/operator/complaints/*")
            other.select_option("#new-status", "in_progress")
            other.get_by_role("button", name="Change status").click()
            assert "The referring centre will be told." in \
                other.locator(".flash").first.inner_text()
            dest.centres.deliver()

            page.reload()
            news = page.locator("p.centre-news").inner_text()
            assert "From Doha MRC" in news and "In progress" in news
        finally:
            browser.close()


def sign_in(page: object, served: str, email: str) -> None:
    page.goto(served + "/operator/")  # type: ignore[attr-defined]
    page.fill("#email", email)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.wait_for_url("**/operator/")  # type: ignore[attr-defined]
