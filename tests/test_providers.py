"""Each provider at its HTTP boundary, played by a handler transport (no server, no patching).

The handler sees the ``Request`` the provider module builds and answers as
the provider's documentation shows (``../shared/protocols.md`` sections 2-4
and 10); the tests pin the request's exact shape and how each kind of failure
maps to ``ProviderError.temporary`` (may a retry later help?).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from sms_flows.providers import make_provider
from ussd_app.errors import MigrantLineError, ProviderError, TransportError
from ussd_app.providers import africastalking, kannel, twilio
from ussd_app.providers.transport import Request, Response

SID = "AC" + "1" * 32
TOKEN = "twilio-token"
PHONE = "+9779812345678"
FORM = "application/x-www-form-urlencoded"


class Handler:
    """A transport: records each request and answers with the next scripted response."""

    def __init__(self, *answers: Response | Exception) -> None:
        self.answers = list(answers)
        self.seen: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.seen.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def json_answer(status: int, data: Any) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(data).encode())


def text_answer(status: int, text: str) -> Response:
    return Response(status, {"Content-Type": "text/plain"}, text.encode())


AT_SENT = json_answer(201, {"SMSMessageData": {
    "Message": "Sent to 1/1 Total Cost: KES 0.8000",
    "Recipients": [{"statusCode": 101, "number": PHONE, "status": "Success",
                    "cost": "KES 0.8000", "messageId": "ATXid_1"}]}})


def test_the_error_tree_has_one_root() -> None:
    assert issubclass(ProviderError, MigrantLineError)
    assert issubclass(TransportError, ProviderError) and TransportError("x").temporary


# ------------------------------------------------------------------ Africa's Talking


def test_africas_talking_sms_request_is_the_sdk_s() -> None:
    handler = Handler(AT_SENT)
    sms = africastalking.AtSms("migrantline", "at-key", "MigrantLine", transport=handler)
    assert sms.send(7, PHONE.lstrip("+"), "Habari", "GSM-7") == "ATXid_1"
    [sent] = handler.seen
    assert (sent.method, sent.url) == ("POST", "https://api.africastalking.com/version1/messaging")
    assert sent.headers["apiKey"] == "at-key" and sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == FORM
    assert sent.form() == {"username": "migrantline", "to": PHONE, "message": "Habari",
                           "bulkSMSMode": "1", "from": "MigrantLine"}
    sandbox = africastalking.AtSms("sandbox", "k", transport=Handler(AT_SENT))
    sandbox.send(1, PHONE, "x", "GSM-7")
    assert sandbox.transport.seen[0].url.startswith("https://api.sandbox.africastalking.com/")
    assert "from" not in sandbox.transport.seen[0].form()


@pytest.mark.parametrize("answer,temporary,message", [
    (text_answer(401, "The supplied authentication is invalid"), True, "Africa's Talking error"),
    (text_answer(500, "oops"), True, "Africa's Talking error: oops"),
    (TransportError("ReadTimeout"), True, "Africa's Talking unreachable: ReadTimeout"),
    (json_answer(201, {"SMSMessageData": {"Message": "InvalidPhoneNumber", "Recipients": [
        {"statusCode": 403, "number": PHONE, "status": "InvalidPhoneNumber"}]}}), False,
     "403 InvalidPhoneNumber"),
    (json_answer(201, {"SMSMessageData": {"Message": "", "Recipients": [
        {"statusCode": 405, "number": PHONE, "status": "InsufficientBalance"}]}}), True,
     "405 InsufficientBalance"),
    (text_answer(201, "Sent"), True, "Africa's Talking answered: Sent"),
])
def test_africas_talking_sms_failures(answer: Any, temporary: bool, message: str) -> None:
    sms = africastalking.AtSms("migrantline", "at-key", transport=Handler(answer))
    with pytest.raises(ProviderError) as raised:
        sms.send(1, PHONE, "x", "GSM-7")
    assert raised.value.temporary is temporary and str(raised.value).startswith(message)


def test_africas_talking_refuses_a_number_without_asking() -> None:
    handler = Handler()
    with pytest.raises(ProviderError) as raised:
        africastalking.AtSms("u", "k", transport=handler).send(1, "+12", "x", "GSM-7")
    assert not raised.value.temporary and not handler.seen
    with pytest.raises(ProviderError) as raised:
        africastalking.AtVoice("u", "k", "+254711082000", transport=handler).call("0712")
    assert not raised.value.temporary and not handler.seen


def test_africas_talking_call_request_and_answers() -> None:
    queued = json_answer(201, {"entries": [{"phoneNumber": PHONE, "status": "Queued",
                                            "sessionId": "ATVId_1"}], "errorMessage": "None"})
    handler = Handler(queued)
    voice = africastalking.AtVoice("migrantline", "at-key", "+254711082000",
                                   transport=handler)
    assert voice.call(PHONE) == "ATVId_1"
    [sent] = handler.seen
    assert (sent.method, sent.url) == ("POST", "https://voice.africastalking.com/call")
    assert sent.form() == {"username": "migrantline", "from": "+254711082000", "to": PHONE}
    assert sent.headers["apiKey"] == "at-key" and sent.headers["Content-Type"] == FORM
    for answer, temporary in [(text_answer(400, "Invalid callTo"), False),
                              (text_answer(429, "slow down"), True),
                              (text_answer(503, "down"), True),
                              (TransportError("ConnectTimeout"), True),
                              (json_answer(201, {"entries": [{"status": "InvalidPhoneNumber"}],
                                                 "errorMessage": "None"}), False),
                              (json_answer(201, {"entries": [], "errorMessage": "busy"}), True)]:
        with pytest.raises(ProviderError) as raised:
            africastalking.AtVoice("u", "k", "+254711082000",
                                   transport=Handler(answer)).call(PHONE)
        assert raised.value.temporary is temporary, answer


# ------------------------------------------------------------------ Twilio


def twilio_error(status: int, code: int) -> Response:
    return json_answer(status, {"code": code, "message": "...", "status": status,
                                "more_info": f"https://www.twilio.com/docs/errors/{code}"})


def test_twilio_sms_request_is_the_messages_resource() -> None:
    handler = Handler(json_answer(201, {"sid": "SM1", "status": "queued"}))
    sms = twilio.TwilioSms(SID, TOKEN, "+15005550006", "https://ml.example.org/sms/twilio/status",
                           transport=handler)
    assert sms.send(1, PHONE.lstrip("+"), "Hello", "GSM-7") == "SM1"
    [sent] = handler.seen
    assert sent.method == "POST"
    assert sent.url == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert sent.headers["Authorization"] == f"Basic {auth}"
    assert sent.headers["Content-Type"] == FORM
    assert sent.form() == {"To": PHONE, "From": "+15005550006", "Body": "Hello",
                           "StatusCallback": "https://ml.example.org/sms/twilio/status"}
    assert sent.timeout == (10.0, 10.0)  # the SDK's one timeout, for both phases


@pytest.mark.parametrize("answer,temporary,message", [
    (twilio_error(400, 21211), False, "Twilio 400 21211"),
    (twilio_error(401, 20003), False, "Twilio 401 20003"),
    (twilio_error(429, 20429), True, "Twilio 429 20429"),
    (twilio_error(500, 20500), True, "Twilio 500 20500"),
    (text_answer(502, "<html>Bad Gateway</html>"), True, "Twilio 502 502"),
    (TransportError("ReadTimeout"), True, "Twilio unreachable: ReadTimeout"),
])
def test_twilio_failures(answer: Any, temporary: bool, message: str) -> None:
    for provider in (twilio.TwilioSms(SID, TOKEN, "+15005550006", transport=Handler(answer)),
                     twilio.TwilioVoice(SID, TOKEN, "+15005550006", "https://x/voice/twilio",
                                        transport=Handler(answer))):
        with pytest.raises(ProviderError) as raised:
            if isinstance(provider, twilio.TwilioSms):
                provider.send(1, PHONE, "x", "GSM-7")
            else:
                provider.call(PHONE)
        assert raised.value.temporary is temporary and str(raised.value) == message


def test_twilio_call_request_is_the_calls_resource() -> None:
    handler = Handler(json_answer(201, {"sid": "CA1", "status": "queued"}))
    voice = twilio.TwilioVoice(SID, TOKEN, "+15005550006", "https://ml.example.org/voice/twilio",
                               base_url="https://api.example.test/", transport=handler)
    assert voice.call(PHONE) == "CA1"
    [sent] = handler.seen
    assert sent.url == f"https://api.example.test/2010-04-01/Accounts/{SID}/Calls.json"
    assert sent.form() == {"To": PHONE, "From": "+15005550006",
                           "Url": "https://ml.example.org/voice/twilio", "Method": "POST"}


def test_twilio_signature_is_checked_with_every_field() -> None:
    from twilio.request_validator import RequestValidator

    url = "https://ml.example.org/sms/twilio"
    form = {"From": PHONE, "Body": "help", "MessageSid": "SM1", "NumMedia": ""}
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    assert twilio.signed(TOKEN, url, form, signature)
    assert not twilio.signed(TOKEN, url, {k: v for k, v in form.items() if v}, signature)
    assert not twilio.signed(TOKEN, url.replace("https", "http"), form, signature)


def test_twilio_recording_url_and_credentials() -> None:
    url, headers = twilio.recording_request("https://api.twilio.com/x/Recordings/RE1", SID, TOKEN)
    assert url.endswith("/RE1.mp3") and headers["Authorization"].startswith("Basic ")
    assert twilio.recording_request("https://h/RE1.wav", None, None) == ("https://h/RE1.wav", {})


# ------------------------------------------------------------------ Kannel


def test_kannel_sendsms_request() -> None:
    handler = Handler(text_answer(202, "0: Accepted for delivery"))
    sms = kannel.KannelSms("http://127.0.0.1:13013/cgi-bin/sendsms", "ml", "pw", "5555",
                           "https://ml.example.org/sms/kannel/delivery?token=t",
                           transport=handler)
    assert sms.send(42, PHONE, "مرحبا", "UCS-2") == "kannel-42"
    [sent] = handler.seen
    assert sent.method == "GET" and sent.body == b""
    parts = urlsplit(sent.url)
    assert parts.path == "/cgi-bin/sendsms"
    assert dict(parse_qsl(parts.query)) == {
        "username": "ml", "password": "pw", "to": PHONE, "text": "مرحبا", "charset": "UTF-8",
        "coding": "2", "from": "5555", "dlr-mask": "11",
        "dlr-url": "https://ml.example.org/sms/kannel/delivery?token=t&id=kannel-42&type=%d"}


@pytest.mark.parametrize("answer,temporary", [
    (text_answer(400, "Missing receiver"), False), (text_answer(403, "Authorization failed"), True),
    (text_answer(503, "busy"), True), (TransportError("ConnectionError"), True)])
def test_kannel_failures(answer: Any, temporary: bool) -> None:
    sms = kannel.KannelSms("http://k/cgi-bin/sendsms", "u", "p", transport=Handler(answer))
    with pytest.raises(ProviderError) as raised:
        sms.send(1, PHONE, "x", "GSM-7")
    assert raised.value.temporary is temporary


# ------------------------------------------------------------------ wiring


@pytest.mark.parametrize("name,config,answer", [
    ("africastalking", {"AT_USERNAME": "u", "AT_API_KEY": "k"}, AT_SENT),
    ("twilio", {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
                "TWILIO_FROM_NUMBER": "+15005550006"}, json_answer(201, {"sid": "SM9"})),
    ("kannel", {"KANNEL_SENDSMS_URL": "http://k/cgi-bin/sendsms", "KANNEL_USERNAME": "u",
                "KANNEL_PASSWORD": "p"}, text_answer(202, "0: Accepted")),
])
def test_make_provider_passes_the_transport_on(name: str, config: dict[str, str],
                                               answer: Response) -> None:
    handler: Callable[[Request], Response] = Handler(answer)
    provider = make_provider({"MIGRANTLINE_SMS_PROVIDER": name, **config}, transport=handler)
    assert provider.send(3, PHONE, "x", "GSM-7")
    assert len(handler.seen) == 1  # type: ignore[attr-defined]


# ------------------------------------------------------------------ recordings


MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\x00" * 100


def recordings(handler: Handler) -> Any:
    from ussd_app.channels.voice.recordings import VoiceRecordings

    return VoiceRecordings(None, b"k" * 32, {  # type: ignore[arg-type] - no store needed
        "MIGRANTLINE_RECORDING_HOSTS": "api.twilio.com, *.twiliocdn.test",
        "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
        "MIGRANTLINE_RECORDING_MAX_MB": "1", "MIGRANTLINE_RECORDING_MAX_ATTEMPTS": "3"},
        transport=handler)


def test_a_recording_download_follows_a_redirect_without_the_credentials() -> None:
    handler = Handler(Response(302, {"Location": "https://media.twiliocdn.test/RE1.mp3"}),
                      Response(200, {"Content-Type": "audio/mpeg"}, MP3))
    data, mimetype = recordings(handler)._download(
        "twilio", "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1")
    assert (data, mimetype) == (MP3, "audio/mpeg")
    first, second = handler.seen
    assert first.url.endswith("/Recordings/RE1.mp3") and first.stream
    assert first.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{SID}:{TOKEN}".encode()).decode()
    assert "Authorization" not in second.headers and "audio/mpeg" in second.headers["Accept"]


@pytest.mark.parametrize("answer,temporary", [
    (text_answer(404, "not yet"), True), (text_answer(401, "creds"), True),
    (text_answer(400, "bad"), False), (text_answer(410, "gone"), False),
    (text_answer(503, "busy"), True), (TransportError("ReadTimeout"), True),
    (Response(200, {}, b"<!doctype html><html>"), False),
    (Response(302, {"Location": "https://evil.example/x.mp3"}), False)])
def test_recording_download_failures(answer: Any, temporary: bool) -> None:
    with pytest.raises(ProviderError) as raised:
        recordings(Handler(answer))._download("africastalking",
                                              "https://api.twilio.com/rec/ATVId_1.mp3")
    assert raised.value.temporary is temporary
