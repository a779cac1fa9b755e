"""What every URL is held to before a view runs: ids in bounds, paths in UTF-8.

The Werkzeug side of ``parsing``: kept apart so that the engine, which reads
handset keys with ``parsing``, imports nothing of Flask's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.routing import BaseConverter, ValidationError

from ussd_app.parsing import MAX_DIGITS, MAX_ID, bounded_int


class IdConverter(BaseConverter):
    """``<int:...>`` in every route: 1 to 18 ASCII digits, so that ``/complaints/١``, a
    30-digit id or ``/complaints/-1`` is a 404, never a lookup that overflows SQLite."""

    regex = rf"[0-9]{{1,{MAX_DIGITS}}}"
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = bounded_int(value, 0, MAX_ID)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: object) -> str:
        return str(int(value))  # type: ignore[call-overload]


class Utf8Urls:
    """WSGI middleware: a path or query string that is not UTF-8 gets a plain 400.

    Why: a raw byte such as ``\\xff`` in the query string (not ``%FF``, which is
    decoded leniently) reaches the app as is, and Werkzeug's ``request.args`` and
    ``request.full_path`` then raise ``UnicodeDecodeError``: a 500 on every view
    that reads them. Checked once here, in front of every endpoint.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        for name in ("PATH_INFO", "QUERY_STRING"):
            value = environ.get(name) or ""
            try:  # WSGI gives the raw bytes as a latin-1 string
                value.encode("latin-1").decode("utf-8")
            except UnicodeEncodeError:
                pass  # already text (not from a server): nothing to check
            except UnicodeDecodeError:
                body = b"bad request: the URL is not valid UTF-8"
                start("400 BAD REQUEST", [("Content-Type", "text/plain; charset=utf-8"),
                                          ("Content-Length", str(len(body)))])
                return [body]
        return self.app(environ, start)
