"""Every endpoint under generated hostile input: no 500, no crash logged, no hang.

A deterministic generator (a fixed seed, so a failure replays) sends over a
thousand requests through the Flask test client to every route in the app's
``url_map`` and to the USSD middleware: invalid UTF-8 in the path, query and
body, NUL bytes, bidi controls, numbers that overflow (``1e400``, ``inf``,
``nan``, 30 digits), negative numbers, digits of other scripts (``١``, ``²``),
very long fields, wrong methods and content types, JSON where a form is
expected, missing and repeated fields, odd ``Content-Length`` and ``Range``
headers, signed in as an operator, as a supervisor, and not. Each answer
must come within a time bound and below 500, nothing may be logged as an
error (the USSD, voice and SMS endpoints turn a crash into a polite answer,
so the log is where a crash shows), and the service must still answer a
normal caller afterwards.

A smaller set goes over raw sockets to a real ``migrantline serve``, for what
the test client cannot send: bytes that are not UTF-8 in the request line
and in headers, malformed header lines, broken framing.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.engine.loader import read_tree

from . import databases
from .conftest import DEMO_CONTENT, ROOT, TEST_SECRET, Phone, make_app
from .dashboard.conftest import add_operator, cheap_hashes, csrf, file_complaint, sign_in
from .recording_server import RecordingServer, Reply

SEED = 20261204
REQUESTS = 2500
PER_REQUEST_SECONDS = 2.0
TOTAL_SECONDS = 60.0
USSD = "/ussd/africastalking"
TOKEN = "fuzz-webhook-token-0123456789abcdef"
TREE = read_tree(DEMO_CONTENT)

# Numbers as an attacker, a broken provider or a foreign keypad writes them.
NUMBERS = ["0", "1", "2", "7", "98", "99", "00", "-1", "-0", "+1", "1.5", "3.0", "1e400",
           "-1e400", "1e3", "inf", "-inf", "Infinity", "nan", "NaN", "0x10", "1_000", " 12 ",
           "9" * 19, "9" * 30, "9" * 5000, "²", "١", "١٢", "٠٠", "٩٨", "१", "①", "𝟗", "٣٠٠٠",
           "12\x00", "\u202e12", "1\u200f2", "", " "]
OVERFLOWS = ["1e400", "inf", "-inf", "nan", "-1", "9" * 19, "9" * 30, "9" * 5000, "²", "١",
             "①", "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠"]
TEXTS = ["", "hello", "\x00", "a\x00b", "\u202eevil\u202c", "\u2066x\u2069", "\ufeff",
         "👍" * 50, "' or 1=1 --", "<script>alert(1)</script>", "../../etc/passwd", "%s%n",
         "{{7*7}}", "\r\nSet-Cookie: x=1", "ā" * 300, "A" * 5000, "x" * 70_000, "*",
         "1*" * 500, "*" * 1000, "#", "\\", "null", "[]", "{}"]
ID_SEGMENTS = ["0", "1", "2", "999999", "9" * 18, "9" * 19, "9" * 30, "-1", "١", "²", "1e400",
               "inf", "nan", "01", "1.0", " 1", "%00", "x"]
FIELDS = ["sessionId", "phoneNumber", "serviceCode", "networkCode", "text", "CallSid", "From",
          "To", "Digits", "RecordingUrl", "RecordingDuration", "CallStatus", "CallDuration",
          "Direction", "callerNumber", "destinationNumber", "dtmfDigits", "isActive",
          "durationInSeconds", "recordingUrl", "direction", "from", "id", "Body", "MessageSid",
          "MessageStatus", "ErrorCode", "status", "failureReason", "type", "email", "password",
          "lang", "operator_id", "partner_id", "note", "template", "active", "name", "country",
          "contact", "page", "older", "q", "urgent", "untouched", "assigned", "category",
          "reference", "operator", "next"]
QUERY_FIELDS = ["s", "w", "n", "ev", "v", "page", "older", "operator", "reference", "q",
                "status", "category", "country", "urgent", "untouched", "assigned", "token",
                "text", "from", "id", "type", "next"]
CONTENT_TYPES = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; "
                 "charset=latin-1", "multipart/form-data; boundary=xyz", "multipart/form-data",
                 "application/json", "text/plain", "text/xml", "", "garbage/\x7f",
                 "application/x-www-form-urlencoded\x00"]
RANGES = ["bytes=0-1", "bytes=0-", "bytes=-5", "bytes=5-1", "bytes=0-99999999999999999999999",
          "bytes=1e400-", "bytes=١-٢", "bytes=" + ",".join(["0-1"] * 500), "bytes=-0",
          "items=0-1", "bytes=0-1,", "\x00", "bytes=99999999999-"]
CONTENT_LENGTHS = ["-1", "1e3", "١٢", "9" * 30, "", " 3", "0x10", "inf"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO"]


@dataclass
class Probe:
    who: str  # "anon", "op" (an operator), "boss" (a supervisor)
    method: str
    path: bytes  # the decoded path as a server gives it (PATH_INFO), possibly not UTF-8
    query: bytes = b""
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    environ: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return (f"{self.who} {self.method} {self.path[:120]!r}?{self.query[:200]!r} "
                f"type={self.content_type!r} headers={self.headers!r} environ={self.environ!r} "
                f"body={self.body[:300]!r}")


# What each endpoint expects (method, path, query, form): valid values that the
# generator then breaks one or a few at a time, so that the hostile value gets past the
# first "field required" check to the code that parses it. {cid}, {rid}, {op} and
# {partner} are filled with ids that exist; {ussd} with a text that reaches a menu.
TEMPLATES: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
    ("POST", USSD, {}, {"sessionId": "{session}", "phoneNumber": "{phone}",
                        "serviceCode": "*384*1234#", "networkCode": "99999", "text": "{ussd}"}),
    ("POST", "/sms/africastalking", {}, {"from": "{phone}", "to": "1234", "text": "{key}",
                                         "id": "{session}", "date": "2026-12-04"}),
    ("POST", "/sms/twilio", {}, {"From": "{phone}", "To": "+1", "Body": "{key}",
                                 "MessageSid": "{session}"}),
    ("GET", "/sms/kannel", {"from": "{phone}", "text": "{key}", "id": "{session}"}, {}),
    ("POST", "/sms/kannel", {}, {"from": "{phone}", "text": "{key}", "id": "{session}"}),
    ("POST", "/sms/africastalking/delivery", {}, {"id": "{session}", "status": "Success",
                                                  "failureReason": ""}),
    ("POST", "/sms/twilio/status", {}, {"MessageSid": "{session}", "MessageStatus": "sent",
                                        "ErrorCode": "30003"}),
    ("GET", "/sms/kannel/delivery", {"id": "{session}", "type": "1"}, {}),
    ("POST", "/voice/twilio", {"s": "{seq}", "ev": "silence", "w": "1", "n": "2"},
     {"CallSid": "{session}", "From": "{phone}", "To": "+1", "Direction": "inbound",
      "CallStatus": "in-progress", "Digits": "{key}", "RecordingUrl": "",
      "RecordingDuration": "3"}),
    ("POST", "/voice/twilio", {"s": "{seq}", "ev": "record"},
     {"CallSid": "{session}", "From": "{phone}", "CallStatus": "in-progress",
      "RecordingUrl": "http://127.0.0.1:9/r", "RecordingDuration": "12"}),
    ("POST", "/voice/twilio/status", {}, {"CallSid": "{session}", "From": "{phone}",
                                          "CallStatus": "completed", "CallDuration": "3",
                                          "Direction": "inbound"}),
    ("POST", "/voice/africastalking", {"s": "{seq}", "ev": "wait", "w": "2", "n": "1"},
     {"sessionId": "{session}", "callerNumber": "{phone}", "direction": "inbound",
      "isActive": "1", "dtmfDigits": "{key}", "recordingUrl": ""}),
    ("POST", "/voice/africastalking", {}, {"sessionId": "{session}", "callerNumber": "{phone}",
                                           "isActive": "0", "durationInSeconds": "40"}),
    ("GET", "/audio/{audio}", {"v": "abcdef12"}, {}),
    ("GET", "/healthz", {}, {}),
    ("GET", "/static/{audio}", {}, {}),
    ("GET", "/operator/static/{audio}", {}, {}),
    ("GET", "/operator/login", {"next": "/operator/"}, {}),
    ("POST", "/operator/login", {}, {"email": "x@example.org", "password": "wrong",
                                     "next": "/operator/"}),
    ("POST", "/operator/language", {}, {"lang": "ar"}),
    ("GET", "/operator/", {"page": "2", "status": "open", "category": "unpaid_wages",
                           "country": "QA", "urgent": "yes", "older": "3", "untouched": "1",
                           "assigned": "me", "q": "1234"}, {}),
    ("GET", "/operator/stats", {}, {}),
    ("GET", "/operator/export.csv", {"status": "", "older": "30", "q": "a"}, {}),
    ("GET", "/operator/audit", {"page": "1", "reference": "{reference}", "operator": "{op}"},
     {}),
    ("GET", "/operator/partners", {}, {}),
    ("POST", "/operator/partners", {}, {"name": "A partner", "country": "NP",
                                        "contact": "+977 1"}),
    ("POST", "/operator/partners/{partner}/active", {}, {"active": "1"}),
    ("GET", "/operator/operators", {}, {}),
    ("POST", "/operator/operators/{op}/active", {}, {"active": "1"}),
    ("GET", "/operator/complaints/{cid}", {}, {}),
    ("POST", "/operator/complaints/{cid}/reveal", {}, {}),
    ("POST", "/operator/complaints/{cid}/assign", {}, {"operator_id": "{op}"}),
    ("POST", "/operator/complaints/{cid}/status", {}, {"status": "in_progress",
                                                       "note": "called"}),
    ("POST", "/operator/complaints/{cid}/note", {}, {"note": "a note"}),
    ("POST", "/operator/complaints/{cid}/acknowledge", {}, {}),
    ("GET", "/operator/alerts", {}, {}),
    ("POST", "/operator/complaints/{cid}/message", {}, {"template": "call_us"}),
    ("POST", "/operator/complaints/{cid}/refer", {}, {"partner_id": "{partner}",
                                                      "note": "x"}),
    ("GET", "/operator/complaints/{cid}/recordings/{rid}", {}, {}),
    ("POST", "/operator/logout", {}, {}),
]


class Generator:
    """Hostile requests, all from one seeded ``random.Random``."""

    def __init__(self, seed: int, ids: dict[str, str], prefixes: list[str],
                 templates: list[tuple[str, str, dict[str, str], dict[str, str]]]):
        self.rng = random.Random(seed)
        self.ids, self.prefixes, self.templates = ids, prefixes, templates

    def text(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.25:
            return rng.choice(OVERFLOWS)
        if kind < 0.45:
            return rng.choice(NUMBERS)
        if kind < 0.7:
            return rng.choice(TEXTS)
        if kind < 0.85:  # random code points, bidi controls and NULs among them
            return "".join(chr(rng.choice([rng.randrange(0x20, 0x7f), rng.randrange(0xa0, 0x3000),
                                           0x202e, 0x200f, 0, 0x0661, 0x00b2, 0xfffd,
                                           rng.randrange(0x10000, 0x10ffff)]))
                           for _ in range(rng.randrange(1, 40))).replace("\ud800", "")
        return rng.choice(NUMBERS) + rng.choice(["", "*", " ", "\x00"]) + rng.choice(NUMBERS)

    def fill(self, value: str) -> str:
        rng = self.rng
        values = {**self.ids, "session": f"fuzz-{rng.randrange(40)}",
                  "phone": rng.choice(["+9779800000001", "+9779800000002", "anonymous"]),
                  "ussd": "*".join(x for x in [rng.choice(self.prefixes), *(
                      rng.choice(["1", "2", "98", "0", "00", "99", "١", "٩٨", "1234"])
                      for _ in range(rng.randrange(0, 3)))] if x),
                  "key": rng.choice(["1", "2", "98", "0", "HELP", "١", "2*1", "1234"]),
                  "seq": str(rng.randrange(0, 6)),
                  "audio": rng.choice(["tts/en/fuzz.wav", "tts/en/fuzz.wav", "dyn/x.mp3",
                                       "rec0/en/x.wav", "dashboard.css", "a/b"])}
        for name, filled in values.items():
            value = value.replace("{" + name + "}", filled)
        return value

    def encode(self, pairs: list[tuple[str, str]]) -> bytes:
        """``a=1&b=2``, now and then with a byte that is not UTF-8, raw or %-escaped."""
        out = []
        for name, value in pairs:
            item = (urllib.parse.quote(name, safe="") + "=" + urllib.parse.quote(
                value, safe="*")).encode("utf-8", "surrogatepass")
            if self.rng.random() < 0.04:
                item += self.rng.choice([b"\xff", b"\xc3\x28", b"%ff%fe", b"\xed\xa0\x80",
                                         b"%C0%AF", b"%00"])
            out.append(item)
        return b"&".join(out)

    def mutate(self, fields: dict[str, str], names: list[str]) -> list[tuple[str, str]]:
        """The fields with one to three broken: a hostile value, missing, repeated, or an
        unexpected extra field."""
        rng = self.rng
        pairs = [(k, self.fill(v)) for k, v in fields.items()]
        for _ in range(rng.randrange(1, 4)):
            what = rng.random()
            if pairs and what < 0.7:
                i = rng.randrange(len(pairs))
                pairs[i] = (pairs[i][0], self.text())
            elif pairs and what < 0.8:
                pairs.pop(rng.randrange(len(pairs)))
            elif pairs and what < 0.9:
                pairs.append((rng.choice(pairs)[0], self.text()))
            else:
                pairs.append((rng.choice(names), self.text()))
        return pairs

    def path(self, template: str) -> bytes:
        rng = self.rng
        path = self.fill(template)
        if rng.random() < 0.25:  # an id in the path broken
            parts = path.split("/")
            numeric = [i for i, p in enumerate(parts) if p.isascii() and p.isdigit()]
            if numeric:
                parts[rng.choice(numeric)] = rng.choice(ID_SEGMENTS)
                path = "/".join(parts)
            elif path.startswith(("/audio/", "/static/")):
                path = path.split("/")[1] and "/" + path.split("/")[1] + "/" + rng.choice(
                    ["../../etc/passwd", "x\x00.wav", "generated/" + "a" * 300 + ".wav",
                     "\u202ewav.exe", "recordings/../../app.py", "%2e%2e/x", "١.wav"])
        raw = path.encode("utf-8", "surrogatepass")
        if rng.random() < 0.03:
            raw += rng.choice([b"\xff", b"/\xd9", b"\x00", b"/" + b"a" * 5000])
        return raw

    def probe(self, who: str) -> Probe:
        rng = self.rng
        if rng.random() < 0.03:  # no route, or a broken one
            return Probe(who, rng.choice(METHODS), rng.choice(
                [b"/", b"/\xff", b"/operator/complaints/\xd9\xa1", b"/voice/\x00",
                 b"/sms//kannel", b"/operator/../healthz", b"/ussd/africastalking/",
                 b"/USSD/africastalking", b"/operator/complaints/1/x"]))
        method, template, query, form = rng.choice(self.templates)
        names = FIELDS if form else QUERY_FIELDS
        path = self.path(template)
        if rng.random() < 0.1:
            method = rng.choice(METHODS)
        query_pairs = self.mutate(query, QUERY_FIELDS) if query else [
            (k, self.fill(v)) for k, v in query.items()]
        form_pairs = (self.mutate(form, names) if form and (not query or rng.random() < 0.5)
                      else [(k, self.fill(v)) for k, v in form.items()])
        content_type: str | None = "application/x-www-form-urlencoded" if form_pairs else None
        body = self.encode(form_pairs)
        kind = rng.random()
        if kind < 0.06:  # JSON where a form is expected
            content_type = "application/json"
            body = json.dumps(dict(form_pairs)).encode()
        elif kind < 0.12:
            content_type = rng.choice(CONTENT_TYPES)
        elif kind < 0.16:
            body = rng.choice([b"\xff\xfe\x00", b"--xyz\r\nContent-Disposition: form-data;"
                               b" name=\"text\"\r\n\r\n1\r\n--xyz--\r\n",
                               b"text=" + b"1*" * 500, b"a=" + b"1" * 60_000,
                               b"{\"text\": 1e400}", b"=&&==&"])
        headers: dict[str, str] = {}
        if "recordings" in template or rng.random() < 0.05:
            headers["Range"] = rng.choice(RANGES)
        if rng.random() < 0.05:
            headers["If-None-Match"] = rng.choice(['"x"', "*", "\x00", "W/" + "a" * 3000])
        if rng.random() < 0.05:
            headers["X-Twilio-Signature"] = rng.choice(["", "x", "\u202e", "a" * 2000])
        if rng.random() < 0.05:
            headers["Accept-Language"] = rng.choice(["ar", "١", "*;q=1e400", "x" * 2000,
                                                     "en;q=nan"])
        environ = {}
        if rng.random() < 0.03:
            environ["CONTENT_LENGTH"] = rng.choice(CONTENT_LENGTHS)
        return Probe(who, method, path, self.encode(query_pairs), body, content_type, headers,
                     environ)


def _generic(app: Flask, ids: dict[str, str]) -> tuple[
        list[tuple[str, str, dict[str, str], dict[str, str]]], set[str]]:
    """A plain template for each route that ``TEMPLATES`` does not cover yet (one added
    since): fuzzed all the same, with generic fields."""
    adapter = app.url_map.bind("localhost")
    covered = set()
    for method, path, _, _ in TEMPLATES:
        filled = path.replace("{audio}", "x.wav")
        for name, value in ids.items():
            filled = filled.replace("{" + name + "}", value)
        try:
            covered.add(adapter.match(filled, method=method)[0])
        except Exception:
            continue
    out, endpoints = [], set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in covered:
            continue
        endpoints.add(rule.endpoint)
        path = rule.rule
        for piece in ("<int:", "<path:", "<"):
            while piece in path:
                start = path.index(piece)
                path = path[:start] + ("1" if piece == "<int:" else "x") + path[
                    path.index(">", start) + 1:]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, path, {"page": "1", "id": "1"},
                        {"id": "1", "text": "1"} if method != "GET" else {}))
    return out, endpoints


def _prefixes() -> list[str]:
    """USSD texts that reach the menus, the agency search and the complaint questions."""
    out = ["", "1"]
    main = TREE.nodes[TREE.main]
    for i, option in enumerate(main.options, 1):
        out.append(f"1*{i}")
        node = TREE.nodes.get(option.target)
        for j, _ in enumerate(node.options if node else (), 1):
            out.append(f"1*{i}*{j}")
            out.append(f"1*{i}*{j}*1")
    return out


def _endpoint(adapter: Any, probe: Probe) -> str:
    """The endpoint a probe was meant for (its template's), whatever it got."""
    path = probe.path.decode("utf-8", "replace")
    if path == USSD:
        return "ussd"
    try:
        return str(adapter.match(path, method=probe.method)[0])
    except Exception as exc:  # a broken id or method: the endpoint of the template
        for method in ("GET", "POST"):
            try:
                return str(adapter.match(path, method=method)[0])
            except Exception:
                continue
        return type(exc).__name__


def send(client: FlaskClient, probe: Probe) -> Any:
    environ = {"PATH_INFO": probe.path.decode("latin-1"),
               "QUERY_STRING": probe.query.decode("latin-1"), **probe.environ}
    kwargs: dict[str, Any] = {"method": probe.method, "headers": probe.headers,
                              "environ_overrides": environ}
    if probe.body or probe.content_type:
        kwargs["data"] = probe.body
        if probe.content_type is not None:
            kwargs["content_type"] = probe.content_type
    return client.open("/", **kwargs)


@pytest.fixture
def fuzz_app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path, MIGRANTLINE_LOGIN_MAX_FAILURES="100000",
                   MIGRANTLINE_LOGIN_IP_MAX_FAILURES="100000",
                   MIGRANTLINE_RECORDING_HOSTS="http://127.0.0.1")
    cheap_hashes(app)
    yield app
    app.extensions["migrantline"].store.close()


def _audio(app: Flask) -> None:
    """A prompt file that ``/audio/tts/en/fuzz.wav`` serves."""
    import wave

    path = app.extensions["migrantline"].prompts.cache_dir / "generated" / "en" / "fuzz.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(1600))


def _partner(app: Flask) -> int:
    from ussd_app.store import operators as operators_db

    return operators_db.add_partner(app.extensions["migrantline"].store, "Fuzz aid", "NP",
                                    "+977 1", time.time())


def _recorded(app: Flask, server: RecordingServer) -> tuple[int, int, str]:
    """A complaint with a stored voice message: (complaint id, recording id, reference)."""
    complaint = file_complaint(app)
    recordings = app.extensions["migrantline"].recordings
    url = server.route("/fuzz.mp3", Reply(body=b"ID3\x03\x00\x00\x00" + bytes(400)))
    recordings.expect(complaint["reference"], "africastalking", url, 3, key="fuzz")
    deadline = time.monotonic() + 10
    while True:
        rows = recordings.for_complaint(complaint["reference"])
        if rows and rows[0]["status"] == "stored":
            return int(complaint["id"]), int(rows[0]["id"]), str(complaint["reference"])
        assert time.monotonic() < deadline, rows
        time.sleep(0.02)


class Signed:
    """The three kinds of visitor; the signed-in ones signed in again now and then (the
    fuzz may sign them out, disable them or change their language)."""

    def __init__(self, app: Flask):
        self.app = app
        self.ids = {"op": add_operator(app, "op@example.org", "operator"),
                    "boss": add_operator(app, "boss@example.org", "supervisor")}
        self.clients: dict[str, FlaskClient] = {}
        self.tokens: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        accounts = self.app.extensions["dashboard"].accounts
        self.clients = {"anon": self.app.test_client()}
        for who, email in (("op", "op@example.org"), ("boss", "boss@example.org")):
            accounts.set_active(self.ids[who], True)
            client = self.app.test_client()
            assert sign_in(client, email).status_code == 303
            self.clients[who] = client
            self.tokens[who] = csrf(client, "/operator/")


def test_no_request_gets_a_500_a_crash_or_a_hang(
        fuzz_app: Flask, recording_server: RecordingServer,
        caplog: pytest.LogCaptureFixture) -> None:
    app = fuzz_app
    visitors = Signed(app)
    cid, rid, reference = _recorded(app, recording_server)
    _audio(app)
    ids = {"cid": str(cid), "rid": str(rid), "op": str(visitors.ids["op"]),
           "partner": str(_partner(app)), "reference": str(reference)}
    generic, untemplated = _generic(app, ids)
    gen = Generator(SEED, ids, _prefixes(), TEMPLATES + generic)
    caplog.set_level(logging.ERROR)
    failures: list[str] = []
    slowest = (0.0, "")
    answered: dict[str, list[int]] = {}  # endpoint -> statuses
    adapter = app.url_map.bind("localhost")
    started = time.perf_counter()
    for n in range(REQUESTS):
        if n % 200 == 199:
            visitors.refresh()
        who = gen.rng.choice(["anon", "op", "boss"])
        probe = gen.probe(who)
        if who != "anon" and probe.method == "POST" and gen.rng.random() < 0.7:
            probe.body += b"&csrf_token=" + visitors.tokens[who].encode()
            probe.content_type = probe.content_type or "application/x-www-form-urlencoded"
        before = time.perf_counter()
        response = send(visitors.clients[who], probe)
        response.get_data()  # a streamed body (the CSV export) runs here
        took = time.perf_counter() - before
        answered.setdefault(_endpoint(adapter, probe), []).append(response.status_code)
        slowest = max(slowest, (took, probe.describe()))
        if response.status_code >= 500 or took > PER_REQUEST_SECONDS:
            failures.append(f"{response.status_code} in {took:.2f} s: {probe.describe()}")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        if errors:
            failures.append(f"logged {errors[0].getMessage()!r} "
                            f"({(errors[0].exc_text or '')[-600:]}) for {probe.describe()}")
            caplog.clear()
    total = time.perf_counter() - started
    assert not failures, "\n".join(failures[:20])
    assert total < TOTAL_SECONDS, (total, slowest)
    print(f"{REQUESTS} requests in {total:.1f} s; slowest {slowest[0]:.3f} s: {slowest[1][:300]}")
    # Every endpoint was reached, and most got past their first checks (the hostile value
    # was parsed, not just refused for a missing field or a missing sign-in).
    endpoints = {r.endpoint for r in app.url_map.iter_rules()} | {"ussd"}
    assert endpoints <= set(answered), endpoints - set(answered)
    refused_only = [e for e, codes in answered.items() if e not in ("dashboard.static", "static")
                    and e in endpoints - untemplated and all(c >= 400 for c in codes)]
    assert not refused_only, {e: answered[e] for e in refused_only}
    # A normal caller is served afterwards, start to an article.
    phone = Phone(app.test_client())
    assert phone.dial().startswith("CON ")
    assert phone.press("1").startswith("CON ")


# ------------------------------------------------------------ the real server, raw sockets


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """``migrantline serve`` on a loopback port, with the webhook token set."""
    import sys

    tmp = tmp_path_factory.mktemp("fuzz-serve")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRANTLINE_")}
    env.update({"MIGRANTLINE_DATA_DIR": str(tmp / "var"),
                "MIGRANTLINE_CONTENT_DIR": str(DEMO_CONTENT),
                "MIGRANTLINE_SECRET_KEY": TEST_SECRET, **databases.for_folder(tmp / "var"),
                "MIGRANTLINE_WEBHOOK_TOKEN": TOKEN, "MIGRANTLINE_PROMPTS_RENDER": "off",
                # a request that announces a body and never sends it (``Transfer-Encoding:
                # chunked`` on a GET) waits for it: 408 within the bound, not a hang
                "MIGRANTLINE_BODY_TIMEOUT_SECONDS": "1", "MIGRANTLINE_HEADER_TIMEOUT_SECONDS": "1"})
    log = (tmp / "serve.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "migrantline"), "serve",
                             "--port", str(port), "--workers", "1"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 30
        while _status(_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                b"Connection: close\r\n\r\n", 2.0)) != 200:
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail("server did not start: " + (tmp / "serve.log").read_text())
            time.sleep(0.2)
        yield port, tmp / "serve.log"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        log.close()


def _exchange(port: int, data: bytes, timeout: float) -> bytes:
    """Send ``data`` and read what comes back until the server closes the connection
    (every request says ``Connection: close``) or ``timeout`` passes; b"" when the
    connection is refused or the server closed it without a word."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return b""
    with sock:
        deadline = time.monotonic() + timeout
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server closed on a bad request line already: read its answer
        out = b""
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return out


def _status(answer: bytes) -> int | None:
    """The status of the first response, None when the server answered nothing."""
    if not answer.startswith(b"HTTP/"):
        return None
    return int(answer.split(b" ", 2)[1])


def _raw_requests(seed: int) -> list[bytes]:
    """Requests as bytes: each a valid request to one endpoint with one or a few hostile
    parts, some of which no client library would send (raw bytes that are not UTF-8 in
    the request line and headers, NULs, broken framing)."""
    rng = random.Random(seed)
    q = f"token={TOKEN}".encode()
    hop = b"sessionId=raw-1&phoneNumber=%2B9779800000009&serviceCode=%2A384%23&text="
    twilio = b"CallSid=CAraw1&From=%2B9779800000009&To=%2B1&CallStatus=in-progress"
    at_call = b"sessionId=ATraw1&callerNumber=%2B9779800000009&isActive=1"
    targets = [
        (b"/ussd/africastalking?" + q, hop + b"1"),
        (b"/ussd/africastalking?" + q, hop + b"\xff\xfe"),
        (b"/ussd/africastalking?" + q, hop + "١*٩٨".encode()),
        (b"/ussd/africastalking?" + q, hop + b"1%00%E2%80%AE"),
        (b"/ussd/africastalking?" + q + b"&\xff=\xfe", hop + b"1"),
        (b"/voice/twilio?s=1e400&" + q, twilio),
        (b"/voice/twilio?s=\xd9\xa1&w=inf&" + q, twilio + b"&Digits=1"),
        (b"/voice/twilio/status?" + q, twilio + b"&CallStatus=completed&CallDuration=inf"),
        (b"/voice/africastalking?s=nan&" + q, at_call + b"&dtmfDigits=%D9%A1"),
        (b"/voice/africastalking?" + q, at_call + b"&isActive=0&durationInSeconds=1e400"),
        (b"/sms/africastalking?" + q, b"from=%2B9779800000009&text=\xff\xfe%00&id=r1"),
        (b"/sms/kannel?" + q + b"&from=%2B9779800000009&text=\xff\xfe", b""),
        (b"/sms/kannel/delivery?" + q + b"&id=1&type=\xd9\xa1", b""),
        (b"/operator/?page=\xc2\xb2", b""),
        (b"/operator/complaints/" + b"9" * 30, b""),
        (b"/operator/complaints/\xd9\xa1", b""),
        (b"/operator/login?next=\xff\x00", b""),
        (b"/healthz?\xff", b""),
        (b"/audio/\xff\xfe.wav", b""),
        (b"/\xe2\x80\xae/x", b""),
        (b"/" + b"%00" * 10, b""),
    ]
    bad_headers = [b"X-A: \xff\xfe", b"X-B: a\x00b", b"X-C \xe2\x80\xae: 1", b"NoColon",
                   b"Content-Type: application/x-www-form-urlencoded\x00",
                   b"Content-Length: -1", b"Content-Length: 1e400", b"Content-Length: \xd9\xa1",
                   b"Content-Length: " + b"9" * 30, b"Content-Length: 5\r\nContent-Length: 7",
                   b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked",
                   b"Range: bytes=\xd9\xa1-", b"Host: \xff", b"Cookie: session=\xff\x00",
                   b" folded: line", b"X-Long: " + b"a" * 9000, b"Expect: 100-continue",
                   b"Accept-Language: \xd9\xa1;q=1e400", b"X-Twilio-Signature: \xe2\x80\xae"]
    methods = [b"GET", b"POST", b"PUT", b"G\xffT", b"", b"POST\x00", b"CONNECT", b"get"]
    versions = [b"HTTP/1.0", b"HTTP/9.9", b"HTTP/1.1\x00", b"", b"HTTP/\xff"]
    out = []
    for n in range(100):
        path, body = targets[n % len(targets)]
        method = b"POST" if body else b"GET"
        if rng.random() < 0.15:
            method = rng.choice(methods)
        version = rng.choice(versions) if rng.random() < 0.1 else b"HTTP/1.1"
        headers = [b"Host: 127.0.0.1", b"Connection: close"]
        if body:
            headers.append(b"Content-Type: application/x-www-form-urlencoded")
        if rng.random() < 0.35:
            headers += rng.sample(bad_headers, rng.randrange(1, 3))
        if not any(h.lower().startswith((b"content-length", b"transfer-encoding"))
                   for h in headers):
            headers.append(b"Content-Length: " + str(len(body)).encode())
        out.append(method + b" " + path + b" " + version + b"\r\n" + b"\r\n".join(headers)
                   + b"\r\n\r\n" + body)
    return out


def test_raw_bytes_to_the_real_server_get_no_500_and_no_hang(
        served: tuple[int, Path]) -> None:
    port, log = served
    failures = []
    statuses: list[int | None] = []
    started = time.perf_counter()
    for request in _raw_requests(SEED):
        before = time.perf_counter()
        answer = _exchange(port, request, 5.0)
        took = time.perf_counter() - before
        status = _status(answer)
        statuses.append(status)
        # A refusal may be a 4xx or a closed connection (the request line itself is
        # broken); never a 5xx, never a wait for more than a few seconds.
        if (status is not None and status >= 500) or took > 3.0:
            failures.append(f"{status} in {took:.2f} s: {request[:300]!r} -> {answer[:200]!r}")
    assert not failures, "\n".join(failures[:10])
    assert time.perf_counter() - started < 30
    # Both the server's parser and the app's were reached.
    assert statuses.count(200) >= 20 and statuses.count(400) >= 10, statuses
    hop = (b"sessionId=raw-after&phoneNumber=%2B9779800000008&serviceCode=%2A384%23&text=")
    answer = _exchange(port, b"POST /ussd/africastalking?token=" + TOKEN.encode()
                       + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                       b"application/x-www-form-urlencoded\r\nContent-Length: "
                       + str(len(hop)).encode() + b"\r\n\r\n" + hop, 5.0)
    assert _status(answer) == 200, answer
    assert b"\r\n\r\nCON " in answer, answer
    assert b"Traceback" not in log.read_bytes()
