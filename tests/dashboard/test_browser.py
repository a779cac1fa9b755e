"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright).

An operator signs in, filters the queue for urgent complaints, opens one,
assigns it to herself, changes its status and sees the SMS it queued. The
app runs under a real HTTP server (werkzeug, in a thread) on a free
loopback port, so cookies, redirects, CSRF and the CSP are the browser's.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from ussd_app.privacy.protect import open_text

from .conftest import PASSWORD, file_complaint

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not shutil.which("chromium"),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)")


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_sign_in_triage_and_see_the_sms(app: Flask, served: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    now = time.time()
    file_complaint(app, at=now - 7200, category="fees")
    urgent = file_complaint(app, at=now - 600, urgent=True, contact="any", lang="fr")
    shown = f"{urgent['reference'][:4]} {urgent['reference'][4:]}"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM,
                                    args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.goto(served + "/operator/")
            page.fill("#email", "op@example.org")
            page.fill("#password", PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/operator/")
            assert page.locator("table.queue tbody tr").count() == 2

            page.select_option("select[name=urgent]", "yes")
            page.get_by_role("button", name="Filter").click()
            page.wait_for_url("**urgent=yes**")
            rows = page.locator("table.queue tbody tr")
            assert rows.count() == 1 and "Urgent" in rows.first.inner_text()
            page.get_by_role("link", name=shown).click()
            page.wait_for_url(f"**/operator/complaints/{urgent['id']}")

            page.get_by_role("button", name="Assign", exact=True).click()
            assert "Assigned to Asha" in page.locator(".flash").inner_text()
            page.select_option("#new-status", "in_progress")
            page.get_by_role("button", name="Change status").click()
            assert "An SMS to the migrant was queued" in page.locator(".flash").inner_text()
            sms = page.locator("#outbox tbody tr").last.inner_text()
            assert shown in sms and "Queued" in sms
            page.screenshot(path=str(Path(app.config["MIGRANTLINE_DATA_DIR"]) / "detail.png"),
                            full_page=True)
        finally:
            browser.close()
    row = app.extensions["migrantline"].complaints.get(urgent["id"])
    assert row["status"] == "in_progress" and row["assigned_to"] is not None
    [queued] = [m for m in app.extensions["migrantline"].store.outbox()
                if m["key"].startswith(f"complaint-status:{urgent['id']}:")]
    body = open_text(app.extensions["migrantline"].complaints.phone_sealer, queued["body"])
    assert queued["lang"] == "fr" and queued["status"] == "queued" and shown in body


def test_an_urgent_case_filed_by_ussd_appears_in_an_open_dashboard_and_is_acknowledged(
        app: Flask, served: str) -> None:
    """The issue's path: an operator's queue is open; a migrant in danger files over USSD;
    the alert strip shows it (and plays its sound) without the page being reloaded; the
    operator opens it from the strip, acknowledges it, and the strip goes quiet."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from ..conftest import Phone

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM,
                                    args=[*ARGS, "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(served + "/operator/")
            page.fill("#email", "op@example.org")
            page.fill("#password", PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/operator/")
            strip = page.frame_locator("iframe.alert-strip")
            strip.get_by_text("No urgent case is waiting").wait_for()
            phone = Phone(app.test_client(), number="+97455123456")
            phone.dial()
            filed = time.monotonic()
            phone.press("1", "7", "1", "1", "1")  # English, report, agree, in danger now
            strip.locator(".alert-urgent").wait_for()
            seconds = time.monotonic() - filed
            print(f"urgent case shown in the open dashboard {seconds:.1f} s after filing")
            assert strip.locator("audio.alert-sound").count() == 1
            playing = page.frame(url=lambda u: u.endswith("/operator/alerts")).evaluate(
                "() => { const a = document.querySelector('audio.alert-sound');"
                " return a && a.duration > 0 && (!a.paused || a.ended); }")
            assert playing
            assert page.url.endswith("/operator/")  # the page itself was not reloaded
            strip.locator("a.urgent-case").click()
            page.wait_for_url("**/operator/complaints/*")
            assert "Not answered" in page.locator("dd.urgent-call").inner_text() or \
                "Yes" in page.locator("dd.urgent-call").inner_text()
            page.get_by_role("button", name="Acknowledge this urgent case").click()
            assert "Acknowledged" in page.locator(".flash").first.inner_text()
            page.frame_locator("iframe.alert-strip").get_by_text(
                "No urgent case is waiting").wait_for()
        finally:
            browser.close()
