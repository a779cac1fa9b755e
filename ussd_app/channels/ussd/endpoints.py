"""Africa's Talking USSD: form fields in, ``CON``/``END`` text out.

Only parsing, rendering and error shapes live here; what a hop shows is
decided by ``sessions.UssdSessions`` and the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from ussd_app.engine import messages as m
from ussd_app.forms import parse_form
from ussd_app.parsing import bounded_int
from ussd_app.providers import africastalking

log = logging.getLogger(__name__)


PATH = "/ussd/africastalking"
MAX_BODY = 64 * 1024
FORM = "application/x-www-form-urlencoded"
StartResponse = Callable[..., Any]


class UssdEndpoint:
    """WSGI middleware that answers ``POST /ussd/africastalking`` and passes the rest on.

    Why not a Flask view: this is the one request a caller waits on, many times
    a session, and Flask's request context and form parser cost more than
    computing the screen (measured in bench/run_ussd.py). The standard library
    parses a hop's five form fields; everything else stays in Flask.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], services: Any, auth: Any):
        self.app, self.services, self.auth = app, services, auth  # a webhook_auth.WebhookAuth

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start)
        if environ.get("REQUEST_METHOD") != "POST":
            return _respond(start, 405, "method not allowed", [("Allow", "POST")])
        try:
            status, body = self.handle(environ)
        except Exception:  # never a 500 or a traceback to the handset
            log.exception("USSD hop failed")
            status, body = 200, "END " + self.services.t(self._lang(), m.UNAVAILABLE)
        return _respond(start, status, body)

    def handle(self, environ: dict[str, Any]) -> tuple[int, str]:
        refused = self.auth.check("ussd_africastalking", environ)
        if refused:  # before the body is read: nothing of a forger's hop is looked at
            return 403, refused
        length = bounded_int(str(environ.get("CONTENT_LENGTH") or "0"), 0, 10**12)
        if length is None:  # '-1' would read to the end of the stream; '١٢', '1e3': no
            return 400, "bad Content-Length"
        if length > MAX_BODY:
            return 413, "request too large"
        if not str(environ.get("CONTENT_TYPE", "")).startswith(FORM):
            return 400, "not a USSD callback: expected a form (sessionId, phoneNumber, text)"
        raw = environ["wsgi.input"].read(length) if length else b""
        form = dict(parse_form(raw.decode("utf-8", "replace"), errors="replace"))
        hop = africastalking.ussd_hop(form)
        if hop is None:
            return 400, "not a USSD callback: sessionId and phoneNumber are required"
        answer = self.services.ussd.answer(hop.session_id, hop.phone, hop.text)
        if answer is None:
            return 200, "END " + self.services.t(self._lang(), m.UNAVAILABLE)
        return 200, ("END " if answer.end else "CON ") + answer.text

    def _lang(self) -> str:
        tree = self.services.content.current
        return tree.default_language if tree else "en"


_REASONS = {200: "OK", 400: "BAD REQUEST", 403: "FORBIDDEN", 405: "METHOD NOT ALLOWED",
            413: "REQUEST ENTITY TOO LARGE"}


def _respond(start: StartResponse, status: int, body: str,
             headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = body.encode("utf-8")
    start(f"{status} {_REASONS.get(status, '')}",
          [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))),
           *(headers or [])])
    return [data]
