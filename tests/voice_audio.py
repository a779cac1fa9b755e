"""How long a caller listens: the voice line driven as Twilio calls it, its prompts
rendered for real (espeak-ng), and the audio of every ``<Play>`` measured.

Shared by the voice tests (a bound on the main menu per language) and
``bench/voice_menus.py`` (the table in the README). Only the prompts a walk
asks for are rendered: the first call notes them (``Asked``), they are made,
and a second call hears them all as audio.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from tests.voice_phone import Heard, VoiceCaller
from voice_prompts import tts


class Asked:
    """A prompt library that notes every prompt a screen asks for (and its fallback
    language's twin), then answers as the library does."""

    def __init__(self, library: Any):
        self.library = library
        self.asked: dict[tuple[str, str], Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.library, name)

    def _note(self, tree: Any, t: Any, lang: str, prompt_id: str) -> None:
        manifest = self.library.manifest(tree, t)
        for code in (lang, self.library.fallback_lang):
            found = manifest.get(code, prompt_id)
            if found is not None:
                self.asked[(code, prompt_id)] = found

    def speak(self, tree: Any, t: Any, lang: str, text: str, says: Any) -> Any:
        manifest = self.library.manifest(tree, t)
        found = manifest.find(lang, text) or manifest.find_any(text)
        if found is not None:
            self._note(tree, t, found.lang, found.id)
        return self.library.speak(tree, t, lang, text, says)

    def prompt(self, tree: Any, t: Any, lang: str, prompt_id: str, says: Any) -> Any:
        self._note(tree, t, lang, prompt_id)
        return self.library.prompt(tree, t, lang, prompt_id, says)

    def digit(self, tree: Any, t: Any, lang: str, d: str, says: Any) -> Any:
        self._note(tree, t, lang, f"digit/{d}")
        return self.library.digit(tree, t, lang, d, says)


def _walk(app: Flask, presses: tuple[str, ...], number: str | None,
          render: Any = None) -> list[Heard]:
    """One call: dial, then each key; "one moment" is waited out (rendering first)."""
    caller = VoiceCaller(app.test_client(), number=number)

    def settle(heard: Heard) -> Heard:
        for _ in range(6):
            if heard.kind != "redirect":
                break
            if render is not None:
                render()
            heard = caller.post(heard.redirect, caller.fields())
        return heard

    heard = [settle(caller.dial())]
    for key in presses:
        heard.append(settle(caller.press(key)))
    return heard


def render_walk(app: Flask, presses: tuple[str, ...], number: str | None = None,
                ) -> list[Heard]:
    """What a caller hears on this walk, every prompt of it rendered first."""
    services = app.extensions["migrantline"]
    speech = services.voice.speech
    library = speech.prompts
    asked = Asked(library)

    def one(prompt: Any) -> None:
        try:
            library.render_prompt(prompt)
        except tts.TtsError:  # a language with no voice: what it hears instead
            pass

    def render() -> None:
        with ThreadPoolExecutor(3) as pool:  # espeak-ng and ffmpeg are subprocesses
            list(pool.map(one, list(asked.asked.values())))
        library.forget()

    # The first call from another number of the same country: a number remembers its
    # language, and the call measured must choose it as a new caller does.
    first = number[:-1] + str((int(number[-1]) + 1) % 10) if number else None
    speech.prompts = asked
    try:
        _walk(app, presses, first, render)
        render()
    finally:
        speech.prompts = library
    return _walk(app, presses, number)


_KBPS = {1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
         2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_seconds(data: bytes) -> float | None:
    """An MP3's length by its frames (layer III, no tags: how the prompts are kept), read
    here independently of the app; None for anything else (ffmpeg decodes it then)."""
    pos, samples, rate = 0, 0, 0
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        if data[pos] != 0xFF or b1 & 0xE0 != 0xE0 or layer != 1 or version == 1 \
                or (b2 >> 4) in (0, 15) or (b2 >> 2) & 3 == 3:
            return None
        rate = _RATES[version][(b2 >> 2) & 3]
        kbps = _KBPS[1 if version == 3 else 2][b2 >> 4]
        per = 1152 if version == 3 else 576
        pos += per // 8 * kbps * 1000 // rate + ((b2 >> 1) & 1)
        samples += per
    return samples / rate if samples and pos == len(data) else None


@dataclass
class Listened:
    seconds: float
    plays: int
    says: int  # pieces left to the provider's voice (not measured)


class Ears:
    """Seconds of audio per ``<Play>`` URL, fetched from ``/audio/`` as the provider does."""

    def __init__(self, app: Flask):
        self.app = app
        self._seconds: dict[str, float] = {}

    def seconds(self, url: str) -> float:
        path = urlsplit(url).path
        if path not in self._seconds:
            response = self.app.test_client().get(path)
            assert response.status_code == 200, url
            counted = mp3_seconds(response.data)
            if counted is not None:
                self._seconds[path] = counted
                return counted
            suffix = ".mp3" if response.mimetype == "audio/mpeg" else ".wav"
            with tempfile.NamedTemporaryFile(suffix=suffix) as fh:
                fh.write(response.data)
                fh.flush()
                self._seconds[path] = tts.listen(Path(fh.name)).seconds
        return self._seconds[path]

    def listen_all(self, heard: list[Heard]) -> list[Listened]:
        with ThreadPoolExecutor(3) as pool:  # ffmpeg decodes each file once
            list(pool.map(self.seconds, {u for h in heard for u in h.plays}))
        return [self.listen(h) for h in heard]

    def listen(self, heard: Heard) -> Listened:
        return Listened(sum(self.seconds(u) for u in heard.plays), len(heard.plays),
                        len(heard.says))
