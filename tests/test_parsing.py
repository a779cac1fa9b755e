"""Numbers from requests are parsed with bounds: the bugs the fuzz test found, one by one.

Each test names what it checks and drives the app through HTTP as a provider,
a handset or an attacker would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ussd_app.engine.loader import read_tree
from ussd_app.parsing import ascii_digits_of, bounded_float, bounded_int

from .conftest import DEMO_CONTENT, Phone, make_app
from .recording_server import RecordingServer, Reply
from .test_voice_complaints import start_report
from .voice_phone import VoiceCaller, parse

TREE = read_tree(DEMO_CONTENT)
LANG_KEYS = {lang.code: str(i + 1) for i, lang in enumerate(TREE.languages)}


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0), ("7", 7), ("0012", 12), ("999999999999999999", 999999999999999999),
    ("9999999999999999999", None),  # 19 digits: over the length limit
    ("9" * 5000, None), ("-1", None), ("+1", None), (" 1", None), ("1 ", None), ("1_000", None),
    ("1.0", None), ("1e3", None), ("1e400", None), ("inf", None), ("nan", None), ("0x10", None),
    ("²", None), ("١", None), ("①", None), ("𝟗", None), ("", None), ("1\x00", None),
])
def test_bounded_int_takes_ascii_digits_only(text: str, expected: int | None) -> None:
    assert bounded_int(text, 0, 10**18) == expected


def test_bounded_int_range_and_sign() -> None:
    assert bounded_int("11", 1, 10) is None and bounded_int("0", 1, 10) is None
    assert bounded_int("-5", -10, 10) == -5 and bounded_int("-", -10, 10) is None
    assert bounded_int("123", 0, 999, max_len=2) is None
    assert bounded_int(None, 0, 1) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("12", 12.0), ("12.5", 12.5), ("0", 0.0), ("1e400", None), ("inf", None), ("-inf", None),
    ("nan", None), ("NaN", None), ("-1", None), ("1.", None), (".5", None), ("١٢", None),
    ("1" * 30, None), ("86401", None),
])
def test_bounded_float_refuses_exponents_infinities_and_nan(text: str,
                                                            expected: float | None) -> None:
    assert bounded_float(text, 0, 86400) == expected


def test_keypad_digits_of_other_scripts_become_ascii_and_nothing_else_does() -> None:
    assert ascii_digits_of("١٢٣") == "123"  # Arabic-Indic
    assert ascii_digits_of("۴۵") == "45"  # Extended Arabic-Indic (Persian, Urdu)
    assert ascii_digits_of("९८") == "98"  # Devanagari (Nepali keypads)
    assert ascii_digits_of("²①") == "²①"  # not decimal digits: left alone
    assert ascii_digits_of("abc ١") == "abc 1"


# ------------------------------------------------------------------ voice


@pytest.mark.parametrize("query", ["s=1e400", "s=inf", "s=-inf", "s=nan", "s=" + "9" * 30,
                                   "s=٣", "w=inf", "w=1e400", "n=-inf", "n=" + "9" * 5000])
@pytest.mark.parametrize("provider", ["twilio", "africastalking"])
def test_an_overflowing_step_in_a_voice_action_url_is_not_a_500(
        client: FlaskClient, provider: str, query: str) -> None:
    caller = VoiceCaller(client, provider=provider)
    caller.dial()
    heard = caller.post(f"{caller.path}?{query}", caller.fields())
    assert heard.kind == "gather"  # the menu again, as for a request with no step


@pytest.mark.parametrize("duration", ["inf", "-inf", "nan", "1e400", "9" * 5000, "-3", "١٢"])
def test_an_overflowing_call_duration_is_not_a_500(client: FlaskClient, duration: str) -> None:
    caller = VoiceCaller(client)
    caller.dial()
    fields = caller.fields(CallStatus="completed", CallDuration=duration)
    response = client.post("/voice/twilio/status", data=fields)
    assert response.status_code == 200 and response.get_data(as_text=True) == "<Response/>"
    at = VoiceCaller(client, provider="africastalking")
    response = client.post(at.path, data=at.fields(isActive="0", durationInSeconds=duration))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_an_overflowing_recording_duration_is_not_a_500(client: FlaskClient) -> None:
    caller = VoiceCaller(client)
    caller.dial()
    response = client.post(caller.path, data=caller.fields(
        RecordingUrl="http://127.0.0.1:9/r", RecordingDuration="1e400"))
    assert response.status_code == 200
    assert parse(response.get_data(as_text=True), "twilio").kind == "gather"


# ------------------------------------------------------------------ USSD


def test_a_key_of_5000_digits_is_an_invalid_choice_not_a_failed_hop(phone: Phone) -> None:
    first = phone.dial()
    body = phone.press("9" * 5000)  # the language list shows the hint only where it fits
    assert body.startswith("CON Invalid choice") or body == first, body
    phone.press(LANG_KEYS["en"])
    body = phone.press("9" * 5000)
    assert body.startswith("CON Invalid choice"), body


def test_arabic_indic_keys_choose_as_ascii_keys_do(client: FlaskClient) -> None:
    ascii_phone, arabic_phone = Phone(client), Phone(client)
    ascii_phone.dial()
    arabic_phone.dial()
    english = LANG_KEYS["en"]
    arabic_key = "".join("٠١٢٣٤٥٦٧٨٩"[int(d)] for d in english)
    assert arabic_phone.press(arabic_key) == ascii_phone.press(english)
    assert arabic_phone.press("٩٩") == ascii_phone.press("99")  # help now
    assert arabic_phone.press("٠٠") == ascii_phone.press("00")  # main menu


def test_a_superscript_digit_is_no_key(phone: Phone) -> None:
    first = phone.dial()
    body = phone.press("²")  # the language list shows the hint only where it fits
    assert body.startswith("CON Invalid choice") or body == first, body
    phone.press(LANG_KEYS["en"])
    assert phone.press("²").startswith("CON Invalid choice")


@pytest.mark.parametrize("length", ["-1", "1e3", "١٢", "9" * 30, "0x10"])
def test_a_ussd_hop_with_a_bad_content_length_is_a_400(client: FlaskClient,
                                                       length: str) -> None:
    response = client.post("/ussd/africastalking", data={"sessionId": "s", "phoneNumber": "+1"},
                           environ_overrides={"CONTENT_LENGTH": length})
    assert response.status_code == 400
    assert response.get_data(as_text=True) == "bad Content-Length"


# ------------------------------------------------------------------ URLs


@pytest.mark.parametrize("url", ["/sms/kannel?from=%2B1&text=\xff", "/healthz?\xc3\x28",
                                 "/operator/?page=\xff", "/voice/twilio?s=\xed\xa0\x80",
                                 "/ussd/africastalking?token=\xff"])
def test_a_url_that_is_not_utf8_is_a_400_not_a_500(client: FlaskClient, url: str) -> None:
    path, _, query = url.partition("?")
    response = client.post(path, environ_overrides={"QUERY_STRING": query})
    assert response.status_code == 400
    assert response.get_data(as_text=True) == "bad request: the URL is not valid UTF-8"
    assert response.mimetype == "text/plain"


def test_a_url_in_utf8_passes_the_check(client: FlaskClient) -> None:
    query = b"from=%2B9779800000001&text=" + "مساعدة".encode()
    response = client.get("/sms/kannel", environ_overrides={
        "QUERY_STRING": query.decode("latin-1")})
    assert response.status_code == 200


def test_a_spoken_answer_whose_url_has_a_space_is_still_fetched(
        tmp_path: Path, recording_server: RecordingServer) -> None:
    """The recording's length is read from the end of "<url> <seconds>", not cut at the
    URL's first space (that raised, and the caller's words were never fetched)."""
    app = make_app(tmp_path, MIGRANTLINE_RECORDING_HOSTS="http://127.0.0.1")
    services = app.extensions["migrantline"]
    caller = VoiceCaller(app.test_client(), provider="africastalking")
    start_report(caller)
    caller.press("2")
    body = Reply(200, b"ID3\x03\x00\x00\x00" + bytes(400))
    caller.speak(recording_server.route("/rec/the boss.mp3", body))
    caller.press("1")
    caller.speak(recording_server.route("/rec/town.mp3", body))
    caller.speak(recording_server.route("/rec/my story.mp3", body), hung_up=True)
    [(reference,)] = services.store.db().execute("select reference from complaints")
    assert len(services.recordings.for_complaint(reference)) == 3
    services.store.close()


@pytest.mark.parametrize("code", ['1e400', '"1e400"', '"abc"', '"9999999999999999999999"',
                                  '"²"', 'null'])
def test_an_sms_provider_status_code_that_is_no_number_is_a_provider_error(code: str) -> None:
    """Africa's Talking's answer to a send, when its statusCode is not a small number: a
    retryable ProviderError for the outbox, never a ValueError that stops the worker's pass."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from ussd_app.errors import ProviderError
    from ussd_app.providers.africastalking import AtSms

    answer = ('{"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [{"statusCode": '
              + code + ', "number": "+9779800000001", "status": "Success", '
              '"messageId": "ATXid_1"}]}}').encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server convention
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        provider = AtSms("demo", "key", base_url=f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(ProviderError) as raised:
            provider.send(1, "+9779800000001", "hello", "gsm7")
        assert raised.value.temporary
    finally:
        server.shutdown()
        server.server_close()
