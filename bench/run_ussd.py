"""USSD load benchmark: our service against bare Flask and a Node.js peer.

Why three servers: a requests-per-second figure alone says little on a
shared 2-core machine. Two references make it readable:

* bare Flask under granian (``bench/bare_flask.py``) is the ceiling of our
  own stack: what Flask and granian alone allow, with no menu behind them.
  ours/bare-flask is the share of that ceiling our code leaves.
* the peer (``bench/peer``) is the same demo menu built the way another team
  might (Express, ussd-menu-builder, Node's cluster). ours/peer says whether
  our stack is in the same league as a common alternative.

Every server gets the same number of worker processes and the same load:
wrk with ``bench/ussd_sessions.lua``, walking Africa's Talking sessions hop
by hop, one connection per wrk thread.

    .venv/bin/python bench/run_ussd.py [--duration 20] [--connections 32] [--workers 2]

It installs nothing; it says what to install when something is missing.
Results go to bench/results/ussd-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = REPO / ".venv" / "bin"
PEER = BENCH / "peer"
LUA = BENCH / "ussd_sessions.lua"
RESULTS = BENCH / "results"
CONTENT = REPO / "content"
ENDPOINT = "/ussd/africastalking"
SERVERS = ("ours", "bare-flask", "bare-flask-safe", "peer")

# Distinct phone ranges per phase, so the measured run never meets a phone
# number (and so a remembered language or resumable session) from warm-up.
PHONE_BASE = {"warm": 9779800000000, "run": 9779850000000}
PROBE_PHONE = "+9779700000000"
# ussd_sessions.lua gives each wrk thread 100,000 numbers from its base.
MAX_CONNECTIONS = (PHONE_BASE["run"] - PHONE_BASE["warm"]) // 100_000

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# `migrantline serve --threads` default: granian blocking threads per worker.
OURS_DEFAULT_THREADS = 1
# Busy cores besides server and wrk above which a run was not alone: the
# kernel's loopback work and this script stay well below it.
OTHER_CORES_WARNING = 0.45
HELPER_MARKERS = ("resource_tracker", "semaphore_tracker", "forkserver")


def log(message: str) -> None:
    """Progress goes to stderr with the time, so stdout stays the report."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A failure the user should read as one line, not as a traceback."""


# --------------------------------------------------------------------------
# Prerequisites


def check_prerequisites(servers: list[str]) -> list[str]:
    """Say exactly what to run for each missing tool, as the script installs nothing."""
    problems: list[str] = []
    if not shutil.which("wrk"):
        problems.append("wrk is missing: apt-get update && apt-get install -y wrk")
    if "peer" in servers:
        if not shutil.which("node") or not shutil.which("npm"):
            problems.append("node/npm are missing: apt-get install -y nodejs npm")
        if not (PEER / "node_modules" / "ussd-menu-builder").is_dir():
            problems.append("the peer's packages are missing: cd bench/peer && npm ci")
    if "ours" in servers and not (VENV_BIN / "migrantline").exists():
        problems.append(
            "our service is not installed: cd "
            f"{REPO} && .venv/bin/pip install -e .  "
            "(or leave it out: --servers bare-flask,peer)"
        )
    if {"bare-flask", "bare-flask-safe"} & set(servers) and not (VENV_BIN / "granian").exists():
        problems.append(f"granian is missing: cd {REPO} && .venv/bin/pip install granian flask")
    return problems


# --------------------------------------------------------------------------
# Processes, memory and CPU from /proc


@dataclass
class ProcInfo:
    """What one /proc entry tells about a server process."""

    pid: int
    ppid: int
    cmdline: str
    rss_bytes: int
    cpu_ticks: int


def read_proc(pid: int) -> ProcInfo | None:
    """One process's parent, command, RSS and CPU time; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name in field 2 may hold spaces; the rest follows its ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcInfo(
        pid=pid,
        ppid=int(fields[1]),
        cmdline=cmdline.decode(errors="replace").strip(),
        rss_bytes=int(statm[1]) * PAGE_SIZE,
        cpu_ticks=int(fields[11]) + int(fields[12]),
    )


def process_tree(root: int) -> list[ProcInfo]:
    """The root and all its descendants, root first.

    Why scan /proc: workers of granian and of Node's cluster are children (or
    grandchildren, when a launcher sits on top) of the process we started.
    """
    infos: dict[int, ProcInfo] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_proc(int(entry))
            if info is not None:
                infos[info.pid] = info
    if root not in infos:
        return []
    children: dict[int, list[int]] = {}
    for info in infos.values():
        children.setdefault(info.ppid, []).append(info.pid)
    tree: list[ProcInfo] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        tree.append(infos[pid])
        stack.extend(sorted(children.get(pid, []), reverse=True))
    return tree


def group_members(pgid: int) -> list[int]:
    """Processes in a process group, live or not yet reaped."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
            members.append(int(entry))
    return members


def is_helper(info: ProcInfo) -> bool:
    """multiprocessing's tracker processes serve no requests: not workers."""
    return any(marker in info.cmdline for marker in HELPER_MARKERS)


@dataclass
class MemorySample:
    """RSS per role; "master" is the process we started, "workers" the rest."""

    master_mb: float
    workers_mb: list[float]
    helpers_mb: list[float]
    processes: list[dict[str, Any]]


def sample_memory(root: int) -> MemorySample:
    """RSS of the master and each worker right now (after the measured run)."""
    tree = process_tree(root)
    mb = 1024 * 1024
    master = tree[0].rss_bytes / mb if tree else 0.0
    workers = [p.rss_bytes / mb for p in tree[1:] if not is_helper(p)]
    helpers = [p.rss_bytes / mb for p in tree[1:] if is_helper(p)]
    processes = [
        {
            "pid": p.pid,
            "ppid": p.ppid,
            "role": "master" if i == 0 else ("helper" if is_helper(p) else "worker"),
            "rss_mb": round(p.rss_bytes / mb, 1),
            "cmdline": p.cmdline[:200],
        }
        for i, p in enumerate(tree)
    ]
    return MemorySample(round(master, 1), [round(w, 1) for w in workers],
                        [round(h, 1) for h in helpers], processes)


def cpu_ticks(root: int) -> dict[int, int]:
    """CPU time so far of each process in the tree, to difference over the run.

    Why: wrk shares the 2 cores with the server, so req/s alone mixes the
    server's cost with the load generator's; CPU seconds per server do not.
    """
    return {p.pid: p.cpu_ticks for p in process_tree(root)}


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat).

    Why: the difference over a run, less the server's and wrk's own CPU, is
    what everything else took (other programs, kernel network work). Well
    above zero means the run shared the machine and its figures are suspect.
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU the server tree used in between; processes gone since count as 0."""
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / CLOCK_TICKS


# --------------------------------------------------------------------------
# Servers


@dataclass
class ServerSpec:
    """How to start one of the three servers."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_spec(name: str, port: int, workers: int, threads: int | None,
                data_dir: Path) -> ServerSpec:
    """The command for each server, each with the same worker count.

    Both Python servers run granian with the same blocking threads per worker:
    ``migrantline serve`` gives granian ``--threads`` (1 unless told), while
    granian's own default for WSGI is hundreds, so bare Flask is told too.
    """
    env = dict(os.environ)
    # Python servers: no buffered logs piling up in memory, no bytecode
    # writes into the repository mid-run.
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    host = "127.0.0.1"
    if name == "ours":
        env["MIGRANTLINE_DATA_DIR"] = str(data_dir)
        env["MIGRANTLINE_CONTENT_DIR"] = str(CONTENT)
        env["MIGRANTLINE_PROMPTS_RENDER"] = "off"  # voice audio is not what this measures
        env["MIGRANTLINE_DEMO"] = "on"  # the hops come unauthenticated, from this machine
        argv = [str(VENV_BIN / "migrantline"), "serve", "--host", host,
                "--port", str(port), "--workers", str(workers)]
        if threads is not None:
            argv += ["--threads", str(threads)]
    elif name == "bare-flask":
        argv = [str(VENV_BIN / "granian"), "--interface", "wsgi", "--host", host,
                "--port", str(port), "--workers", str(workers),
                "--blocking-threads", str(threads or OURS_DEFAULT_THREADS),
                "bench.bare_flask:app"]
    elif name == "bare-flask-safe":
        # Behind our bridge (bodies under the same timeouts as ours) and a committed
        # SQLite upsert per hop: what the two guarantees of every hop cost, and nothing else.
        env["BARE_SAFE_DB"] = str(data_dir / "bare-safe.db")
        argv = [str(VENV_BIN / "granian"), "--interface", "rsgi", "--host", host,
                "--port", str(port), "--workers", str(workers), "--blocking-threads", "1",
                "--http1-header-read-timeout", "10000", "--no-ws",
                "bench.bare_flask_safe:app"]
    elif name == "peer":
        argv = ["node", str(PEER / "server.js"), "--host", host, "--port", str(port),
                "--workers", str(workers), "--content", str(CONTENT)]
    else:
        raise BenchError(f"unknown server {name!r}")
    return ServerSpec(name, argv, env, REPO)


class Children:
    """Every process this script starts, so that none outlives it.

    Each child gets its own session (process group): a Ctrl-C in the terminal
    then reaches only this script, which stops the servers in order (SIGTERM
    to the master, SIGKILL to the group if that does not work in time).
    """

    def __init__(self) -> None:
        """Start with no children."""
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Popen in a new session, remembered for stop_all."""
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 15.0) -> bool:
        """Stop one child and what is left of its group; True if SIGTERM sufficed.

        The child is reaped only after its group was swept: until then its
        id cannot be reused, so the sweep can only hit processes it started.
        """
        clean = proc.returncode is None and self._terminate(proc, grace)
        leftovers = group_members(proc.pid)
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.returncode is None:
            proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)
        return clean and not [pid for pid in leftovers if pid != proc.pid]

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes], grace: float) -> bool:
        """SIGTERM, then wait up to grace for the exit without reaping it.

        os.kill, not Popen.send_signal: that one polls first, which reaps.
        """
        os.kill(proc.pid, signal.SIGTERM)  # unreaped, so still our child's id
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    return True
            except ChildProcessError:  # reaped elsewhere meanwhile
                return True
            time.sleep(0.05)
        return False

    def stop_all(self) -> None:
        """The safety net for Ctrl-C and failures: stop whatever still runs."""
        for proc in list(self.procs):
            self.stop(proc, grace=5.0)


def post_hop(port: int, text: str, session_id: str, phone: str, timeout: float) -> tuple[int, str]:
    """One Africa's Talking hop, as the gateway sends it."""
    body = urllib.parse.urlencode({
        "sessionId": session_id, "serviceCode": "*384*1234#", "phoneNumber": phone,
        "networkCode": "99999", "text": text,
    })
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", ENDPOINT, body,
                     {"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], port: int, log_path: Path,
               timeout: float = 90.0) -> float:
    """Wait until the first hop gets a CON/END answer; seconds it took."""
    started = time.monotonic()
    last_error = "no answer yet"
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise BenchError(f"exited with status {proc.returncode} before answering; "
                             f"log:\n{tail(log_path)}")
        try:
            status, text = post_hop(port, "", f"ATUid_probe_{port}", PROBE_PHONE, timeout=5)
            if status == 200 and text[:4] in ("CON ", "END "):
                return time.monotonic() - started
            last_error = f"HTTP {status}: {text[:120]!r}"
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.2)
    raise BenchError(f"not ready after {timeout:.0f} s ({last_error}); log:\n{tail(log_path)}")


def tail(path: Path, lines: int = 25) -> str:
    """The end of a server's log, to show why it failed."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# --------------------------------------------------------------------------
# wrk


@dataclass
class WrkRun:
    """The done() summary of one wrk run, its full output and its CPU time."""

    stats: dict[str, Any]
    stdout: str
    cpu_s: float


def run_wrk(children: Children, port: int, seconds: float, connections: int,
            tag: str, peak: dict[int, int] | None = None, root: int | None = None) -> WrkRun:
    """Run wrk once; while it runs, keep each server process's peak RSS.

    One thread per connection: each wrk thread has its own Lua state, so one
    connection per thread keeps every session's hops in order.
    """
    argv = ["wrk", f"-t{connections}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--latency", "--timeout", "10s", "-s", str(LUA),
            f"http://127.0.0.1:{port}{ENDPOINT}", "--", tag, str(PHONE_BASE[tag])]
    proc = children.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=BENCH)
    deadline = time.monotonic() + seconds + 60
    rusage = None
    while rusage is None:
        if time.monotonic() > deadline:
            children.stop(proc)
            raise BenchError("wrk did not finish in time")
        if peak is not None and root is not None:
            for info in process_tree(root):
                peak[info.pid] = max(peak.get(info.pid, 0), info.rss_bytes)
        # wait4 rather than Popen.wait: it also gives wrk's own CPU time,
        # which says how much of the machine the load generator took.
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            rusage = usage
            proc.returncode = os.waitstatus_to_exitcode(status)
        else:
            time.sleep(0.5)
    children.procs.remove(proc)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode(errors="replace")
    proc.stdout.close()
    if proc.returncode != 0:
        raise BenchError(f"wrk failed with status {proc.returncode}:\n{stdout}")
    match = re.search(r"^USSD_BENCH_JSON (\{.*\})$", stdout, re.MULTILINE)
    if not match:
        raise BenchError(f"wrk printed no USSD_BENCH_JSON line:\n{stdout}")
    return WrkRun(json.loads(match.group(1)), stdout, rusage.ru_utime + rusage.ru_stime)


# --------------------------------------------------------------------------
# One server, end to end


@dataclass
class ServerResult:
    """Everything measured about one server; the JSON file holds it all."""

    name: str
    command: list[str] = field(default_factory=list)
    port: int = 0
    ready_s: float | None = None
    warmup: dict[str, Any] | None = None
    wrk: dict[str, Any] | None = None
    wrk_stdout: str = ""
    wrk_cpu_s: float | None = None
    server_cpu_s: float | None = None
    machine_busy_s: float | None = None
    memory_after: dict[str, Any] | None = None
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    stopped_cleanly: bool | None = None
    error: str | None = None

    @property
    def other_cpu_s(self) -> float | None:
        """CPU the rest of the machine used during the run (see machine_busy_seconds)."""
        if None in (self.machine_busy_s, self.server_cpu_s, self.wrk_cpu_s):
            return None
        assert self.machine_busy_s is not None and self.server_cpu_s is not None
        assert self.wrk_cpu_s is not None
        return max(0.0, self.machine_busy_s - self.server_cpu_s - self.wrk_cpu_s)

    @property
    def errors(self) -> int:
        """Everything that was not a good answer: sockets, statuses, bodies.

        wrk's own status_errors (4xx/5xx) are left out: the script's non200
        already counts them, with any other non-200 besides.
        """
        if not self.wrk:
            return 0
        w = self.wrk
        counts = [*w["socket_errors"].values(), w["non200"],
                  w["bad_prefix"], w["ended_early"], w["wrong_first_screen"]]
        return sum(int(n) for n in counts)


def bench_server(children: Children, name: str, args: argparse.Namespace,
                 log_dir: Path) -> ServerResult:
    """Start, check, warm, measure, sample memory and stop one server."""
    result = ServerResult(name)
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix=f"ussd-bench-{name}-"))
    spec = server_spec(name, port, args.workers, args.threads, data_dir)
    result.command, result.port = spec.argv, port
    log_path = log_dir / f"{name}.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        log(f"[{name}] starting on 127.0.0.1:{port} with {args.workers} workers")
        with log_path.open("wb") as log_file:
            proc = children.start(spec.argv, cwd=spec.cwd, env=spec.env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
        result.ready_s = round(wait_ready(proc, port, log_path), 2)
        log(f"[{name}] answering after {result.ready_s} s; warming up {args.warmup:g} s")
        if args.warmup > 0:
            warm = run_wrk(children, port, args.warmup, args.connections, "warm")
            result.warmup = warm.stats
        log(f"[{name}] measuring {args.duration:g} s with {args.connections} connections")
        peak: dict[int, int] = {}
        before, busy_before = cpu_ticks(proc.pid), machine_busy_seconds()
        run = run_wrk(children, port, args.duration, args.connections, "run", peak, proc.pid)
        result.server_cpu_s = round(cpu_seconds_between(before, cpu_ticks(proc.pid)), 2)
        result.machine_busy_s = round(machine_busy_seconds() - busy_before, 2)
        result.wrk, result.wrk_stdout = run.stats, run.stdout
        result.wrk_cpu_s = round(run.cpu_s, 2)
        result.memory_after = asdict(sample_memory(proc.pid))
        result.peak_rss_mb = {str(pid): round(rss / 2**20, 1) for pid, rss in peak.items()}
        w = run.stats
        log(f"[{name}] {w['requests_per_s']:.0f} req/s, p50 {w['latency_ms']['p50']:.2f} ms, "
            f"p99 {w['latency_ms']['p99']:.2f} ms, errors {result.errors}")
        if proc.poll() is not None:
            raise BenchError(f"exited with status {proc.returncode} during the run; "
                             f"log:\n{tail(log_path)}")
    except BenchError as exc:
        result.error = str(exc)
        log(f"[{name}] FAILED: {exc}")
    finally:
        if proc is not None:
            result.stopped_cleanly = children.stop(proc)
            log(f"[{name}] stopped ({'cleanly' if result.stopped_cleanly else 'killed'})")
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


# --------------------------------------------------------------------------
# Report


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, memory, tool versions."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])

    def version(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "missing"
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "unknown"

    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": version(["node", "--version"]),
        "wrk": version(["wrk", "-v"]).split(" [")[0],
        "granian": version([str(VENV_BIN / "granian"), "--version"]),
    }


def ratio(a: ServerResult | None, b: ServerResult | None) -> float | None:
    """Throughput of a over b; None when either has no figure."""
    if not a or not b or not a.wrk or not b.wrk or not b.wrk["requests_per_s"]:
        return None
    return round(float(a.wrk["requests_per_s"]) / float(b.wrk["requests_per_s"]), 3)


def efficiency_ratio(a: ServerResult | None, b: ServerResult | None) -> float | None:
    """Hops per server CPU-second of a over b; None when either has no figure.

    Why beside throughput: req/s moves with whatever else the shared cores
    run; the CPU a hop costs moves much less (a crowded machine still adds
    cache misses and switches), so this ratio is the steadier of the two.
    """
    def hops_per_cpu_s(r: ServerResult) -> float | None:
        if not r.wrk or not r.server_cpu_s:
            return None
        return float(r.wrk["requests"]) / r.server_cpu_s

    if not a or not b:
        return None
    mine, theirs = hops_per_cpu_s(a), hops_per_cpu_s(b)
    return round(mine / theirs, 3) if mine and theirs else None


def mean(values: list[float]) -> float | None:
    """Mean rounded for the table; None for no values (e.g. no workers found)."""
    return round(sum(values) / len(values), 1) if values else None


def per_request(cpu_s: float | None, requests: int) -> str:
    """CPU milliseconds per request, for the table."""
    return f"{1000 * cpu_s / requests:.3f}" if cpu_s is not None and requests else "-"


def per_second(cpu_s: float | None, seconds: float) -> str:
    """Cores kept busy on average over the run, for the table."""
    return f"{cpu_s / seconds:.2f}" if cpu_s is not None and seconds else "-"


def report(results: list[ServerResult], info: dict[str, Any],
           ratios: dict[str, float | None], efficiency: dict[str, float | None],
           args: argparse.Namespace) -> str:
    """The table people read; the JSON file keeps everything else."""
    lines = [
        (f"machine: {info['cpu_model']}, {info['cores']} cores, {info['memory_gb']} GB; "
         f"python {info['python']}, node {info['node']}, {info['wrk']}, {info['granian']}"),
        (f"load: wrk {args.connections} connections (1 per thread), {args.duration:g} s "
         f"after {args.warmup:g} s warm-up; {args.workers} server workers each"),
        "",
    ]
    # CPU: the server's CPU time per answered request (what a hop costs,
    # whatever wrk took), and the cores server, wrk and all else kept busy.
    header = ("server", "req/s", "p50 ms", "p99 ms", "errors", "RSS/worker MB",
              "master MB", "CPU ms/req", "srv cores", "wrk cores", "other cores")
    rows: list[tuple[str, ...]] = [header]
    for r in results:
        if r.error or not r.wrk:
            rows.append((r.name, "FAILED", *[""] * (len(header) - 2)))
            continue
        mem = r.memory_after or {}
        worker_mean = mean(mem.get("workers_mb", []))
        rows.append((
            r.name,
            f"{r.wrk['requests_per_s']:.0f}",
            f"{r.wrk['latency_ms']['p50']:.2f}",
            f"{r.wrk['latency_ms']['p99']:.2f}",
            str(r.errors),
            f"{worker_mean:.1f}" if worker_mean is not None else "-",
            f"{mem.get('master_mb', 0):.1f}",
            per_request(r.server_cpu_s, r.wrk["requests"]),
            per_second(r.server_cpu_s, r.wrk["duration_s"]),
            per_second(r.wrk_cpu_s, r.wrk["duration_s"]),
            per_second(r.other_cpu_s, r.wrk["duration_s"]),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for key, value in ratios.items():
        shown = f"{value:.2f}" if value is not None else "n/a"
        steady = efficiency.get(key)
        lines.append(f"throughput {key}: {shown}"
                     + (f"   (hops per CPU-second {key}: {steady:.2f})" if steady else ""))
    for r in results:
        if r.error:
            lines.append(f"{r.name} failed: {r.error.splitlines()[0]}")
        elif r.wrk and r.other_cpu_s is not None:
            other = r.other_cpu_s / r.wrk["duration_s"]
            if other > OTHER_CORES_WARNING:
                lines.append(f"warning: something else kept {other:.2f} cores busy during "
                             f"{r.name}'s run; its figures are suspect, measure again")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Main


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP all unwind the same way, so the cleanup runs.

    SIGINT is set explicitly because a shell starts background jobs with it
    ignored, and a script started that way must still stop on it.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        """Turn the signal into the exception the cleanup already handles."""
        raise KeyboardInterrupt

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line; defaults are the figures the README quotes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20, help="seconds measured (20)")
    parser.add_argument("--connections", type=int, default=32,
                        help="concurrent sessions = wrk connections = wrk threads (32)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server (2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="blocking threads per worker for both Python servers "
                             f"(default: ours' own, {OURS_DEFAULT_THREADS})")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up load (3)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"comma-separated subset of {','.join(SERVERS)}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    parser.add_argument("--rounds", type=int, default=3,
                        help="every server in turn, this many times (3); the summary gives "
                             "each ratio's minimum over the rounds")
    args = parser.parse_args(argv)
    args.server_list = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = sorted(set(args.server_list) - set(SERVERS))
    if unknown or not args.server_list:
        parser.error(f"--servers takes names from {', '.join(SERVERS)}")
    if args.connections < 1 or args.workers < 1 or args.duration <= 0 or args.rounds < 1:
        parser.error("--connections, --workers, --duration and --rounds must be positive")
    if args.connections > MAX_CONNECTIONS:
        parser.error(f"--connections above {MAX_CONNECTIONS} would reuse phone numbers")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every server in turn, print the table, write the JSON; 1 on any failure."""
    args = parse_args(argv)
    problems = check_prerequisites(args.server_list)
    if problems:
        print("Cannot run the benchmark yet. Run:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1

    info = machine()
    log(f"machine: {info['cpu_model']}, {info['cores']} cores")
    children = Children()
    rounds: list[list[ServerResult]] = []
    started = time.strftime("%Y%m%d-%H%M%S")
    try:
        with (terminate_as_interrupt(),
              tempfile.TemporaryDirectory(prefix="ussd-bench-logs-") as logs):
            for n in range(args.rounds):
                # Each round starts with the next server, so a drift in the machine's load
                # (another program starting) does not always fall on the same one.
                shift = n % len(args.server_list)
                order = args.server_list[shift:] + args.server_list[:shift]
                log(f"round {n + 1} of {args.rounds}: {', '.join(order)}")
                done = {name: bench_server(children, name, args, Path(logs)) for name in order}
                rounds.append([done[name] for name in args.server_list])
    except KeyboardInterrupt:
        log("interrupted: stopping servers")
        return 130
    finally:
        children.stop_all()

    payload_rounds = []
    summary: list[tuple[dict[str, float | None], dict[str, float | None],
                        dict[str, ServerResult]]] = []
    for n, results in enumerate(rounds, start=1):
        by_name = {r.name: r for r in results}
        ours = by_name.get("ours")
        ratios = {f"ours/{name}": ratio(ours, by_name.get(name)) for name in REFERENCES}
        efficiency = {f"ours/{name}": efficiency_ratio(ours, by_name.get(name))
                      for name in REFERENCES}
        summary.append((ratios, efficiency, by_name))
        print(f"\n== round {n} of {len(rounds)}")
        print(report(results, info, ratios, efficiency, args))
        payload_rounds.append({
            "ratios_throughput": ratios, "ratios_cpu_efficiency": efficiency,
            "servers": [asdict(r) | {"errors": r.errors, "other_cpu_s": r.other_cpu_s}
                        for r in results]})
    print("\n" + rounds_summary(summary, args))

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"ussd-{started}.json"
    payload = {
        "started": started,
        "machine": info,
        "settings": {"duration_s": args.duration, "connections": args.connections,
                     "wrk_threads": args.connections, "workers": args.workers,
                     "python_blocking_threads": args.threads or OURS_DEFAULT_THREADS,
                     "warmup_s": args.warmup, "servers": args.server_list,
                     "rounds": args.rounds},
        "minimum_ratios": minimum_ratios(summary),
        "rounds": payload_rounds,
    }
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    failed = any(r.error or r.errors for results in rounds for r in results)
    return 1 if failed else 0


Summary = list[tuple[dict[str, float | None], dict[str, float | None], dict[str, "ServerResult"]]]
# The targets (issue 20), on the minimum over the rounds of one run.
TARGETS = {"ours/peer": 1.5, "ours/bare-flask": 0.9}
REFERENCES = ("bare-flask", "bare-flask-safe", "peer")
P99_TARGET_MS = 50.0


def minimum_ratios(summary: Summary) -> dict[str, float | None]:
    """Each ratio's minimum over the rounds (throughput, and hops per CPU-second)."""
    found: dict[str, float | None] = {}
    for key in (f"ours/{name}" for name in REFERENCES):
        for kind, index in (("throughput", 0), ("cpu", 1)):
            values = [r[index][key] for r in summary if r[index][key] is not None]
            found[f"{kind} {key}"] = min(values) if values else None  # type: ignore[type-var]
    return found


def rounds_summary(summary: Summary, args: argparse.Namespace) -> str:
    """One line per round (req/s, CPU per hop, p99 of each server, the ratios), then
    each ratio's minimum against its target."""
    names = [n for n in SERVERS if n in args.server_list]
    lines = ["summary: req/s (CPU ms per hop, p99 ms) per server, and the ratios, by round"]
    for n, (ratios, _efficiency, by_name) in enumerate(summary, start=1):
        cells = []
        for name in names:
            r = by_name.get(name)
            if r is None or r.error or not r.wrk:
                cells.append(f"{name} FAILED")
                continue
            cells.append(f"{name} {r.wrk['requests_per_s']:.0f} "
                         f"({per_request(r.server_cpu_s, r.wrk['requests'])}, "
                         f"{r.wrk['latency_ms']['p99']:.1f})")
        shown = ", ".join(f"{k} {v:.2f}" for k, v in ratios.items() if v is not None)
        lines.append(f"  round {n}: " + "; ".join(cells) + (f"; {shown}" if shown else ""))
    minima = minimum_ratios(summary)
    for key in (f"ours/{name}" for name in REFERENCES):
        low, cpu = minima.get(f"throughput {key}"), minima.get(f"cpu {key}")
        if low is None:
            continue
        target = TARGETS.get(key)
        judged = (f"target >= {target}: {'met' if low >= target else 'missed'}"
                  if target else "no target: the same guarantees as ours")
        lines.append(f"minimum throughput {key}: {low:.2f} ({judged})"
                     + (f"; minimum hops per CPU-second {key}: {cpu:.2f}" if cpu else ""))
    p99s = [s[2]["ours"].wrk["latency_ms"]["p99"] for s in summary
            if "ours" in s[2] and s[2]["ours"].wrk]
    if p99s:
        lines.append(f"ours p99, worst round: {max(p99s):.2f} ms (target < "
                     f"{P99_TARGET_MS:g} ms: {'met' if max(p99s) < P99_TARGET_MS else 'missed'})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
