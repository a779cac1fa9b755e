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
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from werkzeug.serving import make_server

from ussd_app.privacy.protect import open_text
from ussd_app.store import operators as operators_db

from .conftest import PASSWORD, file_complaint

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not shutil.which("chromium"),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)")


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """The app under a real threaded HTTP server on a free loopback port, for the browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


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


def safe_hours_key(now: float) -> str:
    """The USSD key of an hours choice that does not hold the present hour in Qatar."""
    hour = datetime.fromtimestamp(now, ZoneInfo("Asia/Qatar")).hour
    for key, (start, end) in (("1", (8, 12)), ("2", (12, 17)), ("3", (17, 21))):
        if not start <= hour < end and not start <= (hour + 1) % 24 < end:
            return key  # not now, nor within the test's minute
    raise AssertionError("unreachable: the three windows cannot all hold one hour")


def test_an_urgent_case_from_filing_to_partner(app: Flask, served: str) -> None:
    """Issue 15's whole path in a browser. An operator's queue is open; a migrant in danger
    files over USSD; the alert strip shows it (and plays its sound) without the page being
    reloaded; the operator opens it from the strip and acknowledges it. The migrant adds
    details, saying SMS is safe only at some hours; the operator's free-text reply is
    previewed and held until then. The migrant's later SMS shows on the case. The case is
    referred to a partner, whose user sees that case and no other."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from ..conftest import Phone
    from ..test_sms import Texter

    store = app.extensions["migrantline"].store
    partner_id = operators_db.add_partner(store, "Pourakhi", "NP", "", time.time())
    app.extensions["dashboard"].accounts.add("staff@pourakhi.example", "partner", PASSWORD,
                                             "Pourakhi staff", partner_id=partner_id)
    other_case = file_complaint(app, description="Another migrant's story")
    number = "+97455123456"

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM,
                                    args=[*ARGS, "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            sign_in_as(page, served, "op@example.org")
            page.wait_for_url("**/operator/")
            strip = page.frame_locator("iframe.alert-strip")
            strip.get_by_text("No urgent case is waiting").wait_for()
            phone = Phone(app.test_client(), number=number)
            phone.dial()
            filed = time.monotonic()
            phone.press("1", "7", "1", "1", "1")  # English, report, agree, in danger now
            strip.locator(".alert-urgent").wait_for()
            seconds = time.monotonic() - filed
            print(f"urgent case shown in the open dashboard {seconds:.1f} s after filing")
            assert strip.locator("audio.alert-sound").count() == 1
            # the cue plays (or has played): polled, since a loaded machine may take a
            # moment to read the sound's length
            frame = page.frame(url=lambda u: u.endswith("/operator/alerts"))
            assert frame is not None
            frame.wait_for_function(
                "() => { const a = document.querySelector('audio.alert-sound');"
                " return a && a.duration > 0 && (!a.paused || a.ended); }")
            assert page.url.endswith("/operator/")  # the page itself was not reloaded
            strip.locator("a.urgent-case").click()
            page.wait_for_url("**/operator/complaints/*")
            case_url = page.url
            assert "Not answered" in page.locator("dd.urgent-call").inner_text() or \
                "Yes" in page.locator("dd.urgent-call").inner_text()
            page.get_by_role("button", name="Acknowledge this urgent case").click()
            assert "Acknowledged" in page.locator(".flash").first.inner_text()
            page.frame_locator("iframe.alert-strip").get_by_text(
                "No urgent case is waiting").wait_for()

            # The migrant goes on: skip the call, in Qatar, add details; SMS safe only at
            # hours that are not now, every day.
            screen = phone.press("3", "1")
            assert "Qatar" in screen and "+974 4000 0000" in screen
            screen = phone.press("1", "1", "1", "2", "Al Noor Cleaning", "3", "Doha",
                                 "Not paid for three months", "2", "1",
                                 safe_hours_key(time.time()), "2", "2", "1")
            assert "Report sent" in screen and "at the times you chose" in screen

            # A free-text reply: previewed, then held until the caller's safe time.
            page.goto(case_url)
            text = "We have your case. An adviser will call you in your safe hours."
            page.fill("#reply-text", text)
            page.locator("#reply").get_by_role("button", name="Preview").click()
            preview = page.locator(".reply-preview").inner_text()
            assert "1 SMS part" in preview and "GSM-7" in preview
            assert "Held until the caller's safe time" in preview and "Asia/Qatar" in preview
            page.get_by_role("button", name="Send this reply").click()
            assert "It is held until the caller's safe time" in page.content()
            timeline = page.locator("#outbox")
            assert text in timeline.inner_text()
            assert timeline.locator(".held").count() >= 1

            # The migrant's later SMS from the same phone reaches the case.
            Texter(app, number).send("They took my phone, use my friend's number")
            page.reload()
            assert "They took my phone, use my friend's number" in \
                page.locator("#outbox").inner_text()

            # Referred to a partner, with the default (minimal) share.
            page.select_option("#partner", str(partner_id))
            page.get_by_role("button", name="Refer", exact=True).click()
            assert "Referred to Pourakhi" in page.content()
            cid = int(case_url.rstrip("/").rsplit("/", 1)[1])

            partner = browser.new_page()
            partner.set_default_timeout(15_000)
            sign_in_as(partner, served, "staff@pourakhi.example")
            partner.goto(served + "/operator/referred/")
            queue = partner.locator("main").inner_text()
            reference = app.extensions["migrantline"].complaints.get(cid)["reference"]
            assert f"{reference[:4]} {reference[4:]}" in queue
            assert other_case["reference"][:4] not in queue
            partner.goto(f"{served}/operator/referred/{cid}")
            shown = partner.locator("main").inner_text()
            assert "Not paid for three months" not in shown and "Al Noor" not in shown
            assert "55123456" not in shown  # no phone number unless shared
            for path in (f"/operator/referred/{other_case['id']}",
                         f"/operator/complaints/{other_case['id']}",
                         f"/operator/complaints/{cid}"):
                assert partner.goto(served + path).status == 404, path
            page.reload()
            assert "Opened by Pourakhi at" in page.content()
        finally:
            browser.close()


def sign_in_as(page: Any, served: str, email: str) -> None:
    page.goto(served + "/operator/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
