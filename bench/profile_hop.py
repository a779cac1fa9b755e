"""Where a USSD hop's and a voice webhook's time goes, in one process, no server.

    .venv/bin/python bench/profile_hop.py [--calls 2000] [--data DIR] [--top 25]

Builds the app as a worker does (``create_app``, SQLite in ``--data`` or a
temporary folder), then drives it through its WSGI callable with the walks of
``ussd_sessions.lua`` (7 hops a session) and ``voice_calls.lua`` (8 webhooks a
call), under cProfile. Each phase's time is the cumulative time of the
functions that do it (``PHASES``), per request, so the table reads as "where
each microsecond of our code goes"; what the server (granian, the RSGI bridge)
adds comes from ``py-spy`` on a served worker (bench/README.md). Prompts of
``--data`` are used as they are: render them first (``migrantline prompts
render --lang en`` with ``MIGRANTLINE_DATA_DIR``) to profile the webhooks a
deployment answers, where every piece is a generated file.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO = Path(__file__).resolve().parent.parent

USSD_TEXTS = ["", "1", "1*1", "1*1*3", "1*1*3*98", "1*1*3*98*0", "1*1*3*98*0*00"]
VOICE_STEPS = [("/voice/twilio", ""), ("/voice/twilio", "s=0"), ("/voice/twilio", "s=1"),
               ("/voice/twilio", "s=2"), ("/voice/twilio", "s=3"), ("/voice/twilio", "s=4"),
               ("/voice/twilio/status", "")]
VOICE_DIGITS = ["", "1", "1", "1", "0", "00", "end"]

# phase -> (file suffix, function name) whose cumulative time is the phase's
PHASES: dict[str, list[tuple[str, str]]] = {
    "voice": [
        ("flask/app.py", "wsgi_app"),
        ("voice/endpoints.py", "_twilio_call"),
        ("store/voice.py", "voice_call"),
        ("voice/calls.py", "_start"),
        ("conversation/core.py", "step"),
        ("voice/speech.py", "screen"),
        ("engine/machine.py", "view"),
        ("voice/reply.py", "twiml"),
        ("store/voice.py", "save_voice_step"),
        ("store/voice.py", "end_voice_call"),
        ("store/core.py", "phone_language"),
        ("conversation/codec.py", "load_state"),
        ("conversation/codec.py", "dump_state"),
    ],
    "ussd": [
        ("ussd/endpoints.py", "__call__"),
        ("ussd/endpoints.py", "handle"),
        ("ussd/sessions.py", "answer"),
    ],
}


def environ(path: str, query: str, body: bytes) -> dict[str, Any]:
    return {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": query,
            "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5000",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": False,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "HTTP_HOST": "127.0.0.1:5000"}


def call(app: Any, env: dict[str, Any]) -> bytes:
    got: list[str] = []

    def start(status: str, headers: Any, exc_info: Any = None) -> None:
        got.append(status)

    result = app(env, start)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    if not got or not got[0].startswith("200"):
        raise SystemExit(f"{env['PATH_INFO']}?{env['QUERY_STRING']}: {got} {body[:200]!r}")
    return body


def ussd_walk(app: Any, n: int, tag: str) -> int:
    hops = 0
    for i in range(n):
        for text in USSD_TEXTS:
            body = urlencode({"sessionId": f"ATs{tag}{i}", "phoneNumber": f"+9779{i:09d}",
                              "serviceCode": "*384#", "networkCode": "99999",
                              "text": text}).encode()
            out = call(app, environ("/ussd/africastalking", "", body))
            assert out.startswith((b"CON ", b"END ")), out
            hops += 1
    return hops


def voice_walk(app: Any, n: int, tag: str) -> int:
    hops = 0
    for i in range(n):
        for (path, query), digits in zip(VOICE_STEPS, VOICE_DIGITS, strict=True):
            form = {"CallSid": f"CA{tag}{i}", "From": f"+9779{i:09d}",
                    "To": "+15005550006", "Direction": "inbound", "AccountSid": "ACbench"}
            if digits == "end":
                form.update(CallStatus="completed", CallDuration="60")
            else:
                form["CallStatus"] = "in-progress"
                if digits:
                    form["Digits"] = digits
            out = call(app, environ(path, query, urlencode(form).encode()))
            assert b"<Response" in out, out
            hops += 1
    return hops


def phase_table(stats: pstats.Stats, phases: list[tuple[str, str]], hops: int) -> list[str]:
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for suffix, name in phases:
        total, calls = 0.0, 0
        for (filename, _line, func), (_cc, nc, _tt, ct, _callers) in raw.items():
            if func == name and filename.endswith(suffix):
                total += ct
                calls += nc
        rows.append(f"  {suffix + ':' + name:<45} {total / hops * 1e6:8.1f} us/req  "
                    f"({calls / hops:.2f} calls/req)")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--data", type=Path, help="MIGRANTLINE_DATA_DIR (prompts rendered)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", choices=("ussd", "voice"))
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    data = args.data or Path(tmp.name) / "var"
    os.environ.update({"MIGRANTLINE_DATA_DIR": str(data),
                       "MIGRANTLINE_CONTENT_DIR": str(REPO / "content"),
                       "MIGRANTLINE_PROMPTS_RENDER": "off", "MIGRANTLINE_LOG_LEVEL": "WARNING",
                       "MIGRANTLINE_DEMO": "on"})
    from ussd_app.web import create_app

    app = create_app().wsgi_app
    walks = {"ussd": ussd_walk, "voice": voice_walk}
    run = f"{int(time.time())}x"  # fresh sessions and calls even in a reused --data
    for kind, walk in walks.items():
        if args.only and kind != args.only:
            continue
        walk(app, 200, run + "warm")  # caches, first-time imports
        start = time.perf_counter()
        cpu = time.process_time()
        hops = walk(app, args.calls, run + "plain")
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        prof = cProfile.Profile()
        prof.enable()
        hops_p = walk(app, args.calls, run + "prof")
        prof.disable()
        stats = pstats.Stats(prof, stream=sys.stdout)
        print(f"\n== {kind}: {hops} requests, {wall / hops * 1e6:.1f} us/req wall, "
              f"{cpu / hops * 1e6:.1f} us/req CPU (no profiler); phases under cProfile "
              f"(inflates small calls):")
        print("\n".join(phase_table(stats, PHASES[kind], hops_p)))
        stats.sort_stats("cumulative").print_stats(args.top)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
