"""A real HTTP client that posts as Flask's test client does.

Why: conftest.Phone and voice_phone.VoiceCaller drive the app through a Flask
test client; tests of whole deployments (HAProxy in front of several ``serve``
processes, PostgreSQL stopped under a running ``serve``) drive the same walks
over real sockets with this instead.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message


class Response:
    """What Phone and VoiceCaller read of a Flask test response, from a real one
    (headers looked up case-insensitively: granian sends them in lower case)."""

    def __init__(self, status: int, headers: Message, body: bytes):
        self.status_code = status
        self.headers = headers
        self.mimetype = str(headers.get("Content-Type", "")).split(";")[0].strip()
        self.body = body

    def get_data(self, as_text: bool = False) -> str | bytes:
        return self.body.decode() if as_text else self.body


@dataclass
class HttpClient:
    """Posts forms to ``127.0.0.1:port``, adding ``?token=`` when given; notes which
    node answered each request (HAProxy's X-MigrantLine-Node header, or "?")."""

    port: int
    token: str | None = None
    served_by: list[str] = field(default_factory=list)

    def post(self, path: str, data: dict[str, str],
             headers: dict[str, str] | None = None) -> Response:
        if self.token and "token=" not in path:
            path += ("&" if "?" in path else "?") + f"token={self.token}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=urllib.parse.urlencode(data).encode(),
            headers=headers or {}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                response = Response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as error:
            response = Response(error.code, error.headers, error.read())
        self.served_by.append(str(response.headers.get("X-MigrantLine-Node", "?")))
        return response
