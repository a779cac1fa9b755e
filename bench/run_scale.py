"""Scale benchmark: 1, 2 and 4 single-worker nodes on one PostgreSQL behind HAProxy.

What it answers (issue 14's Performance section): how many USSD hops per
second N ``migrantline serve --workers 1`` nodes answer behind
``deploy/haproxy.cfg`` (round-robin, no stickiness: a session's hops land on
any node), how fast (p50/p99), and what a hop costs in CPU, in the nodes
(app CPU per hop) and in PostgreSQL (its server processes' CPU per hop),
beside today's default, one SQLite node on its own (no HAProxy), in the
same run on the same machine.

The load is ``bench/ussd_sessions.lua`` (the walk of ``run_ussd.py``): wrk,
one connection per thread, fresh session ids and phone numbers, the resent
``text`` growing hop by hop. Each configuration gets a fresh database
(created from ``--database-url``, upgraded with ``migrantline db upgrade``,
dropped after), so no phone is met twice.

    .venv/bin/python bench/run_scale.py [--seconds 10] [--rounds 3] [--database-url postgresql://...]

The URL defaults to MIGRANTLINE_TEST_DATABASE_URL, else to what ``.ci/postgres``
prints (it starts PostgreSQL if needed). Its role needs CREATEDB.

PostgreSQL CPU is the CPU time of the backends serving the benchmark's
database plus the cluster's own processes (WAL writer, checkpointer, ...);
a run shared with other users of the cluster counts only their share of
the latter. On a 2-core machine wrk, HAProxy, the nodes and PostgreSQL share
the cores: read req/s as this machine's, and the CPU per hop as the figure
that carries over to bigger hosts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run_ussd import (  # noqa: E402 - the repository on the path first
    CLOCK_TICKS,
    CONTENT,
    VENV_BIN,
    BenchError,
    Children,
    cpu_seconds_between,
    cpu_ticks,
    free_port,
    log,
    machine,
    run_wrk,
    tail,
    terminate_as_interrupt,
    wait_ready,
)

HAPROXY_SAMPLE = REPO / "deploy" / "haproxy.cfg"
SECRET = "bench-scale-secret-Lk2H8hWq3nB1vC5xZ9aD7fG4jK6mN0pQ"
THREADS = [1]  # `serve --threads` of every node (main sets it from --threads)
AUX = ("checkpointer", "background writer", "walwriter", "autovacuum", "logical replication",
       "wal writer", "stats")


@dataclass
class Row:
    """One configuration's figures."""

    name: str
    round: int = 1
    requests: int = 0
    rps: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    errors: int = 0
    app_cpu_s: float = 0.0
    pg_cpu_s: float | None = None
    haproxy_cpu_s: float | None = None
    wrk_cpu_s: float = 0.0
    idle_app_cores: float = 0.0
    idle_pg_cores: float | None = None
    failed: str = ""

    @property
    def url_less(self) -> bool:
        """The SQLite row (no PostgreSQL)."""
        return self.pg_cpu_s is None and self.name.startswith("SQLite")

    def all_cpu_s(self) -> float:
        """Every process's CPU for the run: the nodes, PostgreSQL, HAProxy and wrk."""
        return self.app_cpu_s + (self.pg_cpu_s or 0) + (self.haproxy_cpu_s or 0) + \
            self.wrk_cpu_s

    def per_hop_ms(self, cpu_s: float | None) -> str:
        return f"{1000 * cpu_s / self.requests:.3f}" if cpu_s is not None and self.requests \
            else "-"


def default_url() -> str:
    url = os.environ.get("MIGRANTLINE_TEST_DATABASE_URL", "").strip()
    if url:
        return url
    out = subprocess.run([str(REPO / ".ci" / "postgres")], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip().splitlines()[-1]


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def psql(url: str, sql: str) -> None:
    import psycopg  # lazy: only the PostgreSQL runs need the driver

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def postgres_cpu(database: str) -> dict[int, int]:
    """CPU ticks so far of the backends of ``database`` and the cluster's own processes."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if not cmd.startswith("postgres: "):
            continue
        words = cmd.split()
        if (len(words) > 2 and words[2] == database) or any(a in cmd for a in AUX):
            fields = stat[stat.rindex(")") + 2:].split()
            found[int(entry)] = int(fields[11]) + int(fields[12])
    return found


def node_env(data: Path, url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRANTLINE_")}
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
                "MIGRANTLINE_DATA_DIR": str(data), "MIGRANTLINE_CONTENT_DIR": str(CONTENT),
                "MIGRANTLINE_PROMPTS_RENDER": "off", "MIGRANTLINE_DEMO": "on",
                "MIGRANTLINE_SECRET_KEY": SECRET})
    if url:
        env["MIGRANTLINE_DATABASE_URL"] = url
    return env


def haproxy_config(port: int, nodes: list[int]) -> str:
    """deploy/haproxy.cfg as shipped, with this run's ports and no per-request log."""
    sample = HAPROXY_SAMPLE.read_text()
    servers = "".join(f"    server node{i + 1} 127.0.0.1:{p} check\n"
                      for i, p in enumerate(nodes))
    lines = [line for line in sample.splitlines(keepends=True)
             if not line.strip().startswith("server node")]
    out = "".join(lines).replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{port}")
    out = out.replace("    log global\n", "    no log\n")
    return out.rstrip("\n") + "\n" + servers


def start_nodes(children: Children, count: int, url: str | None, tmp: Path
                ) -> list[tuple[subprocess.Popen[bytes], int, Path]]:
    nodes = []
    for i in range(count):
        port, data = free_port(), tmp / f"node{i + 1}"
        logfile = tmp / f"node{i + 1}.log"
        with logfile.open("wb") as out:
            proc = children.start([str(VENV_BIN / "migrantline"), "serve", "--host",
                                   "127.0.0.1", "--port", str(port), "--workers", "1",
                                   "--threads", str(THREADS[0])],
                                  cwd=REPO, env=node_env(data, url), stdout=out,
                                  stderr=subprocess.STDOUT)
        nodes.append((proc, port, logfile))
    for proc, port, logfile in nodes:
        wait_ready(proc, port, logfile)
    return nodes


def measure(children: Children, name: str, count: int, url: str | None, seconds: float,
            connections: int, warmup: float, round_: int = 1) -> Row:
    """One configuration: nodes (+ HAProxy when ``url``), warm-up, the measured run."""
    row = Row(name, round_)
    database = f"h_deploy_scale_{count}_{round_}_{os.getpid()}" if url else ""
    db_url = with_database(url, database) if url else None
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as folder:
        tmp = Path(folder)
        try:
            if url and db_url:
                psql(url, f"create database {database}")
                up = subprocess.run([str(VENV_BIN / "migrantline"), "db", "upgrade"], cwd=REPO,
                                    env=node_env(tmp / "upgrade", db_url), capture_output=True,
                                    text=True)
                if up.returncode:
                    raise BenchError(f"db upgrade failed: {up.stdout}{up.stderr}")
            log(f"[{name}] starting {count} node(s)")
            nodes = start_nodes(children, count, db_url, tmp)
            port = nodes[0][1]
            haproxy = None
            if url:
                port = free_port()
                conf = tmp / "haproxy.cfg"
                conf.write_text(haproxy_config(port, [p for _, p, _ in nodes]))
                haproxy = children.start(["haproxy", "-db", "-f", str(conf)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                wait_ready(haproxy, port, conf)
                time.sleep(2.5)  # every node past HAProxy's first checks (rise 2)
            if warmup > 0:
                run_wrk(children, port, warmup, connections, "warm")
            idle(row, nodes, database if url else None)
            app_before = [cpu_ticks(p.pid) for p, _, _ in nodes]
            pg_before = postgres_cpu(database) if url else {}
            haproxy_before = cpu_ticks(haproxy.pid) if haproxy else {}
            log(f"[{name}] measuring {seconds:g} s, {connections} connections")
            run = run_wrk(children, port, seconds, connections, "run")
            row.app_cpu_s = sum(cpu_seconds_between(b, cpu_ticks(p.pid))
                                for b, (p, _, _) in zip(app_before, nodes, strict=True))
            row.wrk_cpu_s = run.cpu_s
            if haproxy:
                row.haproxy_cpu_s = cpu_seconds_between(haproxy_before, cpu_ticks(haproxy.pid))
            if url:
                pg_after = postgres_cpu(database)
                row.pg_cpu_s = sum(t - pg_before.get(pid, 0)
                                   for pid, t in pg_after.items()) / CLOCK_TICKS
            w = run.stats
            row.requests, row.rps = int(w["requests"]), float(w["requests_per_s"])
            row.p50, row.p99 = w["latency_ms"]["p50"], w["latency_ms"]["p99"]
            row.errors = (sum(w["socket_errors"].values()) + w["non200"] + w["bad_prefix"]
                          + w["ended_early"] + w["wrong_first_screen"])
            for proc, _, logfile in nodes:
                if proc.poll() is not None:
                    raise BenchError(f"a node died during the run:\n{tail(logfile)}")
        except BenchError as exc:
            row.failed = str(exc).splitlines()[0]
            log(f"[{name}] FAILED: {exc}")
        finally:
            children.stop_all()
            if url and database:
                time.sleep(0.5)
                psql(url, f"drop database if exists {database} with (force)")
    log(f"[{name}] {row.rps:.0f} req/s, p50 {row.p50:.2f} ms, p99 {row.p99:.2f} ms, "
        f"errors {row.errors}")
    return row


def idle(row: Row, nodes: list[tuple[subprocess.Popen[bytes], int, Path]],
         database: str | None, seconds: float = 3.0) -> None:
    """Cores the nodes (and PostgreSQL for them) keep busy with no caller at all:
    background jobs and polls, a cost per node that a busy run spreads over its hops."""
    app_before = [cpu_ticks(p.pid) for p, _, _ in nodes]
    pg_before = postgres_cpu(database) if database else {}
    time.sleep(seconds)
    row.idle_app_cores = sum(cpu_seconds_between(b, cpu_ticks(p.pid)) for b, (p, _, _)
                             in zip(app_before, nodes, strict=True)) / seconds
    if database:
        row.idle_pg_cores = sum(t - pg_before.get(pid, 0) for pid, t
                                in postgres_cpu(database).items()) / CLOCK_TICKS / seconds


def baseline_of(rows: list[Row], row: Row) -> Row | None:
    """The SQLite row measured in the same round as ``row`` (None if it failed)."""
    for r in rows:
        if r.round == row.round and r.url_less and not r.failed and r.requests:
            return r
    return None


def report(rows: list[Row], info: dict[str, object], args: argparse.Namespace) -> str:
    header = ("configuration", "round", "req/s", "x SQLite", "p50 ms", "p99 ms", "errors",
              "app CPU ms/hop", "PG CPU ms/hop", "HAProxy ms/hop", "wrk ms/hop",
              "all ms/hop", "idle app cores", "idle PG cores")
    table: list[tuple[str, ...]] = [header]
    for r in rows:
        if r.failed:
            table.append((r.name, str(r.round), "FAILED", *[""] * (len(header) - 4),
                          r.failed[:40]))
            continue
        base = baseline_of(rows, r)
        table.append((r.name, str(r.round), f"{r.rps:.0f}",
                      f"{r.rps / base.rps:.2f}" if base else "-",
                      f"{r.p50:.2f}", f"{r.p99:.2f}", str(r.errors),
                      r.per_hop_ms(r.app_cpu_s), r.per_hop_ms(r.pg_cpu_s),
                      r.per_hop_ms(r.haproxy_cpu_s), r.per_hop_ms(r.wrk_cpu_s),
                      r.per_hop_ms(r.all_cpu_s()), f"{r.idle_app_cores:.3f}",
                      f"{r.idle_pg_cores:.3f}" if r.idle_pg_cores is not None else "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [f"machine: {info['cpu_model']}, {info['cores']} cores; wrk {args.connections} "
             f"connections, {args.seconds:g} s after {args.warmup:g} s warm-up; "
             f"{args.rounds} round(s), each SQLite then every PostgreSQL row in turn; "
             f"nodes: `serve --workers 1 --threads {THREADS[0]}`; PostgreSQL rows behind "
             "deploy/haproxy.cfg, "
             "the SQLite row direct (no HAProxy); CPU per hop includes the idle cost "
             "(background jobs and polls, per node), shown in the last columns", ""]
    for n, row in enumerate(table):
        lines.append("  ".join([row[0].ljust(widths[0])]
                               + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    pg = [r for r in rows if r.pg_cpu_s and r.requests and not r.failed]
    if pg:
        per_hop = max(r.pg_cpu_s / r.requests for r in pg if r.pg_cpu_s)
        lines += ["", f"PostgreSQL CPU per hop (highest measured): {1000 * per_hop:.3f} ms: a "
                      f"16-core database host at 70% busy would answer ~{0.7 * 16 / per_hop:,.0f}"
                      " hops/s (the nodes scale out beside it)"]
    lines += ratios(rows)
    lines += ceiling([r for r in rows if r.round == 1])
    return "\n".join(lines)


def ratios(rows: list[Row]) -> list[str]:
    """Each PostgreSQL configuration's req/s over the SQLite node's of the same round: per
    round, the median and the lowest. Why rounds: on a shared machine the SQLite baseline
    itself moved by 16 % between back-to-back runs; one pair of runs is one sample."""
    lines = []
    for name in dict.fromkeys(r.name for r in rows if not r.url_less):
        found = [r.rps / base.rps for r in rows if r.name == name and not r.failed
                 and (base := baseline_of(rows, r)) is not None]
        if found:
            lines.append(f"{name}: x SQLite per round {', '.join(f'{x:.2f}' for x in found)}; "
                         f"median {statistics.median(found):.2f}, lowest {min(found):.2f}")
    return ["", *lines] if lines else []


def ceiling(rows: list[Row]) -> list[str]:
    """What the shared cores allow (the first round's rows). With every process on the
    same cores, req/s is at most the machine's cores over all the CPU a hop costs (``all
    ms/hop``). So even a node that spent on a PostgreSQL hop only what the SQLite node
    spends (its app CPU per hop), with PostgreSQL, HAProxy and wrk costing what they did,
    could answer at most this."""
    base = rows[0] if rows and not rows[0].failed and rows[0].requests else None
    if base is None:
        return []
    cores = os.cpu_count() or 1
    lines = []
    for r in rows[1:]:
        if r.failed or not r.requests or r.pg_cpu_s is None:
            continue
        other = (r.all_cpu_s() - r.app_cpu_s) / r.requests
        most = cores / (base.app_cpu_s / base.requests + other)
        lines.append(f"{r.name}: with the SQLite node's app CPU per hop "
                     f"({1000 * base.app_cpu_s / base.requests:.3f} ms) and this row's "
                     f"PostgreSQL, HAProxy and wrk ({1000 * other:.3f} ms), {cores} cores "
                     f"answer at most {most:,.0f} hops/s: {most / base.rps:.2f} x SQLite's "
                     "req/s")
    return ["", *lines] if lines else []


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="seconds measured (10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up (2)")
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent sessions = wrk connections = wrk threads (16)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds (1): each measures SQLite, then every node count, so "
                             "every ratio has a baseline taken minutes apart at most")
    parser.add_argument("--nodes", default="1,2,4", help="node counts on PostgreSQL (1,2,4)")
    parser.add_argument("--threads", type=int, default=1,
                        help="`serve --threads` of every node, SQLite's too (1): more than one "
                             "lets a node answer other hops while one waits on PostgreSQL")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL whose role may CREATE DATABASE (default: "
                             "MIGRANTLINE_TEST_DATABASE_URL, else .ci/postgres's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("wrk", "haproxy"):
        if not any((Path(d) / tool).exists() for d in
                   os.environ.get("PATH", "").split(":") + ["/usr/sbin"]):
            print(f"{tool} is missing: apt-get install -y {tool}", file=sys.stderr)
            return 1
    os.environ["PATH"] += ":/usr/sbin"
    url = args.database_url or default_url()
    THREADS[0] = args.threads
    info = machine()
    children = Children()
    rows: list[Row] = []
    try:
        with terminate_as_interrupt():
            for round_ in range(1, max(1, args.rounds) + 1):
                rows.append(measure(children, "SQLite, 1 node", 1, None, args.seconds,
                                    args.connections, args.warmup, round_))
                for n in [int(x) for x in args.nodes.split(",") if x.strip()]:
                    rows.append(measure(children, f"PostgreSQL, {n} node{'s' * (n > 1)}", n,
                                        url, args.seconds, args.connections, args.warmup,
                                        round_))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        children.stop_all()
    print(report(rows, info, args))
    return 1 if any(r.failed or r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
