"""USSD latency with 50 slow clients held open against the same without, in one run.

Why: under granian's WSGI interface two clients that sent headers and part of
a body froze the service. ``migrantline serve`` now reads bodies on the event
loop under a timeout (ussd_app/server.py); this measures what held slow
connections still cost the callers. The target (issue 12): the USSD p99 with
50 slow connections stays within 2x the p99 without them.

One ``migrantline serve`` (``--workers``, default 2, and its default threads)
and three measured phases of wrk with ``ussd_sessions.lua`` (whole sessions,
as in run_ussd.py): without slow clients, with them, without them again (so
drift on a shared machine shows). During the middle phase a holder keeps
``--slow`` connections open at all times, as an attacker would: four in five
sent headers with ``Content-Length: 1000`` and 10 bytes of body, one in five
half its headers; each one the server cuts (408 or close, after
``MIGRANTLINE_*_TIMEOUT_SECONDS``) is opened again at once.

    .venv/bin/python bench/slow_clients.py [--duration 15] [--connections 8] [--slow 50]

Servers, wrk and process handling come from run_ussd.py. Results go to
bench/results/slow-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import run_ussd as ru  # noqa: E402 - run as a script from the repository root

PHASES = ("before", "slow", "after")
# Phone ranges apart from run_ussd's warm-up (9779800000000) and from each other.
ru.PHONE_BASE.update({"before": 9779850000000, "slow": 9779860000000, "after": 9779870000000})
TARGET = 2.0


def partial_request(n: int) -> bytes:
    """What a slow client sends, then nothing: part of a body, or part of the headers."""
    if n % 5 == 4:
        return b"POST /ussd/africastalking HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"
    return (b"POST /ussd/africastalking HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\nsessionId=")


class Holder(threading.Thread):
    """Keeps ``count`` slow connections open, opening a new one for each the server cuts."""

    def __init__(self, port: int, count: int):
        super().__init__(daemon=True)
        self.port, self.count = port, count
        self.selector = selectors.DefaultSelector()
        self.stopping = threading.Event()
        self.opened = self.cut = self.refused = 0
        self.held_min = count

    def open(self, n: int) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(partial_request(n))
        except OSError:
            self.refused += 1
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, n)
        self.opened += 1

    def held(self) -> int:
        return len(self.selector.get_map())

    def run(self) -> None:
        for n in range(self.count):
            self.open(n)
        while not self.stopping.is_set():
            for key, _ in self.selector.select(timeout=0.1):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if data:
                    continue  # the 408 answer; the close follows
                self.selector.unregister(sock)
                sock.close()
                self.cut += 1
                self.open(key.data)
            self.held_min = min(self.held_min, self.held())

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        for key in list(self.selector.get_map().values()):
            self.selector.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    children = ru.Children()
    port = ru.free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="slow-bench-"))
    spec = ru.server_spec("ours", port, args.workers, args.threads, data_dir)
    phases: dict[str, Any] = {}
    holder: Holder | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="slow-bench-logs-") as logs:
            log_path = Path(logs) / "ours.log"
            with log_path.open("wb") as log_file:
                proc = children.start(spec.argv, cwd=spec.cwd, env=spec.env,
                                      stdout=log_file, stderr=subprocess.STDOUT)
            ru.wait_ready(proc, port, log_path)
            ru.log(f"serve answering on {port}; warming up {args.warmup:g} s")
            ru.run_wrk(children, port, args.warmup, args.connections, "warm")
            for phase in PHASES:
                if phase == "slow":
                    holder = Holder(port, args.slow)
                    holder.start()
                    time.sleep(0.5)  # all held before the load starts
                    ru.log(f"holding {holder.held()} slow connections")
                ru.log(f"[{phase}] {args.duration:g} s, {args.connections} connections")
                run = ru.run_wrk(children, port, args.duration, args.connections, phase)
                stats = run.stats
                phases[phase] = stats
                if holder is not None:
                    stats["slow_clients"] = {"held_at_end": holder.held(),
                                             "held_min": holder.held_min,
                                             "opened": holder.opened, "cut": holder.cut,
                                             "refused": holder.refused}
                    holder.stop()
                    holder = None
                ru.log(f"[{phase}] {stats['requests_per_s']:.0f} req/s, p50 "
                       f"{stats['latency_ms']['p50']:.2f} ms, p99 "
                       f"{stats['latency_ms']['p99']:.2f} ms, non200 {stats['non200']}"
                       + (f", slow clients {stats['slow_clients']}"
                          if "slow_clients" in stats else ""))
                if proc.poll() is not None:
                    raise ru.BenchError(f"serve exited during {phase}:\n{ru.tail(log_path)}")
    finally:
        if holder is not None:
            holder.stop()
        children.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds per phase (15)")
    parser.add_argument("--connections", type=int, default=8,
                        help="wrk connections = concurrent sessions (8: a busy line, "
                             "not a saturated one, so p99 is latency, not queueing)")
    parser.add_argument("--slow", type=int, default=50, help="slow connections held (50)")
    parser.add_argument("--workers", type=int, default=2, help="serve --workers (2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="serve --threads (default: its own)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up (3)")
    parser.add_argument("--out", type=Path, default=ru.RESULTS, help="folder for the JSON")
    args = parser.parse_args(argv)
    problems = ru.check_prerequisites(["ours"])
    if problems:
        print("Cannot run yet:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        return 1
    info = ru.machine()
    started = time.strftime("%Y%m%d-%H%M%S")
    try:
        phases = measure(args)
    except ru.BenchError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    p99 = {p: float(phases[p]["latency_ms"]["p99"]) for p in PHASES}
    errors = {p: int(phases[p]["non200"]) + sum(int(v) for v in
                                                 phases[p]["socket_errors"].values())
              for p in PHASES}
    baseline = (p99["before"] + p99["after"]) / 2
    # No answer at all (the old server froze) or timeouts: no latency to compare, a failure.
    stalled = not phases["slow"]["requests"] or errors["slow"]
    ratio = p99["slow"] / baseline if baseline and not stalled else float("inf")
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, {info['memory_gb']} GB; "
          f"python {info['python']}, {info['wrk']}, {info['granian']}")
    print(f"serve --workers {args.workers}; wrk {args.connections} connections, "
          f"{args.duration:g} s per phase; {args.slow} slow connections in phase 'slow'")
    print(f"{'phase':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for p in PHASES:
        s = phases[p]
        print(f"{p:8} {s['requests_per_s']:8.0f} {s['latency_ms']['p50']:8.2f} "
              f"{s['latency_ms']['p99']:8.2f} {errors[p]:6d}")
    slow = phases["slow"].get("slow_clients", {})
    print(f"slow connections: {slow}")
    verdict = "within" if ratio <= TARGET else "NOT within"
    print(f"p99 with slow clients / p99 without (mean of before and after): {ratio:.2f} "
          f"({verdict} the {TARGET:g}x target)")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"slow-{started}.json"
    out.write_text(json.dumps({"started": started, "machine": info, "args": {
        k: str(v) for k, v in vars(args).items()}, "phases": phases, "p99_ratio": ratio},
        indent=2) + "\n")
    print(f"results: {out}")
    return 0 if ratio <= TARGET and not any(errors.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
