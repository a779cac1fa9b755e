"""Voice webhook benchmark: Twilio calls walked step by step, ours beside bare Flask.

    .venv/bin/python bench/voice.py [--duration 20] [--connections 16] [--workers 2]
                                    [--rounds 3] [--render en]

All servers run under granian with the same workers and threads; wrk walks
whole calls with ``bench/voice_calls.lua`` (call, language, menu, submenu,
article, back, main menu, the status callback). The baseline (bare Flask,
``bench/bare_flask.py``) parses the form and answers a fixed TwiML menu of the
size ours sends: the ratio is what our call logic, the engine, the prompt
lookups and the call's storage cost on top of the framework. A third server,
``bench/bare_flask_safe.py``, does the same behind our RSGI bridge (bodies read
under a timeout) and commits one SQLite write per webhook: what those two
guarantees cost, beside which the rest of ours is our own code.

Before the run the prompts of ``--render`` languages are generated
(``migrantline prompts render``), so ours plays generated audio as a
deployment does; the time and the audio bytes per language are printed too.

Three rounds by default, each measuring both servers in turn (the order
alternates): it prints every round's figures with the server's CPU per webhook,
the ratio per round and the minimum (the figure the issue's target is on), and
exits 1 on an error or when our p99 reaches 50 ms in any round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run_ussd import (  # noqa: E402
    RESULTS,
    Children,
    cpu_seconds_between,
    cpu_ticks,
    free_port,
    tail,
)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = REPO / ".venv" / "bin"
LUA = BENCH / "voice_calls.lua"
# bare-flask-safe: bare Flask behind our bridge, committing each webhook (bare_flask_safe.py)
SERVERS = ("ours", "bare-flask", "bare-flask-safe")


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early; log:\n{tail(log)}")
        try:
            data = b"CallSid=CAprobe&From=%2B9779700000000&Direction=inbound"
            with urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{port}/voice/twilio", data=data), timeout=5) as r:
                if b"<Response" in r.read():
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server not ready; log:\n{tail(log)}")


def wrk(children: Children, port: int, seconds: int, connections: int, tag: str) -> dict:
    argv = ["wrk", f"-t{connections}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{port}", "--", tag]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=BENCH, check=True).stdout
    found = re.search(r"^VOICE_BENCH_JSON (\{.*\})$", out, re.MULTILINE)
    if not found:
        raise SystemExit(f"wrk printed no VOICE_BENCH_JSON:\n{out}")
    return json.loads(found.group(1))


def serve(children: Children, name: str, port: int, workers: int, data: Path,
          log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "MIGRANTLINE_DATA_DIR": str(data), "MIGRANTLINE_CONTENT_DIR": str(REPO / "content"),
           "MIGRANTLINE_PROMPTS_RENDER": "off", "MIGRANTLINE_LOG_LEVEL": "WARNING",
           "MIGRANTLINE_DEMO": "on"}  # unsigned webhooks from this machine
    if name == "ours":
        argv = [str(BIN / "migrantline"), "serve", "--port", str(port), "--workers",
                str(workers)]
    elif name == "bare-flask-safe":  # behind our bridge, one committed write per webhook
        env["BARE_SAFE_DB"] = str(data.parent / "bare-safe.db")
        argv = [str(BIN / "granian"), "--interface", "rsgi", "--host", "127.0.0.1", "--port",
                str(port), "--workers", str(workers), "--blocking-threads", "1",
                "--http1-header-read-timeout", "10000", "--no-ws", "bench.bare_flask_safe:app"]
    else:
        argv = [str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                str(port), "--workers", str(workers), "--blocking-threads", "1",
                "bench.bare_flask:app"]
    handle = log.open("wb")
    return children.start(argv, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)


def measure(children: Children, name: str, args: argparse.Namespace, data: Path,
            tmp: Path, tag: str) -> dict:
    """One server: start, warm up, measure (wrk's figures and the server's CPU), stop."""
    port = free_port()
    log = tmp / f"{name}-{tag}.log"
    proc = serve(children, name, port, args.workers, data, log)
    try:
        wait_ready(proc, port, log)
        wrk(children, port, args.warmup, args.connections, f"w{tag}")
        before = cpu_ticks(proc.pid)
        result = wrk(children, port, args.duration, args.connections, f"r{tag}")
        result["server_cpu_s"] = cpu_seconds_between(before, cpu_ticks(proc.pid))
    finally:
        children.stop(proc)
    result["cpu_us_per_req"] = 1e6 * result["server_cpu_s"] / max(1, result["requests"])
    return result


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="ours and bare, in turn, this many times (3)")
    parser.add_argument("--render", default="en", help="languages to render first, or none")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    children = Children()
    rounds: list[dict[str, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "var"
        env = {**os.environ, "MIGRANTLINE_DATA_DIR": str(data),
               "MIGRANTLINE_CONTENT_DIR": str(REPO / "content")}
        for lang in [x for x in args.render.split(",") if x and x != "none"]:
            start = time.perf_counter()
            subprocess.run([str(BIN / "migrantline"), "prompts", "render", "--lang", lang],
                           env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
            print(f"rendered the {lang} prompts in {time.perf_counter() - start:.1f} s")
        status = subprocess.run([str(BIN / "migrantline"), "prompts", "status"], env=env,
                                cwd=REPO, capture_output=True, text=True)
        print(status.stdout.strip())
        try:
            for n in range(args.rounds):
                # Alternate who goes first, so a drift in the machine's load (another
                # program starting) does not always fall on the same server.
                order = SERVERS[n % len(SERVERS):] + SERVERS[:n % len(SERVERS)]
                found = {name: measure(children, name, args, data, Path(tmp), f"{n}")
                         for name in order}
                rounds.append({name: found[name] for name in SERVERS})
                ours, bare = found["ours"], found["bare-flask"]
                print(f"round {n + 1}: ours {ours['requests_per_s']:.0f} req/s, "
                      f"bare {bare['requests_per_s']:.0f} req/s: "
                      f"{ours['requests_per_s'] / bare['requests_per_s']:.2f}x", flush=True)
        finally:
            children.stop_all()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.workers} workers, {args.connections} "
          f"connections, {args.duration} s x {args.rounds} rounds")
    print(f"{'round':>5}  {'server':>15}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  "
          f"{'CPU us/req':>10}  {'calls':>6}  {'errors':>6}")
    for n, found in enumerate(rounds, start=1):
        for name, r in found.items():
            lat = r["latency_ms"]
            print(f"{n:>5}  {name:>15}  {r['requests_per_s']:8.0f}  {lat['p50']:7.2f}  "
                  f"{lat['p99']:7.2f}  {r['cpu_us_per_req']:10.0f}  {r['calls_completed']:>6}  "
                  f"{r['non200'] + r['socket_errors'] + r['not_twiml']:>6}")
    throughput = [f["ours"]["requests_per_s"] / f["bare-flask"]["requests_per_s"]
                  for f in rounds]
    per_cpu = [f["bare-flask"]["cpu_us_per_req"] / f["ours"]["cpu_us_per_req"]
               for f in rounds]
    worst_p99 = max(f["ours"]["latency_ms"]["p99"] for f in rounds)
    print("ours/bare throughput by round: " + ", ".join(f"{x:.2f}" for x in throughput)
          + f"; minimum {min(throughput):.2f} (target >= 0.5: "
          f"{'met' if min(throughput) >= 0.5 else 'missed'})")
    print("ours/bare webhooks per CPU-second by round: "
          + ", ".join(f"{x:.2f}" for x in per_cpu) + f"; minimum {min(per_cpu):.2f}")
    safe = [f["ours"]["requests_per_s"] / f["bare-flask-safe"]["requests_per_s"]
            for f in rounds]
    print("ours/bare-flask-safe (the same guarantees as ours) throughput by round: "
          + ", ".join(f"{x:.2f}" for x in safe) + f"; minimum {min(safe):.2f} (no target)")
    print(f"ours p99, worst round: {worst_p99:.2f} ms (target < 50 ms: "
          f"{'met' if worst_p99 < 50 else 'missed'})")
    errors = sum(f["ours"]["non200"] + f["ours"]["socket_errors"] + f["ours"]["not_twiml"]
                 for f in rounds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"voice-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"machine": cpu_model(), "settings": vars(args),
                               "rounds": rounds, "ratios": throughput, "ratios_safe": safe,
                               "cpu_ratios": per_cpu}, indent=2) + "\n")
    print(f"results: {out.relative_to(REPO)}")
    return 0 if errors == 0 and worst_p99 < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
