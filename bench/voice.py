"""Voice webhook benchmark: Twilio calls walked step by step, ours beside bare Flask.

    .venv/bin/python bench/voice.py [--duration 20] [--connections 16] [--workers 2]
                                    [--render en]

Both servers run under granian with the same workers and threads; wrk walks
whole calls with ``bench/voice_calls.lua`` (call, language, menu, submenu,
article, back, main menu, the status callback). The baseline (bare Flask,
``bench/bare_flask.py``) parses the form and answers a fixed TwiML menu of the
size ours sends: the ratio is what our call logic, the engine, the prompt
lookups and the call's storage cost on top of the framework.

Before the run the prompts of ``--render`` languages are generated
(``migrantline prompts render``), so ours plays generated audio as a
deployment does; the time and the audio bytes per language are printed too.
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

from bench.run_ussd import Children, free_port, tail  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = REPO / ".venv" / "bin"
LUA = BENCH / "voice_calls.lua"


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
    else:
        argv = [str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                str(port), "--workers", str(workers), "--blocking-threads", "1",
                "bench.bare_flask:app"]
    handle = log.open("wb")
    return children.start(argv, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--render", default="en", help="languages to render first, or none")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    children = Children()
    results: dict[str, dict] = {}
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
            for name in ("ours", "bare-flask"):
                port = free_port()
                log = Path(tmp) / f"{name}.log"
                proc = serve(children, name, port, args.workers, data, log)
                wait_ready(proc, port, log)
                wrk(children, port, 5, args.connections, "warm")
                results[name] = wrk(children, port, args.duration, args.connections, "run")
                children.stop(proc)
        finally:
            children.stop_all()
    ours, bare = results["ours"], results["bare-flask"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {args.workers} workers, "
          f"{args.connections} connections, {args.duration} s")
    for name, r in results.items():
        lat = r["latency_ms"]
        print(f"{name:>10}: {r['requests_per_s']:8.1f} req/s  p50 {lat['p50']:6.2f} ms  "
              f"p99 {lat['p99']:6.2f} ms  calls {r['calls_completed']}  "
              f"non-200 {r['non200']}  errors {r['socket_errors']}")
    print(f"ours/bare: throughput {ours['requests_per_s'] / bare['requests_per_s']:.2f}, "
          f"p99 {ours['latency_ms']['p99'] / bare['latency_ms']['p99']:.2f}x")
    return 0 if ours["non200"] == 0 and ours["latency_ms"]["p99"] < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
