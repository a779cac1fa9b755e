"""A real static HTTP server on 127.0.0.1 for sync tests and the sync benchmark.

It serves a folder the way nginx does for what sync needs (ETag, 304 on
If-None-Match, 206 on Range, and ``gzip_static``: ``<file>.gz`` with
``Content-Encoding: gzip`` to a client that accepts gzip and asks for the
whole file), logs every request, and can be told to
misbehave per path: answer 500, cut a body half-way, corrupt bytes, hang,
or run a hook before the body (to fill a disk mid-download).
"""

from __future__ import annotations

import hashlib
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    status: int = 0
    sent: int = 0
    gzip: bool = False


@dataclass
class Fault:
    action: str  # "500", "404", "cut", "corrupt", "hang", "hook"
    times: int = 1_000_000  # how many requests it applies to
    hook: Callable[[], Any] | None = None
    seconds: float = 0.0


class QuietServer(ThreadingHTTPServer):
    """A test's HTTP server, its request threads daemons."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that cut its connection (the throttling proxy's cuts, a test's own
        timeouts) is part of the test, not an error to print; anything else is."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class StaticServer(QuietServer):
    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.log: list[Request] = []
        self.faults: dict[str, Fault] = {}  # "/latest.json", "/files/<sha>" or "*"
        self.etags = True
        self.ranges = True
        self.gzip_static = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fault(self, path: str) -> Fault | None:
        found = self.faults.get(path) or self.faults.get("*")
        if found is None or found.times <= 0:
            return None
        found.times -= 1
        return found

    def requests_since(self, start: int) -> list[Request]:
        return self.log[start:]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as nginx's tcp_nodelay: no 40 ms stall per keep-alive reply
    server: StaticServer

    def log_message(self, *args: Any) -> None:
        pass

    def _plain(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        request = Request(path, dict(self.headers))
        self.server.log.append(request)
        fault = self.server.fault(path)
        if fault and fault.action == "hang":
            time.sleep(fault.seconds)
        if fault and fault.action in ("500", "404"):
            request.status = int(fault.action)
            self._plain(request.status, "injected failure")
            return
        file = self.server.root / path.lstrip("/")
        if ".." in path.split("/") or not file.is_file():
            request.status = 404
            self._plain(404, "not found")
            return
        data = file.read_bytes()
        etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
        if self.server.etags and self.headers.get("If-None-Match") == etag:
            request.status = 304
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        start = 0
        found = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
        if found and self.server.ranges and int(found.group(1)) < len(data):
            start = int(found.group(1))
        body = data[start:]
        packed = file.with_name(file.name + ".gz")
        gzipped = (self.server.gzip_static and not start and packed.is_file()
                   and "gzip" in (self.headers.get("Accept-Encoding") or ""))
        if gzipped:
            body = packed.read_bytes()
        if fault and fault.action == "corrupt":  # one byte flipped in what is sent
            body = body[:-1] + bytes([body[-1] ^ 0xFF]) if body else b"x"
        request.status = 206 if start else 200
        self.send_response(request.status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if gzipped:
            request.gzip = True
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        if self.server.etags:
            self.send_header("ETag", etag)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if fault and fault.action == "hook" and fault.hook is not None:
            fault.hook()
        if fault and fault.action == "cut":
            half = body[: len(body) // 2]
            self.wfile.write(half)
            self.wfile.flush()
            request.sent = len(half)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)
        request.sent = len(body)


@contextmanager
def serving(root: Path) -> Iterator[StaticServer]:
    server = StaticServer(root)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
