"""The supervisors' analytics page over a seeded database, next to a bare query of its rows.

Seeds a fresh data folder (SQLite, or the PostgreSQL database of
``--database-url``) with N complaints spread over the last 12 weeks (default
20,000), one to three operator actions each, a third closed with an outcome,
one in ten urgent with a "Show number" in the audit log, and 84 days of menu
counts for 60 screens. Then times, signed in as a supervisor through Flask's
test client, ``GET /operator/analytics`` (the SQL with its subqueries, the
figures, the page) and ``GET /operator/analytics.csv``, and, as the baseline,
the bare select of the same complaints' rows (``store.analytics.cases_bare``):
what any page about those cases has to read at the least.

    .venv/bin/python bench/analytics.py                       # 20,000 complaints, 15 runs
    .venv/bin/python bench/analytics.py --complaints 5000 --runs 5
    .venv/bin/python bench/analytics.py --database-url postgresql://...   # an empty database

Prints the median of the runs of each and the ratio page/bare.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ussd_app.store import analytics as analytics_db  # noqa: E402
from ussd_app.store.base import PgDb, connect_postgres  # noqa: E402
from ussd_app.store.migrations import apply  # noqa: E402
from ussd_app.web import create_app  # noqa: E402

CATEGORIES = ("unpaid_wages", "contract", "documents", "fees", "abuse", "forced_labour",
              "lost_contact", "other")
COUNTRIES = ("QA", "AE", "SA", "MY", "KW", "OM", "BH", "JO", "LB", "IN")
WEEK = 7 * 86400.0


def seed(store: object, complaints: int, rng: random.Random, now: float) -> None:
    """Rows as the service writes them, inserted in bulk (the bench's set-up, not timed)."""
    db = store.db()  # type: ignore[attr-defined]
    rows, events, audits = [], [], []
    for i in range(1, complaints + 1):
        created = now - rng.random() * 12 * WEEK
        closed = rng.random() < 0.35
        status = "closed" if closed else rng.choice(("new", "in_progress", "referred"))
        first = created + rng.expovariate(1 / 7200)
        closed_at = first + rng.expovariate(1 / 86400) if closed else None
        outcome = rng.choice(("resolved", "referred", "compensation", "no_contact",
                              "withdrawn")) if closed else None
        money = outcome == "compensation"
        rows.append((i, f"{i:08d}", f"bench:{i}", rng.choice(("ussd", "sms", "voice")),
                     rng.choice(("en", "ar", "fr", "ne")), created, created, status,
                     int(rng.random() < 0.1), rng.choice(CATEGORIES), rng.choice(COUNTRIES),
                     f"Agency {rng.randrange(200)}", closed_at, outcome,
                     f"{rng.randrange(100, 5000)}.00" if money else None,
                     "QAR" if money else None))
        events.append((i, created, "caller", None, "filed", "new"))
        for k in range(rng.randrange(1, 4)):
            events.append((i, first + k * 3600, "operator", 1, "note", None))
        if rows[-1][8]:
            audits.append((first, 1, "reveal_phone", i, "", "127.0.0.1"))
    with_tx(db, lambda: (
        db.conn.executemany(
            "insert into complaints (id, reference, key, channel, lang, created_at, updated_at, "
            "status, urgent, category, country, agency_name, closed_at, outcome, "
            "outcome_amount, outcome_currency) values "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows),
        db.conn.executemany("insert into complaint_events (complaint_id, at, actor, operator_id, "
                       "kind, status) values (?, ?, ?, ?, ?, ?)", events),
        db.conn.executemany("insert into audit_log (at, operator_id, action, complaint_id, detail, "
                       "ip) values (?, ?, ?, ?, ?, ?)", audits),
        db.conn.executemany("insert into menu_counts (day, channel, node, reached, ended) values "
                       "(?, 'ussd', ?, ?, ?)",
                       [(time.strftime("%Y-%m-%d", time.gmtime(now - d * 86400)), f"node_{n}",
                         rng.randrange(0, 400), rng.randrange(0, 40))
                        for d in range(84) for n in range(60)])))
    if getattr(db, "dialect", "") == "postgresql":
        db.execute("select setval(pg_get_serial_sequence('complaints', 'id'), ?)", [complaints])
        db.execute("analyze")
    else:
        db.execute("analyze")


def with_tx(db: object, work: Callable[[], object]) -> None:
    db.execute("begin")  # type: ignore[attr-defined]
    work()
    db.execute("commit")  # type: ignore[attr-defined]


def timed(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm: templates compiled, statements prepared, pages cached
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--database-url", default=None,
                        help="an empty PostgreSQL database (default: SQLite in a temp folder)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        config = {"MIGRANTLINE_DATA_DIR": tmp,
                  "MIGRANTLINE_CONTENT_DIR": str(ROOT / "content"),
                  "MIGRANTLINE_SECRET_KEY": secrets.token_hex(32),
                  "MIGRANTLINE_INSECURE_OPEN_WEBHOOKS": "on",
                  "MIGRANTLINE_PROMPTS_RENDER": "off", "MIGRANTLINE_CONTENT_POLL_SECONDS": "0"}
        if args.database_url:
            os.environ["MIGRANTLINE_DATABASE_URL"] = args.database_url
            apply(PgDb(connect_postgres(args.database_url)))  # `migrantline db upgrade`
        app = create_app(config)
        services = app.extensions["migrantline"]
        app.extensions["dashboard"].accounts.add("boss@example.org", "supervisor",
                                                 "correct horse battery", "")
        now = time.time()
        seed(services.store, args.complaints, rng, now)
        client = app.test_client()
        page = client.get("/operator/login").get_data(as_text=True)
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/operator/login", data={"email": "boss@example.org",
                                            "password": "correct horse battery",
                                            "csrf_token": token})

        def get(path: str) -> Callable[[], object]:
            def run() -> object:
                response = client.get(path)
                assert response.status_code == 200, response.status_code
                return response.get_data()
            return run

        since, until = now - 13 * WEEK, now + WEEK
        bare = timed(lambda: analytics_db.cases_bare(services.store, since, until), args.runs)
        shown = timed(get("/operator/analytics"), args.runs)
        exported = timed(get("/operator/analytics.csv"), args.runs)
        engine = "PostgreSQL" if args.database_url else "SQLite"
        print(f"{args.complaints:,} complaints, {engine}, median of {args.runs} runs")
        print(f"{'what':<34}{'ms':>10}{'x bare':>9}")
        for name, ms in (("bare select of the rows", bare), ("GET /operator/analytics", shown),
                         ("GET /operator/analytics.csv", exported)):
            print(f"{name:<34}{ms:>10.1f}{ms / bare:>9.1f}")
        services.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
