"""SMS benchmark: outbox delivery rate and inbound SMS latency, each beside a baseline.

    .venv/bin/python bench/sms.py [--messages 2000] [--inbound 1000]

Outbox: N queued messages delivered by the worker through the Kannel provider
to a local stand-in provider (bench/standin.py), beside the same number of
bare HTTP GETs to the same stand-in with the same threads (what the provider
alone allows). Inbound: N Africa's Talking SMS callbacks (menu walks,
keywords, agency searches) through the app's WSGI stack, beside N USSD hops
in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.standin import StandIn  # noqa: E402
from sms_flows.outbox import OutboxWorker  # noqa: E402
from tests.conftest import make_app  # noqa: E402
from ussd_app import store as db  # noqa: E402
from ussd_app.privacy.protect import seal_text  # noqa: E402
from ussd_app.providers.kannel import KannelSms  # noqa: E402

THREADS = 8


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def bench_outbox(app, n: int, standin: StandIn) -> tuple[float, float]:
    services = app.extensions["migrantline"]
    sealer = services.ussd.sealer
    for i in range(n):
        db.enqueue(services.store, db.OutboxItem(f"bench:{i}", sealer.seal(f"+97798{i:08d}"),
                                                 "en", seal_text(sealer, f"Bench message {i}"),
                                                 "GSM-7", 1))
    worker = OutboxWorker(services.store, KannelSms(standin.url + "/cgi-bin/sendsms",
                                                         "u", "p", "5555"),
                          sealer, services.ussd.hasher, threads=THREADS)
    start = time.perf_counter()
    counts = worker.drain()
    rate = n / (time.perf_counter() - start)
    assert counts == {"sent": n}, counts
    worker.close()
    local = __import__("threading").local()

    def bare(i: int) -> None:
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        session.get(standin.url + "/cgi-bin/sendsms", params={"to": str(i), "text": "x"},
                    timeout=5)

    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(bare, range(n)))
    return rate, n / (time.perf_counter() - start)


def bench_inbound(app, n: int) -> tuple[list[float], list[float]]:
    client = app.test_client()
    script = ["", "1", "1", "98", "0", "00", "agency sunrise", "help", "hello", "2"]
    sms, ussd = [], []
    for i in range(n):
        form = {"from": f"+97798{i // len(script):08d}", "to": "5555",
                "text": script[i % len(script)], "id": f"bench-{i}"}
        start = time.perf_counter()
        assert client.post("/sms/africastalking", data=form).status_code == 200
        sms.append((time.perf_counter() - start) * 1000)
        text = "*".join(["1", "1", "98", "0"][:i % 5])
        start = time.perf_counter()
        assert client.post("/ussd/africastalking", data={
            "sessionId": f"s{i // 5}", "phoneNumber": f"+97799{i % 200:08d}",
            "text": text}).status_code == 200
        ussd.append((time.perf_counter() - start) * 1000)
    return sms, ussd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--inbound", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), MIGRANTLINE_SMS_RATE_PER_HOUR="100000")
        standin = StandIn()
        rate, bare = bench_outbox(app, args.messages, standin)
        standin.close()
        print(f"outbox: {rate:.0f} messages/s delivered ({args.messages} messages, {THREADS} "
              f"threads); baseline bare GETs to the same stand-in: {bare:.0f}/s; "
              f"ratio {rate / bare:.2f}")
        sms, ussd = bench_inbound(app, args.inbound)
        for name, values in (("inbound SMS", sms), ("baseline USSD hop", ussd)):
            print(f"{name}: p50 {pct(values, 50):.2f} ms, p99 {pct(values, 99):.2f} ms")
        print(f"ratio SMS/USSD: p50 {pct(sms, 50) / pct(ussd, 50):.1f}x, "
              f"p99 {pct(sms, 99) / pct(ussd, 99):.1f}x")
        app.extensions["migrantline"].store.close()


if __name__ == "__main__":
    main()
