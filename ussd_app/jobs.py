"""The one small interface for background work.

Everything that must not run inside a provider callback (flushing session
progress today; sending SMS, syncing content and rendering audio later) is
started through these functions. In the embedded default they are threads in
the same process; a multi-node deployment can put a queue behind the same
calls without touching the channels.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``fn`` every ``interval`` seconds until stopped; survives its errors."""

    def __init__(self, interval: float, fn: Callable[[], object], name: str,
                 run_at_stop: bool = True):
        self.interval, self.fn, self.name = interval, fn, name
        self.run_at_stop = run_at_stop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._call()

    def _call(self) -> None:
        try:
            self.fn()
        except Exception:  # a background job must never die silently
            log.exception("background job %s failed; it will run again", self.name)

    def stop(self) -> None:
        """Stop and run once more (unless told not to), so nothing buffered is left behind."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=5)
            if self.run_at_stop:
                self._call()


def every(interval: float, fn: Callable[[], object], name: str,
          run_at_stop: bool = True) -> Periodic:
    """``run_at_stop=False`` for work that is not a buffer to flush (downloads, retries):
    a process shutting down should not start it."""
    return Periodic(interval, fn, name, run_at_stop)


def once(fn: Callable[[], object], name: str) -> None:
    """Run ``fn`` once in the background (a queue's worker, later); its errors are logged."""

    def run() -> None:
        try:
            fn()
        except Exception:
            log.exception("background job %s failed", name)

    threading.Thread(target=run, name=name, daemon=True).start()
