"""A local stand-in for the SMS providers' send APIs, for tests and benchmarks.

It answers as Africa's Talking (``POST /version1/messaging``), Twilio
(``POST /2010-04-01/Accounts/<sid>/Messages.json``) and Kannel
(``GET /cgi-bin/sendsms``) do, with the shapes from their documentation,
records what it was sent, and can be told to fail (500) or hang for a while.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class StandIn:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0  # answer this many requests with a 500
        self.delay = 0.0  # seconds to wait before answering
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # headers and body go in two writes: no Nagle delay
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server convention
                self._handle(dict(parse_qsl(urlsplit(self.path).query)))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self._handle(dict(parse_qsl(self.rfile.read(length).decode())))

            def _handle(self, fields: dict[str, str]) -> None:
                status, kind, body = standin.answer(urlsplit(self.path).path, fields)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, "text/plain", "internal error"
            self.received.append({"path": path, **fields})
        if path == "/version1/messaging":
            message_id = f"ATXid_{uuid.uuid4().hex[:16]}"
            return 201, "application/json", json.dumps({"SMSMessageData": {
                "Message": "Sent to 1/1 Total Cost: KES 0.8000",
                "Recipients": [{"statusCode": 101, "number": fields.get("to", ""),
                                "status": "Success", "cost": "KES 0.8000",
                                "messageId": message_id}]}})
        if path.startswith("/2010-04-01/Accounts/") and path.endswith("/Messages.json"):
            sid = "SM" + uuid.uuid4().hex
            return 201, "application/json", json.dumps({
                "sid": sid, "status": "queued", "to": fields.get("To"),
                "from": fields.get("From"), "body": fields.get("Body"),
                "account_sid": path.split("/")[3], "num_segments": "1",
                "direction": "outbound-api", "api_version": "2010-04-01"})
        if path == "/cgi-bin/sendsms":
            return 202, "text/plain", "0: Accepted for delivery"
        return 404, "text/plain", "not found"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
