"""Webhooks authenticated by default, attacked as a stranger on the internet would.

Every app here is built WITHOUT the tests' usual opt-out (conftest sets
MIGRANTLINE_INSECURE_OPEN_WEBHOOKS=on): what it does is what a real deployment
does. Forged, unsigned and tokenless requests get 403 and change nothing: no
session, no SMS, no outbox row, no call, no call-back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from ussd_app.channels.voice.callbacks import Callbacks
from ussd_app.engine.loader import read_tree
from ussd_app.providers.twilio import TwilioVoice
from ussd_app.store import callbacks as cdb

from .conftest import DEMO_CONTENT, ROOT, Phone, make_app
from .test_cli import BIN, env_for, free_port
from .voice_phone import VoiceCaller

TOKEN = "s3cret-webhook-token"
TWILIO = "twilio-auth-token"
LANG_KEYS = {lang.code: str(i + 1) for i, lang in enumerate(read_tree(DEMO_CONTENT).languages)}
USSD_HOP = {"sessionId": "ATUid_x", "serviceCode": "*384*1234#",
            "phoneNumber": "+9779800000001", "networkCode": "99999", "text": ""}
TABLES = ("ussd_sessions", "sms_inbound", "sms_conversations", "outbox", "voice_calls",
          "callbacks", "complaints")


def secure_app(tmp_path: Path, **overrides: Any) -> Flask:
    """An app as deployed: no opt-out, only what the test configures."""
    return make_app(tmp_path, MIGRANTLINE_INSECURE_OPEN_WEBHOOKS="off", **overrides)


def counts(app: Flask) -> dict[str, int]:
    store = app.extensions["migrantline"].store
    store.flush()
    return {t: store.db().execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}


def callbacks(app: Flask) -> list[dict[str, Any]]:
    return list(reversed(cdb.callbacks(app.extensions["migrantline"].store)))


# Every provider webhook, as (method, path, form) an attacker would send.
ATTACKS = [
    ("POST", "/ussd/africastalking", USSD_HOP),
    ("POST", "/sms/africastalking", {"from": "+9779800000001", "text": "help", "id": "ATX1"}),
    ("POST", "/sms/africastalking/delivery", {"id": "ATX1", "status": "Success"}),
    ("POST", "/sms/twilio", {"From": "+9779800000001", "Body": "help", "MessageSid": "SM1"}),
    ("POST", "/sms/twilio/status", {"MessageSid": "SM1", "MessageStatus": "delivered"}),
    ("POST", "/sms/kannel", {"from": "+9779800000001", "text": "help", "id": "K1"}),
    ("GET", "/sms/kannel?from=%2B9779800000001&text=help&id=K2", None),
    ("GET", "/sms/kannel/delivery?id=K1&type=1", None),
    ("POST", "/voice/twilio", {"CallSid": "CA1", "From": "+9779800000001",
                               "Direction": "inbound", "CallStatus": "ringing"}),
    ("POST", "/voice/twilio/status", {"CallSid": "CA2", "From": "+9779800000001",
                                      "Direction": "inbound", "CallStatus": "completed",
                                      "CallDuration": "3"}),
    ("POST", "/voice/africastalking", {"sessionId": "ATV1", "callerNumber": "+9779800000001",
                                       "isActive": "1", "direction": "inbound"}),
]


def attack(app: Flask, method: str, path: str, form: dict[str, str] | None,
           query: str = "", remote: str = "127.0.0.1", **headers: str) -> Any:
    sep = "&" if "?" in path else "?"
    url = path + (sep + query if query else "")
    return app.test_client().open(url, method=method, data=form,
                                  environ_base={"REMOTE_ADDR": remote}, headers=headers)


# ------------------------------------------------------------ nothing configured


def test_with_no_authentication_every_webhook_refuses_and_says_what_to_set(
        tmp_path: Path) -> None:
    app = secure_app(tmp_path)
    before = counts(app)
    for method, path, form in ATTACKS:
        response = attack(app, method, path, form)
        assert response.status_code == 403, path
        assert response.mimetype == "text/plain"
        assert "MIGRANTLINE_WEBHOOK_TOKEN" in response.get_data(as_text=True), path
    assert counts(app) == before
    health = app.test_client().get("/healthz").get_json()
    assert set(health["webhooks"]) == {"ussd_africastalking", "sms_africastalking",
                                       "voice_africastalking", "sms_twilio", "voice_twilio",
                                       "sms_kannel"}
    assert all(mode.startswith("refused") for mode in health["webhooks"].values())
    assert health["insecure"] is False and health["demo"] is False


# ------------------------------------------------------------ the shared token


@pytest.mark.parametrize("query", ["", "token=", "token=wrong", "token=" + TOKEN[:-1],
                                   "token=" + TOKEN + "x", "TOKEN=" + TOKEN])
def test_a_wrong_or_missing_token_is_refused_everywhere_and_nothing_is_applied(
        tmp_path: Path, query: str) -> None:
    app = secure_app(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN)
    before = counts(app)
    for method, path, form in ATTACKS:
        response = attack(app, method, path, form, query)
        assert response.status_code == 403, (path, query)
        assert "token" in response.get_data(as_text=True)
    assert counts(app) == before


def test_the_right_token_is_let_through(tmp_path: Path) -> None:
    app = secure_app(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN)
    for method, path, form in ATTACKS:
        response = attack(app, method, path, form, "token=" + TOKEN)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
    after = counts(app)
    assert after["ussd_sessions"] >= 1 and after["sms_inbound"] >= 1 and after["outbox"] >= 1


def test_a_forger_cannot_read_the_victims_unfinished_session(tmp_path: Path) -> None:
    """"Continue where you stopped?" is offered to the phone number a hop names: only the
    provider, holding the token, may name one."""
    app = secure_app(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN)
    client = app.test_client()
    victim = Phone(client, query="?token=" + TOKEN)
    victim.dial()
    victim.press(LANG_KEYS["en"], "2")
    article = victim.press("3")  # the network drops here
    before = counts(app)
    for query in ("", "?token=guess", "?token="):
        forged = client.post("/ussd/africastalking" + query, data={
            **USSD_HOP, "sessionId": "ATUid_forger", "phoneNumber": victim.number})
        assert forged.status_code == 403
        body = forged.get_data(as_text=True)
        assert "Continue" not in body and "CON" not in body and article[4:] not in body
    assert counts(app) == before  # the forger's hops left nothing behind
    assert "Continue where you stopped?" in victim.dial()  # the offer is still the victim's
    assert victim.press("1") == article


# ------------------------------------------------------------ Twilio


def test_twilio_with_only_the_shared_token_needs_the_token(tmp_path: Path) -> None:
    app = secure_app(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN)
    client = app.test_client()
    sms = {"From": "+9779800000021", "To": "+15005550006", "Body": "menu", "MessageSid": "SM9"}
    assert client.post("/sms/twilio", data=sms).status_code == 403
    assert counts(app)["sms_inbound"] == 0
    assert client.post(f"/sms/twilio?token={TOKEN}", data=sms).status_code == 200
    assert counts(app)["sms_inbound"] == 1
    unsigned = VoiceCaller(client)
    unsigned.post("/voice/twilio", unsigned.fields(), expect=403)
    caller = VoiceCaller(client, token=TOKEN)
    first = caller.dial()
    assert first.kind == "gather" and f"token={TOKEN}" in first.action  # its next step passes
    assert caller.press(LANG_KEYS["en"]).kind == "gather"
    health = client.get("/healthz").get_json()["webhooks"]
    assert health["sms_twilio"] == health["voice_twilio"] == "token"


def test_unsigned_and_forged_twilio_webhooks_are_refused(tmp_path: Path) -> None:
    app = secure_app(tmp_path, TWILIO_AUTH_TOKEN=TWILIO, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN)
    client = app.test_client()
    before = counts(app)
    for forger in (VoiceCaller(client), VoiceCaller(client, auth_token="not-the-token"),
                   VoiceCaller(client, token=TOKEN)):  # the shared token is no signature
        forger.post(forger.path, forger.fields(), expect=403)
        fields = forger.fields(CallStatus="completed", CallDuration="3")
        status = client.post("/voice/twilio/status", data=fields,
                             headers=forger._sign("/voice/twilio/status", fields))
        assert status.status_code == 403
    sms = {"From": "+9779800000022", "Body": "help", "MessageSid": "SM10"}
    assert client.post("/sms/twilio", data=sms).status_code == 403
    assert client.post("/sms/twilio", data=sms,
                       headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}).status_code == 403
    assert client.post(f"/sms/twilio?token={TOKEN}", data=sms).status_code == 403
    assert counts(app) == before
    health = client.get("/healthz").get_json()["webhooks"]
    assert health["voice_twilio"] == "signature" and health["ussd_africastalking"] == "token"


def test_a_forged_sms_status_callback_changes_no_delivery(tmp_path: Path) -> None:
    app = secure_app(tmp_path, TWILIO_AUTH_TOKEN=TWILIO)
    store = app.extensions["migrantline"].store
    client = app.test_client()
    caller = VoiceCaller(client, auth_token=TWILIO)  # signs as Twilio would
    fields = {"From": "+9779800000023", "Body": "help", "MessageSid": "SM11"}
    signed = client.post("/sms/twilio", data=fields, headers=caller._sign("/sms/twilio", fields))
    assert signed.status_code == 200
    rows = store.outbox()
    assert rows and all(r["status"] != "failed" for r in rows)
    for row in rows:
        forged = {"MessageSid": str(row.get("provider_id") or row["id"]),
                  "MessageStatus": "failed", "ErrorCode": "30008"}
        assert client.post("/sms/twilio/status", data=forged).status_code == 403
    assert [r["status"] for r in store.outbox()] == [r["status"] for r in rows]


# ------------------------------------------------------------ call-backs (point 2)

CALLBACK_APP = {"TWILIO_AUTH_TOKEN": TWILIO, "MIGRANTLINE_WEBHOOK_TOKEN": TOKEN,
                "MIGRANTLINE_CALLBACK_COUNTRIES": "977"}


def test_a_real_missed_call_still_gets_exactly_one_call_back(tmp_path: Path) -> None:
    app = secure_app(tmp_path, **CALLBACK_APP)
    caller = VoiceCaller(app.test_client(), auth_token=TWILIO, number="+9779851234567")
    assert caller.dial().kind == "gather"  # the service answered it
    caller.hang_up(duration=3)
    caller.hang_up(duration=3)  # Twilio retries its status callback
    rows = callbacks(app)
    assert [r["status"] for r in rows] == ["queued"]
    at = VoiceCaller(app.test_client(), provider="africastalking", token=TOKEN)
    at.dial()
    at.hang_up(duration=2)
    assert [r["status"] for r in callbacks(app)] == ["queued", "queued"]


def test_forged_status_callbacks_queue_no_call_back(tmp_path: Path) -> None:
    """The attack of the issue, on an app open to it (the opt-out): 64 forged status
    callbacks for calls the service never answered, any From, call nobody."""
    app = make_app(tmp_path, MIGRANTLINE_CALLBACK_COUNTRIES="977")  # webhooks open
    client = app.test_client()
    for n in range(64):
        response = client.post("/voice/twilio/status", data={
            "CallSid": f"CAforged{n:030d}", "From": f"+97798510{n:05d}", "To": "+15005550006",
            "Direction": "inbound", "CallStatus": "completed", "CallDuration": "3"})
        assert response.status_code == 200
        at = client.post("/voice/africastalking", data={
            "sessionId": f"ATVforged{n}", "callerNumber": f"+97798510{n:05d}",
            "direction": "inbound", "isActive": "0", "durationInSeconds": "3"})
        assert at.status_code == 200
    assert callbacks(app) == [] and counts(app)["voice_calls"] == 0


def test_a_signed_status_callback_alone_queues_nothing(tmp_path: Path) -> None:
    app = secure_app(tmp_path, **CALLBACK_APP)
    client = app.test_client()
    never_answered = VoiceCaller(client, auth_token=TWILIO)
    never_answered.hang_up(duration=3)
    # A call the service did answer, but the status names another number.
    answered = VoiceCaller(client, auth_token=TWILIO)
    answered.dial()
    fields = answered.fields(CallStatus="completed", CallDuration="3", From="+9779851111111")
    assert client.post("/voice/twilio/status", data=fields,
                       headers=answered._sign("/voice/twilio/status", fields)).status_code == 200
    # The service's own call-back, reported as if it were an inbound call.
    ours = VoiceCaller(client, auth_token=TWILIO, direction="outbound-api")
    ours.dial()
    fields = ours.fields(CallStatus="completed", CallDuration="2", Direction="inbound",
                         From=ours.number)
    assert client.post("/voice/twilio/status", data=fields,
                       headers=ours._sign("/voice/twilio/status", fields)).status_code == 200
    assert callbacks(app) == []


def test_the_global_daily_cap_holds(tmp_path: Path) -> None:
    app = secure_app(tmp_path, **CALLBACK_APP, MIGRANTLINE_CALLBACK_GLOBAL_PER_DAY="3")
    for n in range(5):
        caller = VoiceCaller(app.test_client(), auth_token=TWILIO,
                             number=f"+97798520000{n:02d}")
        caller.dial()
        caller.hang_up(duration=2)
    rows = callbacks(app)
    assert [r["status"] for r in rows] == ["queued"] * 3 + ["refused"] * 2
    assert all("3 call-backs a day in all" in r["error"] for r in rows[3:])


def test_a_number_outside_the_allowed_countries_is_not_called(tmp_path: Path) -> None:
    app = secure_app(tmp_path, **CALLBACK_APP)
    foreign = VoiceCaller(app.test_client(), auth_token=TWILIO, number="+971501234567")
    foreign.dial()
    foreign.hang_up(duration=2)
    [row] = callbacks(app)
    assert row["status"] == "refused" and "+971" in row["error"]
    services = app.extensions["migrantline"]

    def with_config(**config: str) -> Callbacks:
        provider = TwilioVoice("AC" + "1" * 32, TWILIO, "+15005550006",
                               "https://ml.example.org/voice/twilio",
                               base_url="http://127.0.0.1:9")
        return Callbacks(services.store, services.ussd.sealer, services.ussd.hasher, config,
                         provider=provider, background=False)

    # Premium-rate and invalid numbers are never called, whatever the countries.
    anywhere = with_config(MIGRANTLINE_CALLBACK_COUNTRIES="*")
    assert not anywhere.request("+19005551234", "twilio", "premium")
    assert not anywhere.request("+447700900123", "twilio", "invalid")
    assert anywhere.request("+12025550143", "twilio", "us")
    errors = {r["key"]: r["error"] for r in callbacks(app)}
    assert "premium-rate" in errors["premium"] and "not a valid number" in errors["invalid"]
    # Unset: the country of the number call-backs come from (+1 here), nothing else.
    default = with_config()
    assert not default.request("+9779851234500", "twilio", "nepal-from-a-us-number")
    assert default.request("+14155550123", "twilio", "us-2")
    with pytest.raises(ValueError, match="country calling code"):
        with_config(MIGRANTLINE_CALLBACK_COUNTRIES="977,abc")


def test_a_call_back_stored_before_the_countries_were_set_is_not_placed(
        tmp_path: Path) -> None:
    app = make_app(tmp_path)  # no provider: stored for any country, placed by nobody
    services = app.extensions["migrantline"]
    assert services.callbacks.request("+971501234567", "twilio", "stored")
    provider = TwilioVoice("AC" + "1" * 32, TWILIO, "+9779800000099",
                           "https://ml.example.org/voice/twilio", base_url="http://127.0.0.1:9")
    later = Callbacks(services.store, services.ussd.sealer, services.ussd.hasher, {},
                      provider=provider, background=False)
    assert later.place_due() == 0
    [row] = callbacks(app)
    assert row["status"] == "refused" and row["attempts"] == 1 and "+971" in row["error"]


# ------------------------------------------------------------ source addresses


def test_an_allow_list_refuses_other_addresses_even_with_the_token(tmp_path: Path) -> None:
    app = secure_app(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN,
                     MIGRANTLINE_AT_ALLOWED_IPS="192.0.2.0/24, 2001:db8::/32",
                     MIGRANTLINE_KANNEL_ALLOWED_IPS="10.1.2.3")
    query = "token=" + TOKEN
    refused = attack(app, "POST", "/ussd/africastalking", USSD_HOP, query)
    assert refused.status_code == 403 and "MIGRANTLINE_AT_ALLOWED_IPS" in refused.text
    assert attack(app, "POST", "/ussd/africastalking", USSD_HOP, query,
                  remote="192.0.2.77").status_code == 200
    assert attack(app, "POST", "/ussd/africastalking", USSD_HOP, query,
                  remote="2001:db8::5").status_code == 200
    assert attack(app, "POST", "/ussd/africastalking", USSD_HOP, "token=bad",
                  remote="192.0.2.77").status_code == 403  # the address is not enough
    assert attack(app, "GET", "/sms/kannel/delivery?id=1&type=1", None, query,
                  remote="192.0.2.77").status_code == 403
    assert attack(app, "GET", "/sms/kannel/delivery?id=1&type=1", None, query,
                  remote="10.1.2.3").status_code == 200
    # Twilio publishes no source addresses: its signature (here the token) decides.
    assert attack(app, "POST", "/sms/twilio/status", {"MessageSid": "x"}, query,
                  remote="203.0.113.1").status_code == 200
    health = app.test_client().get("/healthz").get_json()["webhooks"]
    assert health["ussd_africastalking"] == "token+ip" and health["sms_twilio"] == "token"


def test_a_bad_allow_list_stops_the_app(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MIGRANTLINE_AT_ALLOWED_IPS"):
        secure_app(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN,
                   MIGRANTLINE_AT_ALLOWED_IPS="192.0.2.0/24,africastalking.com")


# ------------------------------------------------------------ the opt-outs


def test_demo_mode_answers_this_machine_only(tmp_path: Path) -> None:
    app = secure_app(tmp_path, MIGRANTLINE_DEMO="on")
    assert attack(app, "POST", "/ussd/africastalking", USSD_HOP).status_code == 200
    assert attack(app, "POST", "/ussd/africastalking", USSD_HOP,
                  remote="::1").status_code == 200
    for remote in ("203.0.113.9", "10.0.0.2", "::ffff:203.0.113.9", ""):
        response = attack(app, "POST", "/ussd/africastalking", USSD_HOP, remote=remote)
        assert response.status_code == 403 and "demo" in response.text
    health = app.test_client().get("/healthz").get_json()
    assert health["demo"] is True and health["insecure"] is False
    assert health["webhooks"]["voice_twilio"] == "loopback-only (demo)"


def test_the_insecure_opt_out_is_shown_and_leaves_configured_channels_checked(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(tmp_path, TWILIO_AUTH_TOKEN=TWILIO)  # conftest's opt-out
    assert "open to anyone" in caplog.text
    assert attack(app, "POST", "/ussd/africastalking", USSD_HOP,
                  remote="203.0.113.9").status_code == 200
    assert attack(app, "POST", "/sms/twilio", {"From": "+9779800000024", "Body": "x",
                                               "MessageSid": "SM12"}).status_code == 403
    health = app.test_client().get("/healthz").get_json()
    assert health["insecure"] is True and health["webhooks"]["sms_twilio"] == "signature"
    assert health["webhooks"]["ussd_africastalking"] == "open"


# ------------------------------------------------------------ `migrantline serve`


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = env_for(tmp_path, **env)
    return subprocess.run([str(BIN), "serve", "--port", str(free_port()), *args],
                          capture_output=True, text=True, env=environ, timeout=60, cwd=ROOT)


def test_serve_refuses_to_start_without_authentication(tmp_path: Path) -> None:
    result = _serve(tmp_path)
    assert result.returncode == 1
    assert "ussd_africastalking" in result.stderr and "voice_twilio" in result.stderr
    assert "MIGRANTLINE_WEBHOOK_TOKEN" in result.stderr and "--demo" in result.stderr
    assert not (tmp_path / "var").exists()  # refused before anything was written
    # Twilio's token alone leaves Africa's Talking and Kannel open: still refused.
    result = _serve(tmp_path, TWILIO_AUTH_TOKEN=TWILIO)
    assert result.returncode == 1 and "sms_kannel" in result.stderr
    assert "voice_twilio" not in result.stderr


def test_serve_refuses_demo_mode_beyond_this_machine(tmp_path: Path) -> None:
    for args, env in ((("--demo", "--host", "0.0.0.0"), {}),
                      (("--host", "0.0.0.0"), {"MIGRANTLINE_DEMO": "on"}),
                      (("--demo", "--host", "::"), {})):
        result = _serve(tmp_path, *args, **env)
        assert result.returncode == 1, result.stderr
        assert "127.0.0.1" in result.stderr and "demo" in result.stderr


def _started(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "1", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).close()
            return proc, base
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                os.killpg(proc.pid, signal.SIGTERM)
                pytest.fail("server did not start: " + proc.stdout.read().decode())
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> str:
    os.killpg(proc.pid, signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)  # reading while it stops: a full pipe blocks none
    return output.decode() if output else ""


def _post(url: str, form: dict[str, str]) -> tuple[int, str]:
    data = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in form.items()).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serve_demo_starts_on_loopback_with_the_banner(tmp_path: Path) -> None:
    proc, base = _started(["--demo"], env_for(tmp_path))
    try:
        health = json.load(urllib.request.urlopen(base + "/healthz", timeout=5))
        assert health["demo"] is True
        assert set(health["webhooks"].values()) == {"loopback-only (demo)"}
        status, body = _post(base + "/ussd/africastalking", USSD_HOP)  # the README's curl
        assert status == 200 and body.startswith("CON ")
    finally:
        output = _stop(proc)
    assert "DEMO MODE" in output and "127.0.0.1" in output


def test_serve_with_a_token_checks_it(tmp_path: Path) -> None:
    proc, base = _started([], env_for(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN))
    try:
        health = json.load(urllib.request.urlopen(base + "/healthz", timeout=5))
        assert set(health["webhooks"].values()) == {"token"} and health["demo"] is False
        status, body = _post(base + "/ussd/africastalking", USSD_HOP)
        assert status == 403 and body.startswith("forbidden")
        status, body = _post(base + "/ussd/africastalking?token=" + TOKEN, USSD_HOP)
        assert status == 200 and body.startswith("CON ")
        # The terminal phone passes the token too, on USSD and on Twilio's voice line.
        env = env_for(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN, MIGRANTLINE_BASE_URL=base)
        for channel, keys, heard in (("ussd", "1\n", "Before you go"),
                                     ("voice", "1\n\n\n", "(the call ends)")):
            result = subprocess.run([str(BIN), "simulate", "--channel", channel, "--url", base],
                                    input=keys, capture_output=True, text=True, env=env,
                                    timeout=60, cwd=ROOT)
            assert result.returncode == 0, result.stderr
            assert heard in result.stdout
    finally:
        output = _stop(proc)
    assert "DEMO MODE" not in output
