"""The HTTP boundary between the service and its providers.

Every request to a provider (send an SMS, place a call, fetch a recording)
is a ``Request`` handed to a ``Transport``: any callable that returns a
``Response`` or raises ``TransportError`` when no answer came. The default,
``HttpTransport``, sends it with ``requests``; a test passes a plain function
instead and plays Africa's Talking or Twilio at the HTTP boundary (as
httpx's ``MockTransport(handler)`` does), without a server or patching.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests

from ussd_app.errors import TransportError

TIMEOUT = (3.05, 10.0)  # (connect, read) seconds, unless a caller asks for less
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Request:
    """One HTTP request to a provider; ``stream``: the body is read as it arrives."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout: tuple[float, float] = TIMEOUT
    stream: bool = False

    def form(self) -> dict[str, str]:
        """The body's fields, for a handler that checks what was sent."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass
class Response:
    """A provider's answer. Header names are looked up case-insensitively."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: Iterator[bytes] | None = None  # a streamed body, read once
    close: Callable[[], None] = lambda: None

    def header(self, name: str, default: str = "") -> str:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), default)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def iter_bytes(self) -> Iterator[bytes]:
        """The body in pieces; ``TransportError`` if the connection fails midway."""
        if self.chunks is None:
            for start in range(0, len(self.body), CHUNK):
                yield self.body[start:start + CHUNK]
            return
        yield from self.chunks


Transport = Callable[[Request], Response]


def form(fields: Mapping[str, Any]) -> bytes:
    """A form body (application/x-www-form-urlencoded), in the fields' order."""
    return urlencode({k: v for k, v in fields.items() if v is not None}).encode()


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class HttpTransport:
    """The default transport: ``requests``, one session (kept-alive connections) each,
    redirects never followed (the caller decides where to go next)."""

    def __init__(self) -> None:
        self.session = requests.Session()

    def __call__(self, request: Request) -> Response:
        try:
            answer = self.session.request(request.method, request.url,
                                          headers=dict(request.headers),
                                          data=request.body or None, timeout=request.timeout,
                                          allow_redirects=False, stream=request.stream)
        except requests.RequestException as exc:
            raise TransportError(type(exc).__name__) from None
        headers = dict(answer.headers)
        if request.stream:
            return Response(answer.status_code, headers, chunks=_chunks(answer),
                            close=answer.close)
        return Response(answer.status_code, headers, answer.content)


def _chunks(answer: requests.Response) -> Iterator[bytes]:
    try:
        yield from answer.iter_content(CHUNK)
    except requests.RequestException as exc:
        raise TransportError(type(exc).__name__) from None


def default_transport() -> Transport:
    return HttpTransport()
