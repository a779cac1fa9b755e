"""A poor link on loopback: a TCP proxy with a rate, a delay each way, and random cuts.

Real sockets, nothing mocked: what comes back from the server is released
``delay`` seconds after it arrived and no faster than ``rate`` bytes a second
(one budget for all connections, like one office link); a connection is cut
(both ends shut) at random byte counts, at most ``cuts`` times. Used by the
sync tests and ``bench/sync.py``.
"""

from __future__ import annotations

import queue
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class ThrottleProxy:
    def __init__(self, upstream: tuple[str, int], rate: float, delay: float = 0.0,
                 cuts: int = 0, cut_after: tuple[int, int] = (100_000, 400_000),
                 seed: int = 1):
        self.upstream = upstream
        self.rate = rate  # bytes a second, downstream
        self.delay = delay  # seconds, each way
        self.cuts_left = cuts
        self.cut_after = cut_after
        self.rng = random.Random(seed)
        self.cut = 0
        self.sent = 0
        self._lock = threading.Lock()
        self._free_at = 0.0
        self._next_cut = self._draw()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _draw(self) -> int:
        return self.sent + self.rng.randint(*self.cut_after)

    def serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            self._sockets += [client, server]
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while chunk := client.recv(65536):
                time.sleep(self.delay)
                server.sendall(chunk)
        except OSError:
            pass
        _close(client, server)

    def _down(self, server: socket.socket, client: socket.socket) -> None:
        """Read as fast as the server sends, stamped; ``_release`` delays and paces."""
        pending: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        threading.Thread(target=self._release, args=(pending, server, client),
                         daemon=True).start()
        try:
            while chunk := server.recv(4096):
                pending.put((time.monotonic(), chunk))
        except OSError:
            pass
        pending.put(None)

    def _release(self, pending: queue.Queue[tuple[float, bytes] | None],
                 server: socket.socket, client: socket.socket) -> None:
        try:
            while (item := pending.get()) is not None:
                arrived, chunk = item
                with self._lock:
                    start = max(arrived + self.delay, self._free_at)
                    self._free_at = start + len(chunk) / self.rate
                    self.sent += len(chunk)
                    cut = self.cuts_left > 0 and self.sent >= self._next_cut
                    if cut:
                        self.cuts_left -= 1
                        self.cut += 1
                        self._next_cut = self._draw()
                wait = start - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if cut:
                    client.sendall(chunk[: len(chunk) // 2])
                    break
                client.sendall(chunk)
        except OSError:
            pass
        _close(client, server)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for sock in self._sockets:
            _close(sock)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


@contextmanager
def throttled(upstream_url: str, rate: float, delay: float = 0.0, cuts: int = 0,
              cut_after: tuple[int, int] = (100_000, 400_000), seed: int = 1
              ) -> Iterator[ThrottleProxy]:
    host, port = upstream_url.rsplit("//", 1)[1].split(":")
    proxy = ThrottleProxy((host, int(port)), rate, delay, cuts, cut_after, seed)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.close()
        thread.join(2)
