"""deploy/nginx.conf, run by a real nginx in front of a real ``migrantline serve``.

The sample is used as shipped; only ports, file paths, the user and the
timeouts (shorter, so the test is quick) are replaced. Requests go through
TLS as a provider's would, and slow clients are held against nginx to show
that it cuts them while the service keeps answering.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_cli import BIN, env_for, free_port
from .test_slow_clients import answer_of

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(
    NGINX is None or shutil.which("openssl") is None,
    reason="nginx (and openssl) not installed: apt-get install nginx openssl (.ci/run does)")
SAMPLE = ROOT / "deploy" / "nginx.conf"
TIMEOUT = 2  # nginx's header and body timeouts in this test, in seconds
TOKEN = "nginx-test-token"


@dataclass
class Proxy:
    https: int
    http: int
    context: ssl.SSLContext
    log: Path


def configure(sample: str, tmp: Path, app_port: int, https: int, plain: int) -> str:
    """The sample with this test's ports, paths and short timeouts; the rest untouched."""
    swaps = [
        (r"(?m)^user www-data;\n", ""),
        (r"pid /run/nginx.pid;", f"pid {tmp}/nginx.pid;"),
        (r"/var/log/nginx/", f"{tmp}/"),
        (r"include /etc/nginx/mime.types;",
         f"client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; "
         f"fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; "
         f"scgi_temp_path {tmp}/scgi;"),
        (r"server 127\.0\.0\.1:5000;", f"server 127.0.0.1:{app_port};"),
        (r"listen 80;", f"listen 127.0.0.1:{plain};"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;"),
        (r"/etc/letsencrypt/live/migrantline\.example\.org/", f"{tmp}/"),
        (r"client_header_timeout 10s;", f"client_header_timeout {TIMEOUT}s;"),
        (r"client_body_timeout 10s;", f"client_body_timeout {TIMEOUT}s;"),
    ]
    for pattern, replacement in swaps:
        sample, count = re.subn(pattern, replacement, sample)
        assert count, f"deploy/nginx.conf no longer has {pattern!r}: update this test"
    return sample


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("nginx")
    app_port, https, plain = free_port(), free_port(), free_port()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tmp / "privkey.pem"), "-out", str(tmp / "fullchain.pem")],
                   check=True, capture_output=True)
    conf = tmp / "nginx.conf"
    conf.write_text(configure(SAMPLE.read_text(), tmp, app_port, https, plain))
    # `serve` uses its own (longer) timeouts: what is cut below, nginx cut
    app = subprocess.Popen([str(BIN), "serve", "--port", str(app_port), "--workers", "2"],
                           cwd=ROOT, env=env_for(tmp, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN,
                                                 MIGRANTLINE_PROMPTS_RENDER="off",
                                                 MIGRANTLINE_TRUSTED_PROXIES="127.0.0.1",
                                                 MIGRANTLINE_LOGIN_IP_MAX_FAILURES="3"),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           start_new_session=True)
    nginx = subprocess.Popen([str(NGINX), "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
    context = ssl.create_default_context(cafile=str(tmp / "fullchain.pem"))
    try:
        deadline = time.time() + 30
        while True:
            try:
                if request(https, context, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            for proc in (app, nginx):
                if proc.poll() is not None:
                    output = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"{proc.args[0]} did not start: {output}")
            if time.time() > deadline:
                pytest.fail("nginx in front of serve did not answer /healthz in 30 s")
            time.sleep(0.2)
        yield Proxy(https, plain, context, tmp / "access.log")
    finally:
        for proc in (nginx, app):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (nginx, app):
            proc.communicate(timeout=30)  # drains its output while it stops


def request(port: int, context: ssl.SSLContext | None, method: str, path: str,
            body: str | None = None, headers: dict[str, str] | None = None,
            source: str = "127.0.0.1") -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request; ``source`` is the client's own address (any of 127.0.0.0/8)."""
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context,
                                    source_address=(source, 0))
        if context else http.client.HTTPConnection("127.0.0.1", port, timeout=5,
                                                   source_address=(source, 0)))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.msg, response.read()
    finally:
        conn.close()


def tls_socket(proxy: Proxy, data: bytes) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", proxy.https), timeout=5)
    sock = proxy.context.wrap_socket(raw, server_hostname="127.0.0.1")
    sock.sendall(data)
    return sock


def until_closed(sock: socket.socket, within: float) -> bytes:
    return answer_of(sock, within, "nginx")


def test_a_ussd_hop_and_healthz_through_nginx(proxy: Proxy) -> None:
    status, _, body = request(proxy.https, proxy.context, "GET", "/healthz")
    assert status == 200 and b'"status":"ok"' in body
    form = urllib.parse.urlencode({"sessionId": "ATUid_nginx", "serviceCode": "*384*1234#",
                                   "phoneNumber": "+9779800042424", "text": ""})
    status, headers, body = request(
        proxy.https, proxy.context, "POST", f"/ussd/africastalking?token={TOKEN}", form,
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and body.decode().startswith("CON ") and "English" in body.decode()
    assert headers["Strict-Transport-Security"] and "/" not in headers["Server"]  # no version


def test_plain_http_only_redirects_to_https(proxy: Proxy) -> None:
    status, headers, _ = request(proxy.http, None, "POST", f"/ussd/africastalking?token={TOKEN}",
                                 "text=", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 301 and headers["Location"].startswith("https://")


def test_the_access_log_keeps_no_token_and_no_number(proxy: Proxy) -> None:
    request(proxy.https, proxy.context, "POST", f"/ussd/africastalking?token={TOKEN}",
            "sessionId=ATUid_log&phoneNumber=%2B9779800071717&text=",
            {"Content-Type": "application/x-www-form-urlencoded"})
    time.sleep(0.2)
    log = proxy.log.read_text()
    assert "/ussd/africastalking" in log
    assert TOKEN not in log and "9779800071717" not in log


def test_a_body_over_64_kib_is_refused_by_nginx(proxy: Proxy) -> None:
    status, _, _ = request(proxy.https, proxy.context, "POST",
                           f"/ussd/africastalking?token={TOKEN}", "text=" + "1*" * 40_000,
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413


def test_slow_clients_are_cut_by_nginx_while_the_service_answers(proxy: Proxy) -> None:
    partial_body = tls_socket(proxy, b"POST /ussd/africastalking HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                                     b"Content-Length: 1000\r\n\r\nsessionId=")
    held = [tls_socket(proxy, b"POST /ussd/africastalking HTTP/1.1\r\nHost: x\r\n")
            for _ in range(20)]
    silent = [socket.create_connection(("127.0.0.1", proxy.https)) for _ in range(20)]  # no TLS
    started = time.monotonic()
    for _ in range(3):  # meanwhile callers and operators are answered at once
        took = time.monotonic()
        assert request(proxy.https, proxy.context, "GET", "/healthz")[0] == 200
        assert request(proxy.https, proxy.context, "GET", "/operator/login")[0] == 200
        assert time.monotonic() - took < 1
    for sock in [partial_body, *held, *silent]:  # each closed (with or without a 408)
        answer = until_closed(sock, TIMEOUT + 3)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        sock.close()
    assert time.monotonic() - started < TIMEOUT + 4


def failed_sign_in(proxy: Proxy, source: str, email: str) -> int:
    """A wrong password typed on the login page, from the client address ``source``."""
    _, headers, page = request(proxy.https, proxy.context, "GET", "/operator/login",
                               source=source)
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the login page"
    form = urllib.parse.urlencode({"csrf_token": found.group(1).decode(), "email": email,
                                   "password": "wrong-wrong-wrong"})
    status, _, _ = request(proxy.https, proxy.context, "POST", "/operator/login", form,
                           {"Content-Type": "application/x-www-form-urlencoded",
                            "Cookie": cookie, "X-Forwarded-For": "127.0.0.3"}, source=source)
    return status


def test_sign_in_limits_count_each_client_behind_the_proxy(proxy: Proxy) -> None:
    """One guesser locks out its own address, not every operator behind nginx.

    The guesser also claims another client's address in X-Forwarded-For:
    nginx replaces the header, so the claim is not believed.
    """
    codes = [failed_sign_in(proxy, "127.0.0.2", f"guess{i}@example.org") for i in range(4)]
    assert codes[0] == 401 and codes[-1] == 429  # MIGRANTLINE_LOGIN_IP_MAX_FAILURES=3
    assert failed_sign_in(proxy, "127.0.0.3", "op@example.org") == 401  # not locked
