"""What ``migrantline serve`` runs in each granian worker: RSGI in front of our WSGI app.

Why not granian's WSGI interface: it hands the request to a blocking thread
as soon as the headers are in and the body is read, lazily, from inside that
thread. A client that sends ``Content-Length: 1000`` and ten bytes then holds
the thread as long as it likes; two such clients froze a default install
(2 workers x 1 thread). Here the body is read on the worker's event loop,
where a waiting connection costs a coroutine, not a thread: the whole body
must arrive within ``MIGRANTLINE_BODY_TIMEOUT_SECONDS`` (else 408) and within
the app's 64 KiB (else 413). Only a complete request reaches the unchanged
WSGI app (the USSD middleware and Flask): on the loop's own thread with
``--threads 1`` (the default), else in a pool of ``--threads`` threads.
Headers are bounded by granian itself (``header_read_timeout``, which also
closes idle keep-alive connections), see ``http1_settings``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from typing import TYPE_CHECKING, Any

from ussd_app import settings
from ussd_app.job_records.scans import UPLOAD_MAX_BODY, UPLOAD_PATH

if TYPE_CHECKING:
    from ussd_app.settings import Settings

from ussd_app.errors import InvalidInput

log = logging.getLogger(__name__)

THREADS_ENV = "MIGRANTLINE_SERVE_THREADS"  # set by `serve --threads` for its workers
DEFAULT_MAX_BODY = 64 * 1024  # when the app does not say (it does: MAX_CONTENT_LENGTH)
BATCH = 256 * 1024  # a response bigger than this is streamed in batches of this size
SWEEP_SECONDS = 0.25  # how often late bodies are looked for (a cut comes at most this late)
Refusal = tuple[int, str]
_REASONS = {400: "bad request: a bad Content-Length, or a body shorter than it",
            408: "request timeout: the body did not arrive in time",
            413: "request too large",
            500: "internal error"}


def http1_settings(config: Settings) -> Any:
    """granian's HTTP/1 options: the header timeout, which also ends idle keep-alives."""
    from granian.http import HTTP1Settings  # lazy: granian only for `serve`, not CLI start-up

    millis = int(config.header_timeout_seconds * 1000)
    return HTTP1Settings(header_read_timeout=max(1, millis))


def trusted_proxies(config: Settings) -> frozenset[str]:
    """Addresses whose X-Forwarded-For is believed (the reverse proxy's, e.g. 127.0.0.1)."""
    found = set()
    for item in (config.trusted_proxies or "").split(","):
        if item.strip():
            try:
                found.add(str(ipaddress.ip_address(item.strip())))
            except ValueError:
                raise ValueError(f"MIGRANTLINE_TRUSTED_PROXIES: {item.strip()!r} is not an "
                                 "IP address") from None
    return frozenset(found)


def _forwarded_for(environ: dict[str, Any]) -> str | None:
    """The client address the nearest proxy saw: the last X-Forwarded-For entry.

    Only the last one: a client can send any X-Forwarded-For it likes, and a
    proxy appends (or, as deploy/nginx.conf does, sets) the address it saw.
    Why it matters: the dashboard locks sign-ins per address; behind a proxy
    every client would otherwise share the proxy's one address and lock.
    """
    forwarded = str(environ.get("HTTP_X_FORWARDED_FOR") or "")
    try:
        return str(ipaddress.ip_address(forwarded.rsplit(",", 1)[-1].strip()))
    except ValueError:
        return None


class BodyRefused(InvalidInput):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class Bridge:
    """The RSGI application: read the body on the loop, then run the WSGI app."""

    def __init__(self, load: Callable[[], Any] | None = None):
        self._load = load or _load_wsgi_app
        self.app: Any = None
        self.pool: ThreadPoolExecutor | None = None
        self.threads = 1
        self.body_timeout = 10.0
        self.max_body = DEFAULT_MAX_BODY
        self.proxies: frozenset[str] = frozenset()
        # Requests whose body is being read, by task, with the loop time it must be in by;
        # and those the sweep cut (see ``_read``).
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._late: set[asyncio.Task[Any]] = set()
        self._sweeping = False

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        config = settings.load()
        self.body_timeout = config.body_timeout_seconds
        self.proxies = trusted_proxies(config)
        self.threads = max(1, int(os.environ.get(THREADS_ENV) or 1))
        self.app = self._load()
        self.max_body = int(getattr(self.app, "config", {}).get("MAX_CONTENT_LENGTH")
                            or DEFAULT_MAX_BODY)
        if self.threads > 1:
            self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="wsgi")

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":  # websockets are off in serve; refuse anything else
            return
        try:
            body = await self._read(scope, proto)
        except BodyRefused as refused:
            return _refuse(proto, refused.status)
        except TimeoutError:
            return _refuse(proto, 408)
        except Exception:  # the client went away mid-body (granian's ProtocolClosed/Error)
            return _refuse(proto, 400)
        environ = _environ(scope, body, self.threads > 1)
        if environ["REMOTE_ADDR"] in self.proxies:
            environ["REMOTE_ADDR"] = _forwarded_for(environ) or environ["REMOTE_ADDR"]
        try:
            status, headers, chunks, rest = await self._run(_call, self.app, environ)
        except Exception:  # Flask answers its own errors; this is a bug in the bridge's path
            log.exception("request failed: %s %s", scope.method, scope.path)
            return _refuse(proto, 500)
        if rest is None:
            proto.response_bytes(status, headers, b"".join(chunks))
            return
        await self._stream(proto, status, headers, chunks, rest)

    async def _read(self, scope: Any, proto: Any) -> bytes:
        """The body, or ``TimeoutError`` when it is not all in within ``body_timeout``.

        Why not ``asyncio.timeout`` around each read: it makes and cancels a timer per
        request, which cost about as much as reading the body and answering a USSD hop
        from the WSGI app (bench/README.md). Here a read is a dict entry, and one sweep
        per worker, every ``SWEEP_SECONDS``, cancels the reads past their deadline: a
        late body is cut at most that much later than the timeout.
        """
        task = asyncio.current_task()
        if task is None:  # not run as an asyncio task: the plain way
            async with asyncio.timeout(self.body_timeout):
                return await self._body(scope, proto)
        loop = task.get_loop()
        self._reading[task] = loop.time() + self.body_timeout
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(self._sweep_every(), self._sweep, loop)
        try:
            return await self._body(scope, proto)
        except asyncio.CancelledError:
            if task in self._late:  # cut by the sweep, not cancelled from outside
                task.uncancel()
                raise TimeoutError from None
            raise
        finally:
            self._reading.pop(task, None)
            self._late.discard(task)

    def _sweep_every(self) -> float:
        return max(0.01, min(SWEEP_SECONDS, self.body_timeout / 8))

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel every body read past its deadline; again in a moment."""
        now = loop.time()
        for task, deadline in list(self._reading.items()):
            if deadline <= now and task not in self._late:
                self._late.add(task)
                task.cancel()
        loop.call_later(self._sweep_every(), self._sweep, loop)

    async def _run(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call`` in a pool thread; with one thread per worker, on the loop itself.

        Why inline for one thread: it gives the same one-request-at-a-time as a pool
        of one, without the hand-over to another thread and back, which cost as much
        CPU as the USSD hop itself (bench/README.md). Only complete requests get here,
        so a slow client still holds nothing but its coroutine.
        """
        if self.pool is None:
            return call(*args)
        return await asyncio.get_running_loop().run_in_executor(self.pool, call, *args)

    def _limit(self, scope: Any) -> int:
        """The most a body may hold: the app's limit, or a scan's on its upload path."""
        if scope.method == "POST" and UPLOAD_PATH.match(scope.path or ""):
            return max(self.max_body, UPLOAD_MAX_BODY)
        return self.max_body

    async def _body(self, scope: Any, proto: Any) -> bytes:
        declared = scope.headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):  # int() takes "+1", "١"
                raise BodyRefused(400)
            length = int(declared)
            if length > self._limit(scope):
                raise BodyRefused(413)  # refused before a byte of it is read
            if length <= 0:
                return b""
            body: bytes = await proto()  # granian stops at Content-Length
            if len(body) < length:
                raise BodyRefused(400)
            return body
        chunks, size, limit = [], 0, self._limit(scope)  # chunked: count as it comes
        async for chunk in proto:
            size += len(chunk)
            if size > limit:
                raise BodyRefused(413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _stream(self, proto: Any, status: int, headers: list[tuple[str, str]],
                      chunks: list[bytes], rest: _Rest) -> None:
        """A large response (prompt audio): sent in batches read where the app runs."""
        try:
            transport = proto.response_stream(status, headers)
            while chunks:
                # A reader that stops reading is dropped after the body timeout too.
                async with asyncio.timeout(self.body_timeout):
                    await transport.send_bytes(b"".join(chunks))
                chunks = await self._run(rest.batch)
        except Exception:  # the client went away or stalled: stop reading the file
            pass
        finally:
            await self._run(rest.close)


class _Rest:
    """The unread part of a WSGI response iterable."""

    def __init__(self, result: Iterable[bytes], iterator: Iterator[bytes]):
        self.result, self.iterator = result, iterator

    def batch(self) -> list[bytes]:
        chunks, size = [], 0
        for chunk in self.iterator:
            chunks.append(chunk)
            size += len(chunk)
            if size >= BATCH:
                break
        return chunks

    def close(self) -> None:
        close = getattr(self.result, "close", None)
        if close is not None:
            close()


def _call(app: Any, environ: dict[str, Any]
          ) -> tuple[int, list[tuple[str, str]], list[bytes], _Rest | None]:
    """Run the WSGI app in a pool thread: the status, headers and the first batch."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return written.append

    result = app(environ, start_response)
    rest = _Rest(result, iter(result))
    try:
        chunks = written + rest.batch()
    except BaseException:
        rest.close()
        raise
    status, headers = started
    code = int(str(status).split(" ", 1)[0])
    if sum(len(c) for c in chunks) < BATCH:  # all of it: the common case
        rest.close()
        return code, list(headers), chunks, None
    return code, list(headers), chunks, rest


def _environ(scope: Any, body: bytes, multithread: bool) -> dict[str, Any]:
    """The WSGI environ for a request granian parsed (PEP 3333, as granian's WSGI builds it)."""
    server_host, _, server_port = scope.server.rpartition(":")
    client_host, _, client_port = scope.client.rpartition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        # granian gives the path (percent-decoded) and the query as text decoded from
        # UTF-8; WSGI wants both as latin-1 bytes (raw UTF-8 in a query gave Werkzeug a
        # character it cannot encode: a 500, found by tests/test_fuzz.py)
        "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
        "QUERY_STRING": scope.query_string.encode("utf-8", "surrogateescape").decode("latin-1"),
        "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": "HTTP/" + scope.http_version,
        "REMOTE_ADDR": client_host.strip("[]"),
        "REMOTE_PORT": client_port,
        "SERVER_SOFTWARE": "granian (migrantline rsgi bridge)",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if key in environ:  # a repeated header: one value, as PEP 3333 asks
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
        environ[key] = value
    if body or "CONTENT_LENGTH" in environ:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _refuse(proto: Any, status: int) -> None:
    """A plain-text refusal that also closes the connection (its body may be unread)."""
    proto.response_str(status, [("content-type", "text/plain; charset=utf-8"),
                                ("connection", "close")], _REASONS[status] + "\n")


def _load_wsgi_app() -> Any:
    from ussd_app.wsgi import app  # lazy: each worker builds the app after the fork

    return app


app = Bridge()
