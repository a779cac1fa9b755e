"""Kannel for real: fakesmsc plays the phone network, bearerbox and smsbox the gateway.

An SMS from a phone reaches the app through smsbox's get-url; the reply goes
into the outbox, and the outbox worker delivers it through sendsms, back to
the phone. Needs Debian's ``kannel`` and ``kannel-extras`` (``.ci/run``
installs them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus, unquote_to_bytes

import pytest
from werkzeug.serving import make_server

from sms_flows.outbox import OutboxWorker
from ussd_app.complaints.service import Caller, show_reference
from ussd_app.providers.kannel import KannelSms

from .conftest import make_app

FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
pytestmark = pytest.mark.skipif(
    shutil.which("bearerbox") is None and not Path("/usr/sbin/bearerbox").exists(),
    reason="Kannel is not installed (apt-get install kannel kannel-extras; .ci/run does)")
SBIN = Path("/usr/sbin")
PHONE = "+9779811100001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[dict]:
    app = make_app(tmp_path)
    app_port = free_port()
    server = make_server("127.0.0.1", app_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ports = {name: free_port() for name in ("admin", "smsbox", "smsc", "sendsms")}
    conf = tmp_path / "kannel.conf"
    conf.write_text(f"""
group = core
admin-port = {ports['admin']}
admin-password = admin
smsbox-port = {ports['smsbox']}
box-allow-ip = 127.0.0.1
log-file = "{tmp_path}/bearerbox.log"

group = smsc
smsc = fake
smsc-id = fake
port = {ports['smsc']}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {ports['sendsms']}
global-sender = 5555
log-file = "{tmp_path}/smsbox.log"

group = sendsms-user
username = ml
password = pw

group = sms-service
keyword = default
get-url = "http://127.0.0.1:{app_port}/sms/kannel?from=%p&to=%P&text=%a&id=%I"
max-messages = 0
""")
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
        procs.append(proc)
        return proc

    try:
        start(str(SBIN / "bearerbox"), "-v", "1", str(conf))
        wait_port(ports["smsbox"])
        start(str(SBIN / "smsbox"), "-v", "1", str(conf))
        wait_port(ports["sendsms"])
        yield {"app": app, "ports": ports, "start": start, "tmp": tmp_path}
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.shutdown()
        app.extensions["migrantline"].store.close()


def test_an_sms_round_trip_through_kannel(gateway: dict) -> None:
    app, ports = gateway["app"], gateway["ports"]
    store = app.extensions["migrantline"].store
    lines: list[str] = []
    phone = gateway["start"](str(FAKESMSC), "-H", "127.0.0.1", "-r", str(ports["smsc"]),
                             "-m", "1", f"{PHONE} 5555 text help")
    threading.Thread(target=lambda: lines.extend(iter(phone.stdout.readline, "")),
                     daemon=True).start()

    deadline = time.time() + 20  # the phone's SMS reaches the app through get-url
    while not store.outbox() and time.time() < deadline:
        time.sleep(0.1)
    queued = store.outbox()
    assert len(queued) == 1, (gateway["tmp"] / "smsbox.log").read_text()[-2000:]
    services = app.extensions["migrantline"]
    worker = OutboxWorker(store, KannelSms(
        f"http://127.0.0.1:{ports['sendsms']}/cgi-bin/sendsms", "ml", "pw", "5555"),
        services.ussd.sealer, services.ussd.hasher)
    assert worker.drain() == {"sent": 1}

    deadline = time.time() + 20  # and the reply reaches the phone through sendsms
    while not any("Got message" in line for line in lines) and time.time() < deadline:
        time.sleep(0.1)
    got = [unquote_plus(line) for line in lines if "Got message" in line]
    assert got, "".join(lines)
    assert "5555" in got[0] and PHONE.lstrip("+") in got[0]
    assert "Help now" in got[0]


def decode_mt(parts: list[str]) -> str:
    """What the phone shows: fakesmsc prints 'sender receiver text|ucs-2 data'.

    UCS-2 data is URL-encoded UTF-16; plain text arrives one line per printed
    message, because the fake SMSC's protocol is line based.
    """
    _, _, kind, data = parts[0].split(" ", 3)
    if kind == "ucs-2":
        return unquote_to_bytes(data).decode("utf-16-be")
    return "\n".join(unquote_plus(p) for p in [data, *parts[1:]])


def test_a_whole_conversation_through_kannel(gateway: dict) -> None:
    """Walk a menu, ask for an agency and a complaint status by keyword, stop and start."""
    app, ports = gateway["app"], gateway["ports"]
    store = app.extensions["migrantline"].store
    services = app.extensions["migrantline"]
    worker = OutboxWorker(store, KannelSms(
        f"http://127.0.0.1:{ports['sendsms']}/cgi-bin/sendsms", "ml", "pw", "5555"),
        services.ussd.sealer, services.ussd.hasher)
    phone_number = "+9779811100002"

    def exchange(text: str) -> str:
        """One SMS from the phone, one reply back to it, both through Kannel."""
        before = len(store.outbox())
        lines: list[str] = []
        phone = gateway["start"](str(FAKESMSC), "-H", "127.0.0.1", "-r", str(ports["smsc"]),
                                 "-m", "1", f"{phone_number} 5555 text {text}")
        threading.Thread(target=lambda: lines.extend(iter(phone.stdout.readline, "")),
                         daemon=True).start()
        try:
            deadline = time.time() + 20
            while len(store.outbox()) == before and time.time() < deadline:
                time.sleep(0.05)
            assert len(store.outbox()) > before, f"no reply queued for {text!r}"
            assert worker.drain().get("sent") == 1
            deadline = time.time() + 20
            while not any("Got message" in line for line in lines) and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # fakesmsc's line protocol shows each line of a reply separately
            got = [line.split("Got message", 1)[1].split(": <", 1)[1].rstrip(">\n")
                   for line in lines if "Got message" in line]
            assert got, f"no reply reached the phone for {text!r}"
            return decode_mt(got)
        finally:
            phone.terminate()
            phone.wait(timeout=10)

    assert "HELP" in exchange("hello")  # an unknown word gets a short help text
    languages = exchange("language")
    assert "English" in languages and "العربية" in languages and "नेपाली" in languages
    assert "Before you go" in exchange("1")  # English: the main menu
    assert "contract" in exchange("1").lower()  # 1: before you go
    agency = exchange("agency sunrise himal")
    assert "Sunrise Himal" in agency and "Licensed until" in agency
    filed = services.complaints.file(
        "test:kannel", Caller("sms", phone_number, services.ussd.hasher.key(phone_number)),
        "en", {"category": "unpaid_wages", "contact": "never"})
    status = exchange(f"status {filed['reference']}")
    assert f"Case {show_reference(filed['reference'])}" in status and "Received" in status
    assert "Check the number" in exchange("status 12345678")
    assert "no more messages" in exchange("STOP")
    assert "on again" in exchange("start")
