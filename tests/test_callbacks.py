"""Missed-call call-backs: each provider at its HTTP boundary, limits, opt-out, leases, privacy."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner
from flask import Flask

from ussd_app import store as db
from ussd_app.channels.voice.callbacks import Callbacks, mask
from ussd_app.cli import main
from ussd_app.providers.africastalking import AtVoice
from ussd_app.providers.twilio import TwilioVoice
from ussd_app.store import callbacks as cdb

from .conftest import TEST_SECRET, make_app
from .test_sms import Texter

SID = "AC" + "1" * 32
TOKEN = "twilio-token"
FROM = "+15005550006"
AT_FROM = "+254711082000"
PHONE = "+9779812345678"
BASE = "https://ml.example.org"


class VoiceStandIn:
    """api.twilio.com's Calls resource and Africa's Talking's voice API, on 127.0.0.1.

    It answers as their documentation shows (Twilio: 201 and the call's JSON
    with its ``sid``; AT: the ``entries`` list), records every request with
    its headers, and can be given answers to send first (``script``: a list
    of (status, body) pairs, or "hang" to answer too late).
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.script: list[Any] = []
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server convention
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                status, data = standin.answer(urlsplit(self.path).path, dict(self.headers),
                                              dict(parse_qsl(body, keep_blank_values=True)))
                raw = json.dumps(data).encode() if not isinstance(data, str) else data.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, path: str, headers: dict[str, str],
               fields: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            self.received.append({"path": path, "headers": headers, "fields": fields})
            scripted = self.script.pop(0) if self.script else None
        if scripted == "hang":
            time.sleep(0.6)
            scripted = None
        if scripted is not None:
            return scripted
        if path.startswith("/2010-04-01/Accounts/") and path.endswith("/Calls.json"):
            return 201, {"sid": "CA" + uuid.uuid4().hex, "account_sid": path.split("/")[3],
                         "to": fields.get("To"), "from": fields.get("From"),
                         "status": "queued", "direction": "outbound-api",
                         "api_version": "2010-04-01",
                         "uri": f"{path[:-5]}/CA0.json"}
        if path == "/call":
            return 201, {"entries": [{"phoneNumber": fields.get("to"), "status": "Queued",
                                      "sessionId": "ATVId_" + uuid.uuid4().hex}],
                         "errorMessage": "None"}
        return 404, {"message": "not found"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def standin() -> Iterator[VoiceStandIn]:
    server = VoiceStandIn()
    yield server
    server.close()


# Call-backs to Nepal (the default is the country of FROM / AT_FROM: +1 / +254).
CONFIG = {"MIGRANTLINE_CALLBACK_PER_DAY": "3", "MIGRANTLINE_CALLBACK_MIN_MINUTES": "10",
          "MIGRANTLINE_CALLBACK_MAX_ATTEMPTS": "3", "MIGRANTLINE_CALLBACK_COUNTRIES": "977"}


def twilio(url: str) -> TwilioVoice:
    return TwilioVoice(SID, TOKEN, FROM, BASE + "/voice/twilio", base_url=url)


def at(url: str) -> AtVoice:
    return AtVoice("migrantline", "at-key", AT_FROM, base_url=url)


def callbacks_for(app: Flask, provider: Any, **config: str) -> Callbacks:
    services = app.extensions["migrantline"]
    return Callbacks(services.store, services.ussd.sealer, services.ussd.hasher,
                     {**CONFIG, **config}, provider=provider, background=False, backoff=10)


def rows(app: Flask) -> list[dict[str, Any]]:
    return list(reversed(cdb.callbacks(app.extensions["migrantline"].store)))


def test_twilio_gets_the_calls_request_its_docs_show(app: Flask, standin: VoiceStandIn) -> None:
    callbacks = callbacks_for(app, twilio(standin.url))
    assert callbacks.request(PHONE, "twilio", "CAmissed1")
    assert callbacks.place_due() == 1
    [sent] = standin.received
    assert sent["path"] == f"/2010-04-01/Accounts/{SID}/Calls.json"
    assert sent["fields"] == {"To": PHONE, "From": FROM, "Url": BASE + "/voice/twilio",
                              "Method": "POST"}
    auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert sent["headers"]["Authorization"] == f"Basic {auth}"
    [row] = rows(app)
    assert row["status"] == "placed" and row["placed_via"] == "twilio"
    assert row["provider_call_id"].startswith("CA") and row["attempts"] == 1
    assert callbacks.place_due() == 0 and len(standin.received) == 1  # nothing twice


def test_africas_talking_gets_the_voice_call_request(app: Flask, standin: VoiceStandIn) -> None:
    callbacks = callbacks_for(app, at(standin.url))
    assert callbacks.request("00977 981-234 5678", "africastalking", "ATVId_missed")
    assert callbacks.place_due() == 1
    [sent] = standin.received
    assert sent["path"] == "/call"
    assert sent["fields"] == {"username": "migrantline", "from": AT_FROM, "to": PHONE}
    assert sent["headers"]["apiKey"] == "at-key"
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    [row] = rows(app)
    assert row["status"] == "placed" and row["provider_call_id"].startswith("ATVId_")


def test_the_same_missed_call_twice_is_one_call_back(app: Flask, standin: VoiceStandIn) -> None:
    callbacks = callbacks_for(app, twilio(standin.url))
    assert callbacks.request(PHONE, "twilio", "CAsame")
    assert callbacks.request(PHONE, "twilio", "CAsame")  # the webhook retried: same answer
    assert callbacks.place_due() == 1
    assert callbacks.request(PHONE, "twilio", "CAsame")
    assert callbacks.place_due() == 0
    assert len(standin.received) == 1 and len(rows(app)) == 1


def test_a_worker_killed_after_the_provider_took_the_call_does_not_call_twice(
        app: Flask, standin: VoiceStandIn) -> None:
    store = app.extensions["migrantline"].store
    callbacks = callbacks_for(app, twilio(standin.url))
    callbacks.request(PHONE, "twilio", "CAkilled")
    now = time.time()
    [claimed] = cdb.claim_callbacks(store, now, lease=120, limit=10)
    call_id = twilio(standin.url).call(PHONE)  # the provider took it...
    assert cdb.record_call_id(store, claimed["id"], claimed["attempts"], "twilio", call_id, now)
    # ... and the worker was killed before it finished.
    assert callbacks.place_due(now=now + 10) == 0  # leased: nobody touches it
    assert callbacks.place_due(now=now + 121) == 1  # lease over: found placed, not re-called
    assert len(standin.received) == 1
    [row] = rows(app)
    assert row["status"] == "placed" and row["provider_call_id"] == call_id
    assert not cdb.finish_callback(store, claimed["id"], claimed["attempts"], "failed", now)


def test_a_worker_killed_before_the_provider_answered_is_retried_after_its_lease(
        app: Flask, standin: VoiceStandIn) -> None:
    store = app.extensions["migrantline"].store
    callbacks = callbacks_for(app, at(standin.url))
    callbacks.request(PHONE, "africastalking", "ATVId_k2")
    now = time.time()
    assert cdb.claim_callbacks(store, now, lease=120, limit=10)  # then killed
    assert callbacks.place_due(now=now + 60) == 0 and not standin.received
    assert callbacks.place_due(now=now + 121) == 1
    [row] = rows(app)
    assert row["status"] == "placed" and row["attempts"] == 2 and len(standin.received) == 1


@pytest.mark.parametrize("first", [(500, {"code": 20500, "message": "Internal", "status": 500}),
                                   (429, {"code": 20429, "message": "Too Many", "status": 429}),
                                   "hang"])
def test_a_temporary_error_is_retried_with_backoff(app: Flask, standin: VoiceStandIn,
                                                   monkeypatch, first: Any) -> None:
    import ussd_app.providers.transport as module

    monkeypatch.setattr(module, "TIMEOUT", (0.5, 0.2))
    callbacks = callbacks_for(app, twilio(standin.url) if first != "hang" else at(standin.url))
    callbacks.request(PHONE, "twilio", "CAretry")
    standin.script = [first]
    assert callbacks.place_due() == 0
    [row] = rows(app)
    assert row["status"] == "queued" and row["attempts"] == 1 and row["error"]
    assert row["next_attempt_at"] > time.time() + 5  # backed off, not hammered
    assert callbacks.place_due() == 0 and len(standin.received) == 1
    assert callbacks.place_due(now=time.time() + 15) == 1  # then 201
    [row] = rows(app)
    assert row["status"] == "placed" and row["attempts"] == 2 and len(standin.received) == 2


def test_a_provider_down_for_good_makes_the_call_back_dead(app: Flask,
                                                           standin: VoiceStandIn) -> None:
    callbacks = callbacks_for(app, at(standin.url))
    callbacks.request(PHONE, "africastalking", "ATVId_down")
    standin.script = [(503, "Service Unavailable")] * 5
    now = time.time()
    for step in (0, 15, 40):  # backoff 10 s, then 20 s (with jitter)
        assert callbacks.place_due(now=now + step) == 0
    [row] = rows(app)
    assert row["status"] == "dead" and row["attempts"] == 3 and "503" in row["error"]
    assert callbacks.place_due(now=now + 3600) == 0 and len(standin.received) == 3


@pytest.mark.parametrize("name,answer", [
    ("twilio", (400, {"code": 21211, "message": "The 'To' number is not a valid phone number.",
                      "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})),
    ("africastalking", (400, "Invalid callTo")),
    ("africastalking", (201, {"entries": [{"phoneNumber": PHONE,
                                           "status": "InvalidPhoneNumber"}],
                              "errorMessage": "None"})),
])
def test_a_permanent_error_fails_at_once(app: Flask, standin: VoiceStandIn, name: str,
                                         answer: Any) -> None:
    callbacks = callbacks_for(app, twilio(standin.url) if name == "twilio" else at(standin.url))
    callbacks.request(PHONE, name, "K400")
    standin.script = [answer]
    assert callbacks.place_due() == 0
    [row] = rows(app)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert callbacks.place_due(now=time.time() + 3600) == 0 and len(standin.received) == 1


def test_bad_input_is_refused_quietly(app: Flask, standin: VoiceStandIn) -> None:
    callbacks = callbacks_for(app, at(standin.url))
    assert callbacks.request("+12345", "africastalking", "short") is False  # too short to call
    assert callbacks.request("", "africastalking", "empty") is False
    assert callbacks.request(PHONE, "africastalking", "") is False  # no key: no idempotency
    assert rows(app) == [] and callbacks.place_due() == 0


def test_the_rate_limit_refuses_visibly_and_never_tells_the_provider(
        app: Flask, standin: VoiceStandIn) -> None:
    callbacks = callbacks_for(app, twilio(standin.url))
    now = time.time() - 3600
    assert callbacks.request(PHONE, "twilio", "k1", now=now)
    assert not callbacks.request(PHONE, "twilio", "k2", now=now + 300)  # within 10 min
    assert callbacks.request(PHONE, "twilio", "k3", now=now + 700)
    assert callbacks.request("+9779800000002", "twilio", "other", now=now + 701)  # per number
    assert callbacks.request(PHONE, "twilio", "k4", now=now + 1400)
    assert not callbacks.request(PHONE, "twilio", "k5", now=now + 2100)  # 3 a day
    statuses = {r["key"]: (r["status"], r["error"]) for r in rows(app)}
    assert statuses["k2"][0] == "refused" and "10 min" in statuses["k2"][1]
    assert statuses["k5"][0] == "refused" and "3 call-backs a day" in statuses["k5"][1]
    assert callbacks.place_due() == 4
    placed = [r["fields"]["To"] for r in standin.received]
    assert sorted(placed) == sorted([PHONE, PHONE, PHONE, "+9779800000002"])
    assert callbacks.request(PHONE, "twilio", "k6", now=now + 24 * 3600 + 1)  # a day later


def test_a_number_that_sent_stop_is_not_called(app: Flask, standin: VoiceStandIn) -> None:
    texter = Texter(app)
    callbacks = callbacks_for(app, twilio(standin.url))
    assert callbacks.request(texter.number, "twilio", "before")  # queued, not placed yet
    texter.send("stop")
    assert not callbacks.request(texter.number, "twilio", "after")
    assert callbacks.place_due() == 0 and not standin.received
    assert {r["key"]: r["status"] for r in rows(app)} == {"before": "refused",
                                                           "after": "refused"}
    assert all(r["error"] == "the number sent STOP" for r in rows(app))


def test_none_stores_call_backs_and_places_none(app: Flask) -> None:
    callbacks = callbacks_for(app, None)
    assert callbacks.request(PHONE, "twilio", "stored")
    assert callbacks.place_due() == 0
    assert [r["status"] for r in rows(app)] == ["queued"]


def test_a_call_back_too_old_to_be_useful_is_dead(app: Flask, standin: VoiceStandIn) -> None:
    callbacks = callbacks_for(app, twilio(standin.url))
    callbacks.request(PHONE, "twilio", "old", now=time.time() - 3 * 3600)
    assert callbacks.place_due() == 0 and not standin.received
    assert rows(app)[0]["status"] == "dead"


def test_the_number_is_never_in_clear_in_the_database_or_the_logs(
        tmp_path: Path, standin: VoiceStandIn, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app(tmp_path, MIGRANTLINE_VOICE_PROVIDER="africastalking", AT_USERNAME="ml",
                   AT_API_KEY="k", AT_VOICE_NUMBER=AT_FROM, AT_VOICE_API_URL=standin.url,
                   MIGRANTLINE_CALLBACK_COUNTRIES="977")
    services = app.extensions["migrantline"]
    try:
        assert services.callbacks.request(PHONE, "africastalking", "ATVId_bg")
        deadline = time.time() + 5  # the request's background job places it
        while not standin.received and time.time() < deadline:
            time.sleep(0.02)
        assert [r["fields"]["to"] for r in standin.received] == [PHONE]
        standin.script = [(400, "Invalid")]
        services.callbacks.request("+9779800000077", "africastalking", "ATVId_bad")
        services.callbacks.place_due()
        deadline = time.time() + 5
        while rows(app)[-1]["status"] not in ("failed", "placed") and time.time() < deadline:
            time.sleep(0.02)
        assert [r["status"] for r in rows(app)] == ["placed", "failed"]
    finally:
        services.callbacks.stop()
        services.store.close()
    data = b"".join(p.read_bytes() for p in (tmp_path / "var").glob("migrantline.db*"))
    for number in (PHONE, "+9779800000077"):
        digits = number.lstrip("+")
        assert digits.encode() not in data and digits[-8:].encode() not in data
        assert digits[-8:] not in caplog.text
    assert "call-back" in caplog.text  # it did log, without the numbers


def test_the_cli_places_and_lists_with_masked_numbers(tmp_path: Path, standin: VoiceStandIn,
                                                      monkeypatch) -> None:
    env = {"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"), "MIGRANTLINE_SECRET_KEY": TEST_SECRET,
           "MIGRANTLINE_VOICE_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": SID,
           "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": FROM,
           "MIGRANTLINE_BASE_URL": BASE, "TWILIO_API_URL": standin.url,
           "MIGRANTLINE_CALLBACK_COUNTRIES": "977"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from ussd_app import settings
    from ussd_app.channels.voice.callbacks import make_callbacks

    store = db.open_store(tmp_path / "var")
    config = settings.load()
    make_callbacks(config, store, TEST_SECRET.encode(), background=False).request(
        PHONE, "twilio", "cli1")
    runner = CliRunner()
    result = runner.invoke(main, ["callbacks", "list"])
    assert result.exit_code == 0 and "queued" in result.output
    result = runner.invoke(main, ["callbacks", "place"])
    assert result.exit_code == 0 and "1 placed" in result.output, result.output
    assert standin.received[0]["fields"]["Url"] == BASE + "/voice/twilio"
    result = runner.invoke(main, ["callbacks", "list", "--status", "placed"])
    assert result.exit_code == 0 and mask(PHONE) in result.output and "twilio" in result.output
    assert "12345678" not in result.output
    monkeypatch.setenv("MIGRANTLINE_VOICE_PROVIDER", "none")
    assert "stored, not placed" in runner.invoke(main, ["callbacks", "place"]).output
    monkeypatch.setenv("MIGRANTLINE_VOICE_PROVIDER", "africastalking")
    result = runner.invoke(main, ["callbacks", "place"])
    assert result.exit_code == 1 and "AT_VOICE_NUMBER" in result.output


def test_mask_shows_only_the_country_and_last_digits() -> None:
    assert mask(PHONE) == "+977 98******78"
    assert mask("123") == "+***"


def test_a_flood_of_missed_calls_calls_each_number_once(app: Flask,
                                                        standin: VoiceStandIn) -> None:
    services = app.extensions["migrantline"]
    callbacks = Callbacks(services.store, services.ussd.sealer, services.ussd.hasher, CONFIG,
                          provider=twilio(standin.url), background=True)
    numbers = [f"+97798000{n:05d}" for n in range(30)]
    # each number rings three times at once (different missed calls): one call-back each
    threads = [threading.Thread(target=callbacks.request, args=(number, "twilio", f"{number}-{i}"))
               for number in numbers for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.time() + 10
    while len(standin.received) < len(numbers) and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    called = [r["fields"]["To"] for r in standin.received]
    assert sorted(called) == numbers  # every number once, none twice
    statuses = [r["status"] for r in rows(app)]
    assert statuses.count("placed") == 30 and statuses.count("refused") == 60


def test_finished_call_backs_are_forgotten_after_a_month(app: Flask,
                                                         standin: VoiceStandIn) -> None:
    callbacks = callbacks_for(app, twilio(standin.url))
    callbacks.request(PHONE, "twilio", "month", now=time.time() - 31 * 24 * 3600)  # -> dead
    callbacks.request(PHONE, "twilio", "today")
    callbacks.place_due()
    assert {r["key"]: r["status"] for r in rows(app)} == {"month": "dead", "today": "placed"}
    assert callbacks.purge() == 1
    assert [r["key"] for r in rows(app)] == ["today"]
    assert callbacks.purge(now=time.time() + 31 * 24 * 3600) == 1 and rows(app) == []


def test_four_placers_at_once_call_each_queued_number_once(app: Flask,
                                                           standin: VoiceStandIn) -> None:
    """Concurrent workers (nodes, processes) claim disjoint call-backs: nobody rings twice."""
    services = app.extensions["migrantline"]
    numbers = [f"+97798100{n:05d}" for n in range(200)]
    for number in numbers:
        _, added = cdb.request_callback(
            services.store, f"many-{number}", services.ussd.sealer.seal(number),
            services.ussd.hasher.key(number), "twilio", time.time() - 1, 10, 0,
            opted_out=False, global_per_day=10**6)
        assert added
    placers = [callbacks_for(app, twilio(standin.url)) for _ in range(4)]
    for placer in placers:
        placer.batch = 5  # small batches: the claimers interleave
    barrier = threading.Barrier(len(placers))
    placed: list[int] = []

    def run(placer: Callbacks) -> None:
        barrier.wait()
        placed.append(placer.place_due())

    threads = [threading.Thread(target=run, args=(p,)) for p in placers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    called = sorted(r["fields"]["To"] for r in standin.received)
    assert called == numbers  # every number once, none twice
    assert sum(placed) == 200 and [r["status"] for r in rows(app)] == ["placed"] * 200
