"""Whether a file is audio a provider can play, and its content hash (the ``?v=`` of its URL).

Checked by magic numbers (and, for a WAV, that it holds the audio its header
promises), memoised by (path, mtime, size): a webhook reads out dozens of
prompts and must not hash each file every time.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from voice_prompts.tts import wav_complete, wav_format

MIN_AUDIO_BYTES = 512  # a header and a blink of sound is not a recording


def audio_type(head: bytes) -> str | None:
    """The MIME type of audio bytes by their magic, else None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


class FileInfo:
    """Validity and content hash of audio files, memoised by (path, mtime, size)."""

    def __init__(self) -> None:
        self._memo: dict[str, tuple[int, int, str | None, str]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> tuple[str, str] | None:
        """(mime type, sha256) of a valid audio file, else None."""
        try:
            st = path.stat()
        except OSError:
            return None
        key = str(path)
        with self._lock:
            memo = self._memo.get(key)
        if memo and memo[0] == st.st_mtime_ns and memo[1] == st.st_size:
            return (memo[2], memo[3]) if memo[2] else None
        mime, digest = None, ""
        if st.st_size >= MIN_AUDIO_BYTES:
            try:
                data = path.read_bytes()
            except OSError:
                data = b""
            mime = audio_type(data[:16])
            if mime == "audio/wav" and (wav_format(data[:4096]) is None
                                        or not wav_complete(data)):
                mime = None
            digest = hashlib.sha256(data).hexdigest() if mime else ""
        with self._lock:
            if len(self._memo) > 50_000:
                self._memo.clear()
            self._memo[key] = (st.st_mtime_ns, st.st_size, mime, digest)
        return (mime, digest) if mime else None
