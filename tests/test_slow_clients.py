"""Slow and hostile clients against the real production server, with raw sockets.

Under granian's WSGI interface two clients that sent headers and part of a
body froze every worker for as long as they liked. ``migrantline serve`` now
reads bodies on the event loop under a timeout (ussd_app/server.py) and
granian closes connections whose headers are late: these tests hold 50 such
connections open and check that a caller, the health check and the
dashboard still answer at once, and that the server cuts every held
connection after its timeout.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_cli import BIN, env_for, free_port

TIMEOUT = 2.0  # header and body timeouts of the server under test, in seconds
TOKEN = "slow-test-token"  # webhooks authenticated, as a production install is
PROMPT = 1.5  # "at once" on a loaded CI, below TIMEOUT (what a stalled worker waits out)
PARTIAL_BODY = (b"POST /ussd/africastalking?token=" + TOKEN.encode() + b" HTTP/1.1\r\n"
                b"Host: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 1000\r\n\r\nsessionId=")  # 10 of the 1,000 bytes promised
PARTIAL_HEADERS = b"POST /ussd/africastalking HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"


@dataclass
class Server:
    port: int
    recordings: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module", params=[1, 3], ids=["1-thread", "3-threads"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``migrantline serve`` with 2 workers and short timeouts.

    One thread per worker (the default) runs the app on the event loop's thread;
    more run it in a pool: both must keep slow clients away from the app.
    """
    tmp = tmp_path_factory.mktemp("slow")
    port = free_port()
    env = env_for(tmp, MIGRANTLINE_HEADER_TIMEOUT_SECONDS=str(TIMEOUT),
                  MIGRANTLINE_BODY_TIMEOUT_SECONDS=str(TIMEOUT),
                  MIGRANTLINE_WEBHOOK_TOKEN=TOKEN, MIGRANTLINE_PROMPTS_RENDER="off",
                  MIGRANTLINE_RECORDINGS_DIR=str(tmp / "recordings"))
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "2",
                             "--threads", str(request.param)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 30
        while not _answers(port):
            if proc.poll() is not None or time.time() > deadline:
                output = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"server did not start: {output}")
            time.sleep(0.2)
        yield Server(port, tmp / "recordings")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)  # drains its output while it stops


def _answers(port: int) -> bool:
    try:
        return get(port, "/healthz")[0] == 200
    except OSError:
        return False


def get(port: int, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.msg, response.read()  # headers in any case
    finally:
        conn.close()


def hop(port: int, session: str, text: str) -> str:
    body = urllib.parse.urlencode({"sessionId": session, "serviceCode": "*384*1234#",
                                   "phoneNumber": "+9779800031337", "networkCode": "99999",
                                   "text": text})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", f"/ussd/africastalking?token={TOKEN}", body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


def connect(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(data)
    return sock


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # an answer or a close: no longer held
    except BlockingIOError:
        return True  # nothing to read and not closed: still held
    except OSError:
        pass
    finally:
        sock.setblocking(True)
    return False


def answer_of(sock: socket.socket, within: float, server: str = "the server") -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not)."""
    sock.settimeout(within)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        pytest.fail(f"{server} did not close a held connection within {within} s")
    except (ConnectionResetError, ssl.SSLError):  # a reset, or TLS cut short (behind nginx)
        pass
    return data


def timed(call: object, *args: object) -> tuple[float, object]:
    started = time.monotonic()
    result = call(*args)  # type: ignore[operator]
    return time.monotonic() - started, result


def test_fifty_slow_clients_do_not_stall_the_service(server: Server) -> None:
    bodies = [connect(server.port, PARTIAL_BODY) for _ in range(40)]
    headers = [connect(server.port, PARTIAL_HEADERS) for _ in range(10)]
    held_at = time.monotonic()
    time.sleep(0.2)  # every held request has reached the server

    session = f"ATUid_slow_{time.time_ns()}"
    inputs: list[str] = []
    for key in ["", "1", "1", "1"]:  # dial, English, a menu, an article
        if key:
            inputs.append(key)
        took, screen = timed(hop, server.port, session, "*".join(inputs))
        assert str(screen).startswith("CON "), screen
        assert took < PROMPT, f"a USSD hop took {took:.2f} s with 50 slow clients held"
    for path in ("/healthz", "/operator/login"):
        took, (status, _, _) = timed(get, server.port, path)  # type: ignore[misc]
        assert status == 200 and took < PROMPT, (path, status, took)
    assert time.monotonic() - held_at < TIMEOUT, "too slow to tell: the timeouts freed them"
    assert all(still_open(sock) for sock in bodies + headers), "held until now, not refused"

    for sock in bodies:  # each is answered 408 and closed once its body is late
        answer = answer_of(sock, TIMEOUT + 3)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert b"connection: close" in answer.lower()
        sock.close()
    for sock in headers:  # closed without a word: no request was ever complete
        assert answer_of(sock, TIMEOUT + 3) == b""
        sock.close()
    assert time.monotonic() - held_at < TIMEOUT + 3


def test_a_client_that_sends_headers_a_byte_at_a_time_is_cut(server: Server) -> None:
    sock = connect(server.port, b"G")
    started = time.monotonic()
    try:
        for byte in b"ET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40:
            time.sleep(0.1)
            sock.send(bytes([byte]))
        pytest.fail("the server kept reading headers past its timeout")
    except (BrokenPipeError, ConnectionResetError):
        assert time.monotonic() - started < TIMEOUT + 1.5
    finally:
        sock.close()


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    sock = connect(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    answer = answer_of(sock, TIMEOUT + 3)  # the answer, then nothing, then the close
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert TIMEOUT - 0.5 < time.monotonic() - started < TIMEOUT + 3
    sock.close()


def test_a_body_declared_over_64_kib_is_refused_before_it_is_sent(server: Server) -> None:
    sock = connect(server.port, PARTIAL_BODY.replace(b"Content-Length: 1000",
                                                     b"Content-Length: 10000000"))
    started = time.monotonic()
    answer = answer_of(sock, TIMEOUT)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413 ") and b"request too large" in answer
    assert time.monotonic() - started < PROMPT


def test_a_chunked_body_over_64_kib_is_refused(server: Server) -> None:
    sock = connect(server.port, b"POST /ussd/africastalking HTTP/1.1\r\nHost: x\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"a" * 8192
    try:
        for _ in range(9):  # 72 KiB
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused while it was still sending
    answer = answer_of(sock, TIMEOUT + 3)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]


def test_a_chunked_body_within_the_limit_reaches_the_app(server: Server) -> None:
    form = urllib.parse.urlencode({"sessionId": "ATUid_chunked", "phoneNumber": "+97798000",
                                   "text": ""}).encode()
    sock = connect(server.port, b"POST /ussd/africastalking?token=" + TOKEN.encode()
                   + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   b"Content-Type: application/x-www-form-urlencoded\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n"
                   + b"%x\r\n%s\r\n0\r\n\r\n" % (len(form), form))
    answer = answer_of(sock, 5)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 ") and b"\r\n\r\nCON " in answer


def test_a_body_shorter_than_its_content_length_is_refused(server: Server) -> None:
    sock = connect(server.port, PARTIAL_BODY)
    sock.shutdown(socket.SHUT_WR)  # 10 of 1,000 bytes, then the end of the stream
    answer = answer_of(sock, TIMEOUT + 3)
    sock.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer[:80]


@pytest.mark.parametrize("length", ["+5", "\u0661\u0660", "1_0", "-1", "5, 5"])
def test_a_malformed_content_length_is_refused(server: Server, length: str) -> None:
    sock = connect(server.port, PARTIAL_BODY.replace(b"Content-Length: 1000",
                                                     b"Content-Length: " + length.encode()))
    answer = answer_of(sock, TIMEOUT + 3)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]


def test_a_client_that_hangs_up_mid_body_costs_nothing(server: Server) -> None:
    for _ in range(20):
        connect(server.port, PARTIAL_BODY).close()
    took, screen = timed(hop, server.port, f"ATUid_after_{time.time_ns()}", "")
    assert str(screen).startswith("CON ") and took < PROMPT


def test_large_audio_is_served_whole_with_its_etag(server: Server) -> None:
    """A response over the bridge's batch size (prompt audio) streams, ETag and 304 intact."""
    folder = server.recordings / "en"
    folder.mkdir(parents=True, exist_ok=True)
    with wave.open(str(folder / "long.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(range(256)) * 4096)  # 1 MiB of samples
    path = "/audio/rec1/en/long.wav"
    status, headers, body = get(server.port, path)
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    assert body == (folder / "long.wav").read_bytes()
    status, _, body = get(server.port, path, {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    status, head, body = get(server.port, path, method="HEAD")
    assert status == 200 and body == b"" and head["ETag"] == headers["ETag"]
