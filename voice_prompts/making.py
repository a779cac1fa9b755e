"""Making a prompt library's audio: generated speech, conversions, field recordings
imported, old dynamic renders purged. Never called from a webhook (a background job or
the CLI does it); mixed into ``PromptLibrary``, which decides what a caller hears.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ussd_app.engine.model import Tree
from ussd_app.engine.screens import Translate
from voice_prompts.manifest import Prompt
from voice_prompts.tts import check_recording, synthesize, to_phone_audio

DYNAMIC_KEEP_SECONDS = 24 * 3600


class PromptMaking:
    """The writing half of ``PromptLibrary`` (its attributes and lookups are there)."""

    cache_dir: Path
    recordings_dirs: Any
    audio_format: str
    extensions: tuple[str, ...]
    online: Any
    files: Any
    shared: Any

    def generated_path(self, lang: str, text: str) -> Path: ...  # noqa: D102
    def dynamic_path(self, lang: str, text: str) -> Path: ...  # noqa: D102
    def share(self, path: Path) -> None: ...  # noqa: D102
    def forget(self) -> None: ...  # noqa: D102
    def pull(self, subpath: str) -> Path | None: ...  # noqa: D102
    def _key(self, path: Path) -> str | None: ...
    def make_gap(self) -> None: ...  # noqa: D102
    def recording(self, prompt: Prompt) -> tuple[Path | None, bool]: ...  # noqa: D102
    def manifest(self, tree: Tree, t: Translate) -> Any: ...  # noqa: D102

    def render_dynamic(self, lang: str, text: str) -> None:
        """Sync TTS of a text outside the manifest (from a background job, never a webhook)."""
        path = self.dynamic_path(lang, text)
        if self.files.get(path) is None:
            synthesize(text, lang, path, self.online)
            self.share(path)
            self.forget()

    def purge_dynamic(self, older_than: float = DYNAMIC_KEEP_SECONDS,
                      now: float | None = None) -> int:
        """Remove dynamic renders older than ``older_than`` seconds; how many went."""
        cutoff = (now if now is not None else time.time()) - older_than
        removed = 0
        root = self.cache_dir / "dynamic"
        if not root.is_dir():
            return 0
        for path in root.glob("*/*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
                    if self.shared is not None:
                        self.shared.delete(f"dyn/{path.relative_to(root).as_posix()}")
            except Exception:  # noqa: BLE001 - a file or the store: the next purge retries
                continue
        return removed

    def render_prompt(self, prompt: Prompt) -> int:
        """Generate one prompt's audio (if not there yet); its size in bytes."""
        path = self.generated_path(prompt.lang, prompt.text)
        if self.files.get(path) is None:
            # Another node may have made it already: fetched, not generated again.
            if self.pull(self._key(path) or "") is None or self.files.get(path) is None:
                old = path.with_suffix(self.extensions[1])
                if self.files.get(old) is not None:  # made in the other format: converted
                    to_phone_audio(old, path)
                    old.unlink(missing_ok=True)
                else:
                    engine = synthesize(prompt.text, prompt.lang, path, self.online)
                    marker = path.with_suffix(".gtts")  # which engine spoke it (status)
                    if engine == "gtts":
                        marker.touch()
                    else:
                        marker.unlink(missing_ok=True)
                self.share(path)
            self.forget()
        self.make_gap()
        return path.stat().st_size

    def convert_recording(self, prompt: Prompt) -> Path | None:
        """A current recording of ``prompt`` in the local recordings folder, kept in the
        other format (a WAV dropped there by hand), converted to this library's format:
        the new file, or None when there was nothing to do. The synced folder is left
        alone (``content publish`` converts what it carries); the old file is removed
        only once the new one is written, so a failure leaves it playing."""
        rec, current = self.recording(prompt)
        local = self.recordings_dirs[-1]
        if (rec is None or not current or rec.suffix == f".{self.audio_format}"
                or not rec.is_relative_to(local)):
            return None
        out = rec.with_suffix(f".{self.audio_format}")
        to_phone_audio(rec, out)
        rec.unlink(missing_ok=True)
        self.forget()
        return out

    def import_recording(self, tree: Tree, t: Translate, lang: str, prompt_id: str,
                         source: Path, recorded_by: str, into: Path | None = None) -> Path:
        """Convert a field recording to 8 kHz mono and keep it with its sidecar.

        It is listened to first: a file that does not decode, is too short or is
        silence raises ``TtsError`` and the recording there before keeps playing."""
        prompt = self.manifest(tree, t).get(lang, prompt_id)
        if prompt is None:
            raise KeyError(prompt_id)
        root = into or self.recordings_dirs[-1]
        out = root / lang / f"{prompt_id}.{self.audio_format}"
        check_recording(source)
        to_phone_audio(source, out)
        sidecar: dict[str, Any] = {
            "text_sha256": prompt.sha256, "recorded_by": recorded_by,
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "text": prompt.text,
        }
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(sidecar, ensure_ascii=False, indent=1) + "\n",
                       encoding="utf-8")
        os.replace(tmp, out.with_suffix(".json"))
        out.with_suffix(self.extensions[1]).unlink(missing_ok=True)  # this one is heard now
        self.forget()
        return out
