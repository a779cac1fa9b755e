"""A stand-in for the providers' recording URLs: a real HTTP server on 127.0.0.1.

Twilio serves a recording at ``<RecordingUrl>.mp3`` (or ``.wav``) behind HTTP
basic auth with the account SID and auth token; Africa's Talking's
``recordingUrl`` is the mp3 itself, fetched with a plain GET. Each path is
given a list of replies, used in turn (the last one repeats), so a test can
say "500, then the audio"; every request is logged with its headers.
"""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.static_server import QuietServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "audio/mpeg"
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None  # basic auth the request must carry, else 401


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int = 0


class RecordingServer(QuietServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, list[Reply]] = {}
        self.log: list[Seen] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def route(self, path: str, *replies: Reply) -> str:
        """Serve ``replies`` in turn at ``path``; return the full URL of the path."""
        self.routes[path] = list(replies)
        return self.url + path

    def next_reply(self, path: str) -> Reply | None:
        with self.lock:
            replies = self.routes.get(path)
            if not replies:
                return None
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def seen(self, path: str) -> list[Seen]:
        return [s for s in self.log if s.path == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        seen = Seen(self.path, dict(self.headers))
        self.server.log.append(seen)
        reply = self.server.next_reply(self.path) or Reply(404, b"not found", "text/plain")
        if reply.auth is not None:
            expected = "Basic " + base64.b64encode(":".join(reply.auth).encode()).decode()
            if self.headers.get("Authorization") != expected:
                reply = Reply(401, b"<html>authenticate</html>", "text/html")
        seen.status = reply.status
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        chunked = reply.headers.get("Transfer-Encoding") == "chunked"  # no length told
        if not chunked:
            self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not chunked:
            self.wfile.write(reply.body)
            return
        for start in range(0, len(reply.body), 64 * 1024):
            piece = reply.body[start:start + 64 * 1024]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


@contextmanager
def serving() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def make_audio(folder: Path) -> dict[str, bytes]:
    """Real audio made here: a 2 s WAV (sox), an mp3 with an ID3 tag (ffmpeg, as Twilio's
    have) and a bare-frame mp3 (sox)."""
    wav, mp3, bare = folder / "tone.wav", folder / "tone.mp3", folder / "bare.mp3"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", str(wav), "synth", "2", "sine", "440"],
                   check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-codec:a",
                    "libmp3lame", "-b:a", "16k", str(mp3)], check=True)
    subprocess.run(["sox", str(wav), str(bare)], check=True)
    return {"wav": wav.read_bytes(), "mp3": mp3.read_bytes(), "bare_mp3": bare.read_bytes()}
