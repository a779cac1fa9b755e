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
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run_ussd import (  # noqa: E402 - the repository on the path first
    CLOCK_TICKS,
    CONTENT,
    PHONE_BASE,
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
# wrk's numbers for round N start here (ussd_sessions.lua: 100,000 per connection), so no
# phone is met twice across rounds (a phone seen before would skip the language list).
ROUND_PHONES, ROUND_PHONE_SPAN = 9779900000000, 50_000_000
AUX = ("checkpointer", "background writer", "walwriter", "autovacuum", "logical replication",
       "wal writer", "stats")


@dataclass
class Row:
    """One configuration's figures, over every round it was measured in."""

    name: str
    requests: int = 0
    rps: list[float] = field(default_factory=list)  # per round
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    errors: int = 0
    app_cpu_s: float = 0.0
    pg_cpu_s: float | None = None
    haproxy_cpu_s: float | None = None
    wrk_cpu_s: float = 0.0
    idle_app_cores: float = 0.0
    idle_pg_cores: float | None = None
    failed: str = ""

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps) if self.rps else 0.0

    def all_cpu_s(self) -> float:
        """Every process's CPU for the runs: the nodes, PostgreSQL, HAProxy and wrk."""
        return self.app_cpu_s + (self.pg_cpu_s or 0) + (self.haproxy_cpu_s or 0) + \
            self.wrk_cpu_s

    def per_hop_ms(self, cpu_s: float | None) -> str:
        return f"{1000 * cpu_s / self.requests:.3f}" if cpu_s is not None and self.requests \
            else "-"


@dataclass
class Stack:
    """One configuration, up: its nodes, HAProxy in front of them (PostgreSQL rows) and
    its database. Every configuration stays up for the whole run, idle but for its turns."""

    row: Row
    port: int
    nodes: list[tuple[subprocess.Popen[bytes], int, Path]]
    haproxy: subprocess.Popen[bytes] | None = None
    database: str = ""
    admin_url: str | None = None  # where the database was created (dropped at the end)


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


def bring_up(children: Children, name: str, count: int, url: str | None, tmp: Path,
             connections: int, warmup: float) -> Stack:
    """Nodes (+ HAProxy and a fresh database when ``url``), warmed up, their idle cost read."""
    row = Row(name)
    database = f"h_deploy_scale_{count}_{os.getpid()}" if url else ""
    db_url = with_database(url, database) if url else None
    if url and db_url:
        psql(url, f"create database {database}")
        up = subprocess.run([str(VENV_BIN / "migrantline"), "db", "upgrade"], cwd=REPO,
                            env=node_env(tmp / f"upgrade{count}", db_url),
                            capture_output=True, text=True)
        if up.returncode:
            raise BenchError(f"db upgrade failed: {up.stdout}{up.stderr}")
    log(f"[{name}] starting {count} node(s)")
    folder = tmp / ("postgresql" if url else "sqlite") / str(count)
    folder.mkdir(parents=True)
    nodes = start_nodes(children, count, db_url, folder)
    stack = Stack(row, nodes[0][1], nodes, database=database, admin_url=url)
    if url:
        stack.port = free_port()
        conf = tmp / f"haproxy{count}.cfg"
        conf.write_text(haproxy_config(stack.port, [p for _, p, _ in nodes]))
        stack.haproxy = children.start(["haproxy", "-db", "-f", str(conf)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_ready(stack.haproxy, stack.port, conf)
        time.sleep(2.5)  # every node past HAProxy's first checks (rise 2)
    if warmup > 0:
        run_wrk(children, stack.port, warmup, connections, "warm")
    idle(row, nodes, database or None)
    return stack


def sample(children: Children, stack: Stack, round_: int, seconds: float,
           connections: int) -> None:
    """One measured wrk run against ``stack``: its req/s for this round, its CPU added up.
    Each round's sessions and phone numbers are new (the round's own tag and numbers)."""
    row, nodes, haproxy = stack.row, stack.nodes, stack.haproxy
    tag = f"round{round_}"
    PHONE_BASE.setdefault(tag, ROUND_PHONES + round_ * ROUND_PHONE_SPAN)
    app_before = [cpu_ticks(p.pid) for p, _, _ in nodes]
    pg_before = postgres_cpu(stack.database) if stack.database else {}
    haproxy_before = cpu_ticks(haproxy.pid) if haproxy else {}
    log(f"[{row.name}] round {round_}: measuring {seconds:g} s, {connections} connections")
    run = run_wrk(children, stack.port, seconds, connections, tag)
    row.app_cpu_s += sum(cpu_seconds_between(b, cpu_ticks(p.pid))
                         for b, (p, _, _) in zip(app_before, nodes, strict=True))
    row.wrk_cpu_s += run.cpu_s
    if haproxy:
        row.haproxy_cpu_s = (row.haproxy_cpu_s or 0) + cpu_seconds_between(
            haproxy_before, cpu_ticks(haproxy.pid))
    if stack.database:
        pg_after = postgres_cpu(stack.database)
        row.pg_cpu_s = (row.pg_cpu_s or 0) + sum(
            t - pg_before.get(pid, 0) for pid, t in pg_after.items()) / CLOCK_TICKS
    w = run.stats
    row.requests += int(w["requests"])
    row.rps.append(float(w["requests_per_s"]))
    row.p50.append(w["latency_ms"]["p50"])
    row.p99.append(w["latency_ms"]["p99"])
    row.errors += (sum(w["socket_errors"].values()) + w["non200"] + w["bad_prefix"]
                   + w["ended_early"] + w["wrong_first_screen"])
    for proc, _, logfile in nodes:
        if proc.poll() is not None:
            raise BenchError(f"a node died during the run:\n{tail(logfile)}")
    log(f"[{row.name}] round {round_}: {row.rps[-1]:.0f} req/s, p50 {row.p50[-1]:.2f} ms, "
        f"p99 {row.p99[-1]:.2f} ms")


def measure_all(children: Children, configs: list[tuple[str, int, str | None]],
                args: argparse.Namespace) -> list[Row]:
    """Every configuration up at once, then ``--rounds`` rounds: in each, every
    configuration measured in turn (the order rotating), so each ratio compares runs a
    few seconds apart instead of minutes. On a shared machine the SQLite baseline moved
    by 16 % between back-to-back runs: one pair of runs is one sample, not a figure."""
    stacks: list[Stack] = []
    failed: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as folder:
        try:
            for name, count, url in configs:
                try:
                    stacks.append(bring_up(children, name, count, url, Path(folder),
                                           args.connections, args.warmup))
                except BenchError as exc:
                    failed.append(Row(name, failed=str(exc).splitlines()[0]))
                    log(f"[{name}] FAILED: {exc}")
            live = list(stacks)
            for round_ in range(1, max(1, args.rounds) + 1):
                turn = (round_ - 1) % max(1, len(live))
                for stack in live[turn:] + live[:turn]:
                    if stack.row.failed:
                        continue
                    try:
                        sample(children, stack, round_, args.seconds, args.connections)
                    except BenchError as exc:
                        stack.row.failed = str(exc).splitlines()[0]
                        log(f"[{stack.row.name}] FAILED: {exc}")
        finally:
            children.stop_all()
            time.sleep(0.5)
            for stack in stacks:
                if stack.database and stack.admin_url:
                    psql(stack.admin_url, f"drop database if exists {stack.database} with (force)")
    by_name = {s.row.name: s.row for s in stacks} | {r.name: r for r in failed}
    return [by_name[name] for name, _, _ in configs]


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


def report(rows: list[Row], info: dict[str, object], args: argparse.Namespace) -> str:
    base = rows[0] if rows and not rows[0].failed and rows[0].rps else None
    header = ("configuration", "req/s", "x SQLite", "p50 ms", "p99 ms", "errors",
              "app CPU ms/hop", "PG CPU ms/hop", "HAProxy ms/hop", "wrk ms/hop",
              "all ms/hop", "idle app cores", "idle PG cores")
    table: list[tuple[str, ...]] = [header]
    for r in rows:
        if r.failed:
            table.append((r.name, "FAILED", *[""] * (len(header) - 3), r.failed[:40]))
            continue
        found = per_round(base, r) if base else []
        table.append((r.name, f"{r.median_rps:.0f}",
                      f"{statistics.median(found):.2f}" if found else "-",
                      f"{statistics.median(r.p50):.2f}", f"{max(r.p99):.2f}", str(r.errors),
                      r.per_hop_ms(r.app_cpu_s), r.per_hop_ms(r.pg_cpu_s),
                      r.per_hop_ms(r.haproxy_cpu_s), r.per_hop_ms(r.wrk_cpu_s),
                      r.per_hop_ms(r.all_cpu_s()), f"{r.idle_app_cores:.3f}",
                      f"{r.idle_pg_cores:.3f}" if r.idle_pg_cores is not None else "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [f"machine: {info['cpu_model']}, {info['cores']} cores; wrk {args.connections} "
             f"connections; {args.rounds} round(s) of {args.seconds:g} s per configuration "
             f"after {args.warmup:g} s of warm-up, every configuration up at once and "
             "measured in turn in each round; "
             f"nodes: `serve --workers 1 --threads {THREADS[0]}`; PostgreSQL rows behind "
             "deploy/haproxy.cfg, the SQLite row direct (no HAProxy). req/s and p50: the "
             "median round; x SQLite: the median of each round's ratio; p99: the worst "
             "round; CPU per hop over all rounds, including the idle cost (background jobs "
             "and polls, per node), shown in the last columns", ""]
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
    if base:
        lines += [""] + [f"{r.name}: x SQLite per round "
                         f"{', '.join(f'{x:.2f}' for x in per_round(base, r))}; lowest "
                         f"{min(per_round(base, r)):.2f}"
                         for r in rows[1:] if not r.failed and per_round(base, r)]
    lines += ceiling(rows)
    return "\n".join(lines)


def per_round(base: Row, row: Row) -> list[float]:
    """``row``'s req/s over the SQLite node's, round by round (measured seconds apart)."""
    return [x / b for x, b in zip(row.rps, base.rps, strict=False) if b]


def ceiling(rows: list[Row]) -> list[str]:
    """What the shared cores allow. With every process on the same cores, req/s is at most
    the machine's cores over all the CPU a hop costs (``all ms/hop``). So even a node that
    spent on a PostgreSQL hop only what the SQLite node spends (its app CPU per hop), with
    PostgreSQL, HAProxy and wrk costing what they did, could answer at most this."""
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
                     f"answer at most {most:,.0f} hops/s: {most / base.median_rps:.2f} x "
                     "SQLite's req/s")
    return ["", *lines] if lines else []


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6,
                        help="seconds measured per configuration and round (6)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up (2)")
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent sessions = wrk connections = wrk threads (16)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds (3): in each, every configuration is measured in turn "
                             "for --seconds, so each ratio's baseline is seconds away")
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
    configs: list[tuple[str, int, str | None]] = [("SQLite, 1 node", 1, None)]
    configs += [(f"PostgreSQL, {n} node{'s' * (n > 1)}", n, url)
                for n in [int(x) for x in args.nodes.split(",") if x.strip()]]
    try:
        with terminate_as_interrupt():
            rows = measure_all(children, configs, args)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        children.stop_all()
    print(report(rows, info, args))
    return 1 if any(r.failed or r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
