"""A referral between two local centres, end to end, next to a bare POST of the same size.

The destination is a real ``migrantline serve`` process on a loopback port with its own
data folder (SQLite). The origin runs in this process on its own data folder: it files
complaints with consent, refers each (the fields sealed to the destination, signed,
queued in ``centre_outbox``), and delivers with the background job's own ``deliver``:
POSTed, then at the destination checked, decrypted, stored with its inbox row and
audited; "visible" is the case found in the destination's database under its referral
id. Each referral is timed from ``refer`` to visible.

Baseline, in the same run: a POST of the same number of bytes to a stdlib HTTP server
in this process that reads the body and answers 200 (what moving those bytes over HTTP
on loopback costs with nothing behind it).

Then the drain: ``--drain`` referrals (default 10,000) queued while the destination is
stopped, the destination started, and ``deliver`` run until nothing waits; it checks that
the destination holds each exactly once (cases, inbox ids) and that every envelope is
``sent``.

    .venv/bin/python bench/referral.py                      # 200 timed, 10,000 drained
    .venv/bin/python bench/referral.py --runs 50 --drain 1000
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ussd_app import settings  # noqa: E402
from ussd_app.centres.service import Centres  # noqa: E402
from ussd_app.complaints.referrals import post  # noqa: E402 - the job's own client
from ussd_app.complaints.service import Caller, Complaints  # noqa: E402
from ussd_app.i18n import default_catalogs  # noqa: E402
from ussd_app.privacy.protect import PhoneHasher  # noqa: E402
from ussd_app.store import centres as centres_db  # noqa: E402
from ussd_app.store import open_store  # noqa: E402

SECRET = "bench-secret-OnYH9FJ7j3YpmozvtyYrpBRVr3vr5Uu5tfoenZ_WLaE"
BIN = Path(sys.executable).parent / "migrantline"
ANSWERS = {"filed_by": "self", "category": "unpaid_wages", "contact": "any", "country": "TH",
           "description": "Wages unpaid since March; the employer keeps my passport.",
           "share": "yes"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Destination:
    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.env = {**os.environ, "MIGRANTLINE_DATA_DIR": str(folder),
                    "MIGRANTLINE_SECRET_KEY": SECRET, "MIGRANTLINE_DEMO": "on",
                    "MIGRANTLINE_CONTENT_POLL_SECONDS": "0", "MIGRANTLINE_PROMPTS_RENDER": "off",
                    "MIGRANTLINE_SYNC_INTERVAL_SECONDS": "0", "MIGRANTLINE_BASE_URL": self.url,
                    "MIGRANTLINE_CENTRE_NAME": "Bangkok MRC", "MIGRANTLINE_CENTRE_COUNTRY": "TH"}
        self.env.pop("MIGRANTLINE_DATABASE_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> None:
        subprocess.run([str(BIN), *args], cwd=ROOT, env=self.env, check=True,
                       capture_output=True)

    def start(self, workers: int) -> None:
        self.proc = subprocess.Popen([str(BIN), "serve", "--port", str(self.port),
                                      "--workers", str(workers)], cwd=ROOT, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the destination did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


class Bare(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "11")
        self.end_headers()
        self.wfile.write(b'{"ok":true}')

    def log_message(self, *args: Any) -> None:
        pass


def origin(folder: Path, destination: Destination) -> tuple[Centres, Complaints, Any]:
    config = settings.load(environ={
        "MIGRANTLINE_DATA_DIR": str(folder), "MIGRANTLINE_SECRET_KEY": SECRET,
        "MIGRANTLINE_BASE_URL": "http://127.0.0.1:9", "MIGRANTLINE_CENTRE_NAME": "Phnom Penh MRC",
        "MIGRANTLINE_CENTRE_COUNTRY": "KH", "MIGRANTLINE_REFERRAL_BACKOFF_SECONDS": "0"})
    store = open_store(folder, url="")
    secret = SECRET.encode()
    t = default_catalogs().gettext
    complaints = Complaints(store, secret, t)
    centres = Centres(store, secret, config, complaints, t)
    folder.joinpath("card.json").write_bytes(centres.card_bytes())
    destination.cli("partners", "export", str(destination.folder / "card.json"))
    destination.cli("partners", "import", str(folder / "card.json"))
    centres.import_card((destination.folder / "card.json").read_bytes(), "bench")
    return centres, complaints, PhoneHasher(secret)


def file(complaints: Complaints, hasher: PhoneHasher, n: int) -> int:
    phone = f"+85512{n:07d}"
    row = complaints.file(f"bench-{n}", Caller("ussd", phone, hasher.key(phone)), "en",
                          ANSWERS)
    return int(row["id"])


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(centres: Centres, complaints: Complaints, hasher: PhoneHasher,
          destination: Destination, runs: int) -> tuple[list[float], int]:
    dest_store = open_store(destination.folder, url="", migrate=False)
    latencies, size = [], 0
    for n in range(runs):
        cid = file(complaints, hasher, n)
        started = time.perf_counter()
        uid = centres.refer(cid, 1, ["category", "country", "description"], None, "bench")
        centres.deliver()
        if centres_db.referral(dest_store, uid, "in") is None:
            raise SystemExit(f"referral {n} not visible at the destination")
        latencies.append(time.perf_counter() - started)
        size = len(centres.store.db().execute(
            "select envelope from centre_outbox order by id desc limit 1").fetchone()[0])
    dest_store.close()
    return latencies, size


def bare(size: int, runs: int) -> list[float]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Bare)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/inbox"
    body = b"x" * size
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        assert post(url, body, {"Content-Type": "application/json"}, 10) == 200
        latencies.append(time.perf_counter() - started)
    server.shutdown()
    return latencies


def drain(centres: Centres, complaints: Complaints, hasher: PhoneHasher,
          destination: Destination, count: int, workers: int) -> None:
    destination.stop()
    started = time.perf_counter()
    for n in range(count):
        centres.refer(file(complaints, hasher, 1_000_000 + n), 1, [], None, "bench")
    queued = time.perf_counter() - started
    print(f"queued {count} referrals while the destination is down: {queued:.1f} s")
    centres.deliver()  # every one fails now: retries scheduled (backoff 0 here)
    destination.start(workers)
    started = time.perf_counter()
    rounds = 0
    while centres_db.counts(centres.store).get("queued", 0):
        centres.deliver()
        rounds += 1
    took = time.perf_counter() - started
    dest = open_store(destination.folder, url="", migrate=False)
    db = dest.db()
    cases = db.execute("select count(*), count(distinct key) from complaints").fetchone()
    inbox = db.execute("select count(*) from centre_inbox where kind = 'referral'").fetchone()
    dest.close()
    counts = centres_db.counts(centres.store)
    print(f"drained {count} in {took:.1f} s ({count / took:.0f}/s, {rounds} rounds); "
          f"origin outbox {counts}; destination cases {cases[0]} ({cases[1]} distinct), "
          f"inbox ids {inbox[0]}")
    if not (cases[0] == cases[1] and inbox[0] == cases[0]):
        raise SystemExit("a referral was stored twice")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--drain", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        destination = Destination(Path(tmp) / "th")
        destination.cli("partners", "export", str(Path(tmp) / "th-card.json"))
        destination.start(args.workers)
        try:
            centres, complaints, hasher = origin(Path(tmp) / "kh", destination)
            centres.deliver()
            latencies, size = timed(centres, complaints, hasher, destination, args.runs)
            baseline = bare(size, args.runs)
            print(f"{args.runs} referrals of {size} bytes, refer -> visible at the destination: "
                  f"median {statistics.median(latencies) * 1000:.1f} ms, "
                  f"p99 {p(latencies, 0.99) * 1000:.1f} ms")
            print(f"bare POST of {size} bytes (stdlib server, same client): median "
                  f"{statistics.median(baseline) * 1000:.2f} ms, p99 "
                  f"{p(baseline, 0.99) * 1000:.2f} ms")
            if args.drain:
                drain(centres, complaints, hasher, destination, args.drain, args.workers)
        finally:
            destination.stop()


if __name__ == "__main__":
    main()
