"""Which audio a caller hears for a prompt, and the URL the provider fetches it from.

Order, for one prompt in one language: a current field recording (its
sidecar's text hash is the manifest's and the file is real audio), else the
generated file for that text, else the provider's own voice (when it speaks
the language), else the same prompt in the fallback language through the
same chain. A missing, stale or corrupt file only moves on to the next
source. Nothing here renders inside a webhook: ``speak`` only looks up files.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ussd_app.engine.model import Tree
from ussd_app.engine.screens import Translate
from voice_prompts.audio_files import FileInfo, audio_type
from voice_prompts.making import PromptMaking
from voice_prompts.manifest import Manifest, Prompt, build_manifest, text_sha256
from voice_prompts.spoken import Spoken
from voice_prompts.tts import (
    TtsError,
    espeak_voice,
    make_gap,
)

log = logging.getLogger("migrantline")

AUDIO_EXTENSIONS = (".wav", ".mp3")
RESOLVED_SECONDS = 2.0
_UNCACHED = itertools.count(-2, -1)  # versions never seen twice


@dataclass(frozen=True)
class PromptState:
    prompt: Prompt
    status: str  # recorded, stale, generated, missing
    path: Path | None  # the file a caller hears, if any
    bytes: int


class PromptLibrary(PromptMaking):
    def __init__(self, recordings_dirs: Sequence[Path], cache_dir: Path, base_url: str,
                 fallback_lang: str, ui_messages: Sequence[str] = (),
                 online: str = "auto", shared: Any = None, audio_format: str = "mp3"):
        if audio_format not in ("mp3", "wav"):
            raise ValueError(f"audio format {audio_format!r}: mp3 or wav")
        self.audio_format = audio_format
        # The format kept and played first; the other is still played when it is all
        # there is (a WAV made before the switch to MP3, until it is converted).
        self.extensions = (".mp3", ".wav") if audio_format == "mp3" else (".wav", ".mp3")
        self.recordings_dirs = [Path(d) for d in recordings_dirs]
        self.cache_dir = Path(cache_dir)
        self.base_url = base_url.rstrip("/")
        self.fallback_lang = fallback_lang
        self.ui_messages = ui_messages
        self.online = online
        self.files = FileInfo()
        # The audio store every node reads (``ussd_app.audio_store``), or None: what this
        # node generates goes there too, so that any node can serve it.
        self.shared = shared if getattr(shared, "shared", False) else None
        self._manifests: dict[str, Manifest] = {}
        # Where each prompt's audio comes from (a few stats per source), kept for one audio
        # version (``version``): a webhook reads out dozens of prompts.
        self._resolved: dict[tuple[Any, ...], Spoken | None] = {}
        self._resolved_version: tuple[int, int] = (-1, -1)
        self._generation = 0
        self._lock = threading.Lock()

    # -- where files live --------------------------------------------------------------

    @property
    def roots(self) -> dict[str, Path]:
        """URL prefix -> folder: the only folders ``/audio/`` serves from."""
        found = {f"rec{i}": d for i, d in enumerate(self.recordings_dirs)}
        found["tts"] = self.cache_dir / "generated"
        found["dyn"] = self.cache_dir / "dynamic"
        return found

    def generated_path(self, lang: str, text: str) -> Path:
        return self.cache_dir / "generated" / lang / f"{text_sha256(text)}.{self.audio_format}"

    def dynamic_path(self, lang: str, text: str) -> Path:
        return self.cache_dir / "dynamic" / lang / f"{text_sha256(text)}.{self.audio_format}"

    def _playable(self, path: Path) -> Path:
        """``path``, or its twin in the other format when only that one is valid audio."""
        if self.files.get(path) is None:
            other = path.with_suffix(self.extensions[1])
            if self.files.get(other) is not None:
                return other
        return path

    def url(self, path: Path) -> str | None:
        info = self.files.get(path)
        if info is None:
            return None
        for name, root in self.roots.items():
            try:
                rel = path.relative_to(root)
            except ValueError:
                continue
            return f"{self.base_url}/audio/{name}/{rel.as_posix()}?v={info[1][:8]}"
        return None

    def recording(self, prompt: Prompt) -> tuple[Path | None, bool]:
        """(the recording file, whether it is current) of the first dir that has one."""
        first: Path | None = None
        for root in self.recordings_dirs:
            for ext in self.extensions:
                path = root / prompt.lang / f"{prompt.id}{ext}"
                if not path.is_file():
                    continue
                if self._sidecar_sha(path) == prompt.sha256 and self.files.get(path):
                    return path, True
                first = first or path
        return first, False

    def _sidecar_sha(self, audio: Path) -> str | None:
        try:
            data = json.loads(audio.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data.get("text_sha256") if isinstance(data, dict) else None

    # -- the manifest ------------------------------------------------------------------

    def manifest(self, tree: Tree, t: Translate) -> Manifest:
        with self._lock:
            found = self._manifests.get(tree.version)
        if found is None:
            found = build_manifest(tree, t, self.ui_messages)
            with self._lock:
                while len(self._manifests) >= 4:
                    self._manifests.pop(next(iter(self._manifests)))
                self._manifests[tree.version] = found
        return found

    # -- what a caller hears -----------------------------------------------------------

    def _chain(self, prompt: Prompt, says: Callable[[str], bool]) -> Spoken | None:
        rec, current = self.recording(prompt)
        if rec is not None and current:
            url = self.url(rec)
            if url:
                return Spoken("play", url=url, lang=prompt.lang, source="recording")
        url = self.url(self._playable(self.generated_path(prompt.lang, prompt.text)))
        if url:
            return Spoken("play", url=url, lang=prompt.lang, source="generated")
        if says(prompt.lang):
            return Spoken("say", text=prompt.text, lang=prompt.lang, source="provider")
        return None

    def forget(self) -> None:
        """Look every prompt's files up again (a recording was imported here)."""
        with self._lock:
            self._generation += 1
            self._resolved.clear()

    def version(self) -> tuple[int, int]:
        """The audio version, within which every prompt resolves the same (resolutions
        and ``Speech``'s screens are kept per version): new when this process writes
        audio, and every ``RESOLVED_SECONDS`` for what other processes and nodes write."""
        if RESOLVED_SECONDS <= 0:  # every lookup looks again (tests that watch each step)
            return self._generation, next(_UNCACHED)
        return self._generation, int(time.monotonic() // RESOLVED_SECONDS)

    def _with_fallback(self, manifest: Manifest, tree: Tree, prompt: Prompt,
                       says: Callable[[str], bool], asked: str) -> Spoken | None:
        key = (manifest.version, prompt.lang, prompt.id, prompt.sha256, asked, says)
        version = self.version()
        if version == self._resolved_version:
            try:
                return self._resolved[key]
            except KeyError:
                pass
        found = self._resolve(manifest, tree, prompt, says, asked)
        with self._lock:
            if version != self._resolved_version or len(self._resolved) > 50_000:
                self._resolved.clear()
                self._resolved_version = version
            self._resolved[key] = found
        return found

    def _resolve(self, manifest: Manifest, tree: Tree, prompt: Prompt,
                 says: Callable[[str], bool], asked: str) -> Spoken | None:
        """The chain for ``prompt``, then for its fallback-language twin; a piece spoken in
        another language than the caller's (``asked``) is marked "fallback"."""
        found = self._chain(prompt, says)
        if found is not None:
            if found.lang != asked:
                return Spoken(found.kind, url=found.url, text=found.text, lang=found.lang,
                              source="fallback")
            return found
        fallback = self.fallback_lang
        if fallback not in manifest.prompts:
            fallback = tree.default_language
        other = manifest.get(fallback, prompt.id) if fallback != prompt.lang else None
        if other is None:
            return None
        found = self._chain(other, says)
        if found is None:
            return None
        return Spoken(found.kind, url=found.url, text=found.text, lang=found.lang,
                      source="fallback")

    def speak(self, tree: Tree, t: Translate, lang: str, text: str,
              says: Callable[[str], bool]) -> Spoken | None:
        manifest = self.manifest(tree, t)
        prompt = manifest.find(lang, text) or manifest.find_any(text)
        if prompt is not None:
            return self._with_fallback(manifest, tree, prompt, says, lang)
        url = self.url(self._playable(self.dynamic_path(lang, text)))
        return Spoken("play", url=url, lang=lang, source="generated", dynamic=True) \
            if url else None

    def prompt(self, tree: Tree, t: Translate, lang: str, prompt_id: str,
               says: Callable[[str], bool]) -> Spoken | None:
        manifest = self.manifest(tree, t)
        prompt = manifest.get(lang, prompt_id)
        if prompt is None:  # not in this language at all: the fallback language's
            prompt = manifest.get(self.fallback_lang, prompt_id) or manifest.get(
                tree.default_language, prompt_id)
            if prompt is None:
                return None
        return self._with_fallback(manifest, tree, prompt, says, lang)

    def digit(self, tree: Tree, t: Translate, lang: str, d: str,
              says: Callable[[str], bool]) -> Spoken | None:
        if len(d) != 1 or not d.isdigit() or not d.isascii():
            return None
        return self.prompt(tree, t, lang, f"digit/{d}", says)

    # -- rendering ---------------------------------------------------------------------

    def _key(self, path: Path) -> str | None:
        for name in ("tts", "dyn"):
            try:
                return f"{name}/{path.relative_to(self.roots[name]).as_posix()}"
            except ValueError:
                continue
        return None

    def share(self, path: Path) -> None:
        """Put a generated file in the shared store; a store down is logged, not raised
        (this node still serves the file; others fall back to the provider's voice)."""
        key = self._key(path)
        if self.shared is None or key is None:
            return
        try:
            self.shared.put(key, path.read_bytes())
        except Exception as exc:
            log.warning("generated audio %s not shared: %s", key, exc)

    def pull(self, subpath: str) -> Path | None:
        """Another node's generated file (``tts/...`` or ``dyn/...``), fetched from the
        shared store into this node's cache; None if absent, not audio or unreachable."""
        name, _, rest = subpath.partition("/")
        if self.shared is None or name not in ("tts", "dyn") or not rest:
            return None
        try:
            data = self.shared.get(subpath)
        except Exception as exc:
            log.warning("generated audio %s not fetched from the store: %s", subpath, exc)
            return None
        if not data or audio_type(data[:16]) is None:
            return None
        path = self.roots[name].joinpath(*rest.split("/"))
        try:  # the local read cache, written whole or not at all
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("generated audio %s not cached here: %s", subpath, exc)
            return None
        self.forget()
        return path

    # -- the pieces between words ------------------------------------------------------

    def gap_path(self) -> Path:
        return self.cache_dir / "generated" / "_" / f"gap.{self.audio_format}"

    def gap(self) -> Spoken | None:
        """A short silence between the groups of digits of a number, once it is made."""
        url = self.url(self.gap_path())
        return Spoken("play", url=url, source="generated") if url else None

    def make_gap(self) -> None:
        """Make the silence between digit groups (with the first prompt rendered); without
        ffmpeg a number is read without its pauses, never not at all."""
        path = self.gap_path()
        if self.files.get(path) is not None:
            return
        try:
            make_gap(path)
        except TtsError as exc:
            log.warning("no pause between digit groups: %s", exc)
            return
        self.share(path)
        self.forget()

    # -- which voice a language has ----------------------------------------------------

    def _native(self, tree: Tree, t: Translate, lang: str,
                says: Callable[[str], bool]) -> Spoken | None:
        """What a caller in ``lang`` hears for the main menu's first option, in ``lang``
        itself (no fallback): the sample that says which voice a language has."""
        main = tree.nodes.get(tree.main)
        if main is None or not main.options:
            return None
        prompt = self.manifest(tree, t).find(lang, tree.label(main.options[0], lang))
        if prompt is None or prompt.lang != lang:
            return None
        return self._chain(prompt, says)

    def has_voice(self, tree: Tree, t: Translate, lang: str,
                  says: Callable[[str], bool]) -> bool:
        """Whether a caller in ``lang`` hears ``lang``: a recording, generated speech or
        the provider's voice, or espeak-ng can make it (in the background). A language
        with none of those gets an honest message instead of another language's menu."""
        if espeak_voice(lang) is not None:
            return True
        found = self._native(tree, t, lang, says)
        digit = self.manifest(tree, t).get(lang, "digit/1")
        return found is not None and digit is not None and \
            self._chain(digit, says) is not None

    def voice_source(self, tree: Tree, t: Translate, lang: str,
                     says: Callable[[str], bool]) -> str:
        """Where ``lang``'s menus come from: recording, espeak-ng, gTTS, provider, or none
        (``migrantline prompts status``); "espeak-ng (to render)" before `prompts render`."""
        found = self._native(tree, t, lang, says)
        if found is None:
            return "espeak-ng (to render)" if espeak_voice(lang) else "none"
        if found.source == "recording":
            return "recording"
        if found.source == "provider":
            return "provider"
        main = tree.nodes[tree.main]
        generated = self.generated_path(lang, tree.label(main.options[0], lang))
        if generated.with_suffix(".gtts").exists() or espeak_voice(lang) is None:
            return "gTTS"
        return "espeak-ng"

    def state(self, prompt: Prompt) -> PromptState:
        rec, current = self.recording(prompt)
        if rec is not None and current and self.files.get(rec):
            return PromptState(prompt, "recorded", rec, rec.stat().st_size)
        gen = self._playable(self.generated_path(prompt.lang, prompt.text))
        has_gen = self.files.get(gen) is not None
        size = gen.stat().st_size if has_gen else 0
        if rec is not None:  # stale or corrupt: still listed, so it is re-recorded
            return PromptState(prompt, "stale", gen if has_gen else None, size)
        return PromptState(prompt, "generated" if has_gen else "missing",
                           gen if has_gen else None, size)

    def status(self, tree: Tree, t: Translate) -> dict[str, dict[str, int]]:
        """Per language: recorded, stale, generated, missing, total prompts, audio bytes."""
        matrix: dict[str, dict[str, int]] = {}
        for prompt in self.manifest(tree, t).all():
            row = matrix.setdefault(prompt.lang, dict.fromkeys(
                ("recorded", "stale", "generated", "missing", "total", "bytes"), 0))
            state = self.state(prompt)
            row[state.status] += 1
            row["total"] += 1
            row["bytes"] += state.bytes
        return matrix
