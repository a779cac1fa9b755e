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

# Phases: name -> the functions (file suffix, name) whose cumulative times add up to it;
# "-" entries are subtracted (a function's callees counted in another phase). The voice
# webhooks' WSGI is Flask's wsgi_app less the view, or (since issue 20) VoiceEndpoint's.
PHASES: dict[str, list[tuple[str, str, str]]] = {
    "ussd": [
        ("whole app (WSGI callable)", "ussd_app/urls.py", "__call__"),
        ("parse + auth (form, webhook check)", "ussd/endpoints.py", "handle"),
        ("-", "ussd/sessions.py", "answer"),
        ("caller key (keyed hash)", "conversation/inbound.py", "identify"),
        ("session lookup + start", "store/sessions.py", "session"),
        ("session lookup + start", "ussd/sessions.py", "_start"),
        ("session lookup + start", "store/sessions.py", "start_session"),
        ("engine (replay the new input)", "ussd/sessions.py", "_replay"),
        ("engine (replay the new input)", "engine/view.py", "view"),
        ("rendering (screen to text)", "ussd/layout.py", "render"),
        ("session write (progress, language)", "store/sessions.py", "save_session"),
        ("session write (progress, language)", "store/sessions.py", "set_phone_language"),
    ],
    "voice": [
        ("whole app (WSGI callable)", "ussd_app/urls.py", "__call__"),
        ("WSGI: Flask, or VoiceEndpoint (less the view)", "flask/app.py", "wsgi_app"),
        ("WSGI: Flask, or VoiceEndpoint (less the view)", "voice/endpoints.py", "__call__"),
        ("-", "voice/endpoints.py", "twilio"),
        ("-", "voice/endpoints.py", "twilio_status"),
        ("parse + auth (form, webhook check)", "voice/endpoints.py", "_twilio_call"),
        ("caller key (keyed hash)", "conversation/inbound.py", "identify"),
        ("call lookup (row + state)", "store/voice.py", "voice_call"),
        ("call lookup (row + state)", "conversation/codec.py", "load_state"),
        ("engine (step, view)", "conversation/core.py", "step"),
        ("engine (step, view)", "engine/view.py", "view"),
        ("speech (prompt lookups)", "voice/speech.py", "screen"),
        ("-", "engine/view.py", "view"),
        ("rendering (TwiML)", "voice/reply.py", "twiml"),
        ("state write (row, sealed state)", "voice/calls.py", "_start"),
        ("state write (row, sealed state)", "store/voice.py", "save_voice_step"),
        ("state write (row, sealed state)", "store/voice.py", "end_voice_call"),
        ("state write (row, sealed state)", "conversation/codec.py", "dump_state"),
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


def phase_table(stats: pstats.Stats, phases: list[tuple[str, str, str]], hops: int,
                cpu_us: float, walk_us: float) -> list[str]:
    """Each phase's share of the profiled walk, scaled to the CPU per request measured
    without the profiler (cProfile inflates many small calls: read as estimates)."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    found: dict[str, float] = {}
    last = ""
    for name, suffix, func in phases:
        total = sum(ct for (filename, _line, f), (_cc, _nc, _tt, ct, _callers) in raw.items()
                    if f == func and filename.endswith(suffix))
        if name == "-":
            found[last] = found.get(last, 0.0) - total
            continue
        found[name] = found.get(name, 0.0) + total
        last = name
    whole = next(iter(found))
    found["other (in the app)"] = found[whole] - sum(v for k, v in found.items() if k != whole)
    scale = cpu_us / walk_us if walk_us else 0.0
    return [f"  {name:<46} {seconds / hops * 1e6 * scale:7.1f} us/req"
            for name, seconds in found.items()]


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
              f"{cpu / hops * 1e6:.1f} us/req CPU (no profiler); the phases, scaled to it from "
              f"cProfile (the harness's own work is in the whole, not in the app):")
        walked = sum(ct for (f, _l, fn), (_c, _n, _t, ct, _x) in stats.stats.items()  # type: ignore[attr-defined]
                     if fn == walk.__name__ and f.endswith("profile_hop.py"))
        print("\n".join(phase_table(stats, PHASES[kind], hops_p, cpu / hops * 1e6,
                                     walked / hops_p * 1e6)))
        stats.sort_stats("cumulative").print_stats(args.top)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
