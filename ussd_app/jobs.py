"""The one small interface for background work.

Everything that must not run inside a provider callback (flushing session
progress today; sending SMS, syncing content and rendering audio later) is
started through these functions. In the embedded default they are threads in
the same process; a multi-node deployment can put a queue behind the same
calls without touching the channels.

Every long-running loop reports to a ``Heartbeat`` (each run, each failure),
so ``/healthz`` can say when one has died or keeps failing instead of saying
``ok`` while nothing is flushed or sent. Heartbeats belong to an *owner* (the
data folder of the app that started them), so one process holding several
apps (the tests) reports each app's own jobs.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

log = logging.getLogger(__name__)

FAILURES_BEFORE_UNHEALTHY = 3  # one failed run (a locked database) is not an outage yet
_owner: ContextVar[str | None] = ContextVar("migrantline_job_owner", default=None)
_registry: list[Heartbeat] = []
_registry_lock = threading.Lock()


@contextmanager
def owned_by(owner: str) -> Iterator[None]:
    """Jobs started inside this block report to ``owner``'s health (see ``problems``)."""
    token = _owner.set(owner)
    try:
        yield
    finally:
        _owner.reset(token)


class Heartbeat:
    """What one background loop last did: its runs, its consecutive failures, its thread."""

    def __init__(self, name: str, interval: float, thread: threading.Thread | None = None,
                 owner: str | None = None):
        self.name, self.interval, self.thread = name, interval, thread
        self.owner = owner if owner is not None else _owner.get()
        self.started_at = time.time()
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.failures = 0  # consecutive
        self.stopped = False
        self.run_now: Callable[[], None] | None = None  # a periodic job's run, outside its timer
        self.halt: Callable[[], None] | None = None  # stops a periodic job (stop_started_since)
        self.pid = os.getpid()  # a forked child has the entry, not the thread: not its job
        with _registry_lock:
            _registry.append(self)

    def ok(self) -> None:
        self.last_ok, self.failures = time.time(), 0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
        self.last_error_at = time.time()

    def stop(self) -> None:
        """Stopped on purpose: no longer reported."""
        self.stopped = True
        with _registry_lock:
            if self in _registry:
                _registry.remove(self)

    def problem(self) -> str | None:
        """Why this job is not doing its work, or None."""
        if self.stopped:
            return None
        if self.thread is not None and not self.thread.is_alive():
            return f"background job {self.name} has stopped (its thread died)"
        if self.failures >= FAILURES_BEFORE_UNHEALTHY:
            return (f"background job {self.name} failed its last {self.failures} runs: "
                    f"{self.last_error}")
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "alive": self.thread.is_alive() if self.thread else None,
                "last_ok": self.last_ok, "failures": self.failures,
                "last_error": self.last_error, "problem": self.problem()}


def heartbeats(owner: str) -> list[Heartbeat]:
    with _registry_lock:
        return [h for h in _registry if h.owner == owner and h.pid == os.getpid()]


def problems(owner: str) -> list[str]:
    """What is wrong with ``owner``'s background jobs (empty when all are well)."""
    return [p for p in (h.problem() for h in heartbeats(owner)) if p]


def stop_started_since(since: float) -> None:
    """Stop this process's periodic jobs started at or after ``since`` (each runs once
    more, as at exit). For a process that keeps running after the apps that started
    them are gone: the tests, whose PostgreSQL database is dropped with each test."""
    with _registry_lock:
        started = [h for h in _registry if h.started_at >= since and h.pid == os.getpid()]
    for heartbeat in started:
        if heartbeat.halt is not None:
            heartbeat.halt()


class Periodic:
    """Calls ``fn`` every ``interval`` seconds until stopped; survives its errors."""

    def __init__(self, interval: float, fn: Callable[[], object], name: str,
                 run_at_stop: bool = True, owner: str | None = None):
        self.interval, self.fn, self.name = interval, fn, name
        self.run_at_stop = run_at_stop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.heartbeat = Heartbeat(name, interval, self._thread, owner)
        self.heartbeat.run_now = self._call
        self.heartbeat.halt = self.stop
        self._thread.start()
        atexit.register(self.stop)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._call()

    def _call(self) -> None:
        try:
            self.fn()
        except Exception as exc:  # a background job must never die silently
            self.heartbeat.failed(exc)
            log.exception("background job %s failed; it will run again", self.name)
        else:
            self.heartbeat.ok()

    def stop(self) -> None:
        """Stop and run once more (unless told not to), so nothing buffered is left behind."""
        if not self._stop.is_set():
            self._stop.set()
            self.heartbeat.stop()
            self._thread.join(timeout=5)
            if self.run_at_stop:
                self._call()


def every(interval: float, fn: Callable[[], object], name: str,
          run_at_stop: bool = True, owner: str | None = None) -> Periodic:
    """``run_at_stop=False`` for work that is not a buffer to flush (downloads, retries):
    a process shutting down should not start it. ``owner``: whose health reports it
    (default: the ``owned_by`` block it is started in)."""
    return Periodic(interval, fn, name, run_at_stop, owner)


def once(fn: Callable[[], object], name: str) -> None:
    """Run ``fn`` once in the background (a queue's worker, later); its errors are logged."""

    def run() -> None:
        try:
            fn()
        except Exception:
            log.exception("background job %s failed", name)

    threading.Thread(target=run, name=name, daemon=True).start()


def stop_on_signals() -> threading.Event:
    """For a command running as a dedicated worker (``--forever``): an event SIGTERM and
    SIGINT set, so the batch under way finishes, then its loop ends."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
