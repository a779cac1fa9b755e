"""What no stickiness costs a hop: N services in one process, hops dealt round-robin.

Why it exists: ``run_scale.py`` puts N nodes, PostgreSQL, HAProxy and wrk on
the same cores, so its app CPU per hop mixes two things: the work a node does
because it did not see the session's previous hop (it reads the session's
start, then replays more than the newest input), and what N processes lose to
each other on two cores. This measures the first alone: N services (each its
own caches, as N nodes have) on one database, in one process, the hops of each
session dealt to them in turn, no HTTP server, no balancer; the process's CPU
time per hop for N = 1, 2, 4, beside N = 1 measured in the same run (the ratio).

    .venv/bin/python bench/no_stickiness.py                      # SQLite and PostgreSQL
    .venv/bin/python bench/no_stickiness.py --sessions 2000 --engines postgresql

The walk is ``ussd_sessions.lua``'s (seven hops: language, main menu, a section,
an article, its next page, back, home). PostgreSQL: a fresh database created
from ``--database-url`` (default MIGRANTLINE_TEST_DATABASE_URL, else what
``.ci/postgres`` prints), dropped after.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run_scale import SECRET, default_url, psql, with_database  # noqa: E402
from bench.run_ussd import CONTENT, machine  # noqa: E402
from ussd_app import jobs  # noqa: E402

HOPS = ["", "1", "1*1", "1*1*3", "1*1*3*98", "1*1*3*98*0", "1*1*3*98*0*00"]


def services(data: Path, nodes: int, url: str | None) -> list[object]:
    from ussd_app.web import create_app  # lazy: after the environment is set

    config = {"MIGRANTLINE_CONTENT_DIR": str(CONTENT), "MIGRANTLINE_SECRET_KEY": SECRET,
              "MIGRANTLINE_INSECURE_OPEN_WEBHOOKS": "on", "MIGRANTLINE_PROMPTS_RENDER": "off",
              "MIGRANTLINE_CONTENT_POLL_SECONDS": "0", "MIGRANTLINE_DATABASE_URL": url}
    # One data folder: on SQLite the nodes share the database file, as workers do.
    return [create_app({**config, "MIGRANTLINE_DATA_DIR": str(data)}).extensions["migrantline"]
            for _ in range(nodes)]


def walk(nodes: list[object], sessions: int, tag: str) -> int:
    """``sessions`` walks, hop k of the run on node k mod N; the number of hops."""
    hop = 0
    for n in range(sessions):
        session_id, phone = f"ATUid_{tag}_{n}", f"+9779{abs(hash(tag)) % 10**4:04d}{n:06d}"
        for text in HOPS:
            answer = nodes[hop % len(nodes)].ussd.answer(  # type: ignore[attr-defined]
                session_id, phone, text)
            if answer is None or (text == "" and "English" not in answer.text):
                raise SystemExit(f"wrong first screen on hop {hop}: {answer}")
            hop += 1
    return hop


def measure(engine: str, url: str | None, counts: list[int], sessions: int) -> list[float]:
    """CPU ms per hop for each node count, on a fresh database of ``engine``."""
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            made = time.time()
            nodes = services(Path(tmp) / f"n{count}", count, url)
            walk(nodes, max(50, sessions // 10), f"warm{count}")  # caches, prepared statements
            started = time.process_time()
            hops = walk(nodes, sessions, f"run{count}")
            figures.append(1000 * (time.process_time() - started) / hops)
            for node in nodes:
                node.store.close()  # type: ignore[attr-defined]
            # Their background jobs too: their data folder goes when the run ends.
            jobs.stop_started_since(made)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000, help="walks per node count")
    parser.add_argument("--nodes", default="1,2,4", help="node counts (1,2,4)")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the demo-mode warnings, once per service
    counts = [int(x) for x in args.nodes.split(",")]
    if counts[0] != 1:
        counts.insert(0, 1)  # the baseline
    info = machine()
    print(f"machine: {info['cpu_model']}, {info['cores']} cores; {args.sessions} walks of "
          f"{len(HOPS)} hops per node count; CPU time of this one process")
    print(f"{'engine':<11} {'nodes':>5} {'CPU ms/hop':>10} {'x 1 node':>8}")
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        url = None
        if engine == "postgresql":
            admin = args.database_url or default_url()
            name = f"mlt_bench_{uuid.uuid4().hex[:10]}"
            psql(admin, f'create database "{name}"')
            url = with_database(admin, name)
            os.environ["MIGRANTLINE_DATABASE_URL"] = url
            from ussd_app.store.core import open_store
            open_store(Path("/nonexistent"), url=url, migrate=True).db().conn.close()
        try:
            figures = measure(engine, url, counts, args.sessions)
        finally:
            if url:
                psql(admin, f'drop database "{name}" with (force)')
                os.environ.pop("MIGRANTLINE_DATABASE_URL", None)
        for count, figure in zip(counts, figures, strict=True):
            print(f"{engine:<11} {count:>5} {figure:>10.3f} {figure / figures[0]:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
