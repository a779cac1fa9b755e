"""The operators' queue page over 100,000 complaints, next to a bare query of its rows.

Issue 15's target: the queue page with 100,000 cases renders in under 300 ms at
the 99th percentile. Seeds a fresh data folder (SQLite, or the empty PostgreSQL
database of ``--database-url``) with the complaints of ``bench/analytics.py``'s
seed, signs in as an operator through Flask's test client, and times
``GET /operator/`` (its first page, urgent first: the count, the page's rows,
the template) and ``GET /operator/?status=open&urgent=yes`` against, as the
baseline, the bare select of the same 50 rows with the same order (what any
page of the queue has to read at the least). Prints p50 and p99 of each and
the ratio of the p99s.

    .venv/bin/python bench/queue_page.py                      # 100,000 complaints, 200 runs
    .venv/bin/python bench/queue_page.py --database-url postgresql://...   # an empty database
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.analytics import seed  # noqa: E402
from ussd_app.store.base import PgDb, connect_postgres  # noqa: E402
from ussd_app.store.migrations import apply  # noqa: E402
from ussd_app.web import create_app  # noqa: E402

BARE = ("select id, reference, created_at, status, urgent, category, country, agency_name "
        "from complaints order by urgent desc, created_at asc, id asc limit 50")


def samples(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm: templates compiled, statements prepared
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database-url", default=None,
                        help="an empty PostgreSQL database (default: SQLite in a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = {"MIGRANTLINE_DATA_DIR": tmp, "MIGRANTLINE_CONTENT_DIR": str(ROOT / "content"),
                  "MIGRANTLINE_SECRET_KEY": secrets.token_hex(32),
                  "MIGRANTLINE_INSECURE_OPEN_WEBHOOKS": "on",
                  "MIGRANTLINE_PROMPTS_RENDER": "off", "MIGRANTLINE_CONTENT_POLL_SECONDS": "0"}
        if args.database_url:
            os.environ["MIGRANTLINE_DATABASE_URL"] = args.database_url
            apply(PgDb(connect_postgres(args.database_url)))  # `migrantline db upgrade`
        app = create_app(config)
        services = app.extensions["migrantline"]
        app.extensions["dashboard"].accounts.add("op@example.org", "operator",
                                                 "correct horse battery", "")
        print(f"seeding {args.complaints:,} complaints...", file=sys.stderr)
        seed(services.store, args.complaints, random.Random(15), time.time())
        client = app.test_client()
        page = client.get("/operator/login").get_data(as_text=True)
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/operator/login", data={"email": "op@example.org",
                                            "password": "correct horse battery",
                                            "csrf_token": token})

        def get(path: str) -> Callable[[], object]:
            def run() -> object:
                response = client.get(path)
                assert response.status_code == 200, response.status_code
                return response.get_data()
            return run

        db = services.store.db()
        bare = samples(lambda: db.execute(BARE).fetchall(), args.runs)
        rows = [("bare select of the page's 50 rows", bare),
                ("GET /operator/", samples(get("/operator/"), args.runs)),
                ("GET /operator/?status=open&urgent=yes",
                 samples(get("/operator/?status=open&urgent=yes"), args.runs))]
        engine = "PostgreSQL" if args.database_url else "SQLite"
        print(f"{args.complaints:,} complaints, {engine}, {args.runs} runs each")
        print(f"{'what':<40}{'p50 ms':>9}{'p99 ms':>9}{'p99 x bare':>12}")
        for name, values in rows:
            print(f"{name:<40}{p(values, 0.5):>9.1f}{p(values, 0.99):>9.1f}"
                  f"{p(values, 0.99) / p(bare, 0.99):>12.1f}")
        services.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
