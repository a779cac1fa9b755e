"""Publishing a tree's WAV recordings as MP3: what a field office's sync fetches is smaller.

Field staff may keep recordings in the content tree (``audio/<lang>/<id>.wav``,
made by `prompts record --content` before MP3, or dropped there by hand). With
``MIGRANTLINE_AUDIO_FORMAT=mp3`` `content publish` lists each as
``audio/<lang>/<id>.mp3`` (the sidecar ``.json`` keeps its name, so the
recording stays tied to its text) and stores the MP3's bytes: the manifest
changes only in its file names and hashes, which every deployment reads as
before. The tree itself is not changed. Conversions are kept under
``OUT/.converted/<sha256 of the WAV>.mp3``, so a re-publish converts only
what is new. A WAV with an MP3 of the same name beside it is not published:
the MP3 is.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from ussd_app.content.bundle import Entry
from ussd_app.content.files import sha256_file
from ussd_app.errors import BundleError
from voice_prompts.tts import TtsError, to_phone_mp3

CACHE = ".converted"


def compress_audio(scanned: list[tuple[Entry, Path]], out: Path,
                   progress: Callable[[int, int], None] = lambda done, total: None,
                   ) -> list[tuple[Entry, Path]]:
    """``scanned`` with every ``audio/**.wav`` replaced by its MP3; a recording that does
    not convert raises ``BundleError`` naming it (nothing is published)."""
    names = {entry.path for entry, _ in scanned}
    wavs = [(e, p) for e, p in scanned
            if e.path.startswith("audio/") and e.path.lower().endswith(".wav")]
    done: list[tuple[Entry, Path]] = []
    converted: dict[str, tuple[Entry, Path]] = {}
    lock = threading.Lock()
    count = [0]

    def convert(entry: Entry, path: Path) -> None:
        mp3_name = str(PurePosixPath(entry.path).with_suffix(".mp3"))
        if mp3_name in names:
            converted[entry.path] = (entry, path)  # dropped: its MP3 twin is published
            return
        cached = out / CACHE / f"{entry.sha256}.mp3"
        if not cached.is_file():
            try:
                to_phone_mp3(path, cached)
            except TtsError as exc:
                raise BundleError(f"{entry.path}: not converted to MP3 ({exc}); record it "
                                  "again, remove it, or publish with "
                                  "MIGRANTLINE_AUDIO_FORMAT=wav") from None
        converted[entry.path] = (Entry(mp3_name, sha256_file(cached), cached.stat().st_size),
                                 cached)
        with lock:
            count[0] += 1
            progress(count[0], len(wavs))

    # ffmpeg runs in its own process: one a core (a first publish of 10,000 prompts)
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1),
                            thread_name_prefix="mp3") as pool:
        for future in [pool.submit(convert, e, p) for e, p in wavs]:
            future.result()  # the first recording that fails is named
    for entry, path in scanned:
        if entry.path in converted:
            if converted[entry.path][0] is not entry:
                done.append(converted[entry.path])
        else:
            done.append((entry, path))
    return done
