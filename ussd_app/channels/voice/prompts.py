"""The voice prompts this deployment plays: the library built from the settings, and
the audio generated in the background for prompts nobody recorded yet."""

from __future__ import annotations

import fcntl
import logging
import time
from pathlib import Path
from typing import Any

from ussd_app import settings
from ussd_app.audio_store import AudioStore
from ussd_app.channels.voice.ui_messages import VOICE_UI_MESSAGES
from ussd_app.content import sync
from ussd_app.content.registry import ContentRegistry
from ussd_app.privacy.purges import SESSION_KEEP_SECONDS
from ussd_app.store import Store
from ussd_app.store.voice import purge_voice_calls
from voice_prompts import PromptLibrary, tts

log = logging.getLogger("migrantline")


def prompt_library(config: settings.Config, shared: AudioStore | None = None) -> Any:
    """The voice prompts: synced recordings first, then the local ones, then generated audio
    (shared through ``shared`` when it is a bucket every node reads)."""
    config = settings.of(config)
    recordings = config.recordings_dir.resolve()
    return PromptLibrary([sync.served_content_dir(config) / "audio", recordings],
                         config.data_dir / "audio", config.base_url, "en",
                         online=config.tts_online, ui_messages=VOICE_UI_MESSAGES,
                         shared=shared, audio_format=config.audio_format)


def render_missing(prompts: Any, content: ContentRegistry, t: Any, data_dir: Path) -> int:
    """Generate the audio no prompt has yet, in the background of one process only.

    Why here as well as ``migrantline prompts render``: a deployment that never
    ran the command still ends up playing generated audio instead of the
    provider's voice, without anyone waiting on it. A file lock keeps the
    other worker processes from doing the same work twice.
    """
    tree = content.current
    if tree is None:
        return 0
    lock_path = data_dir / "audio" / ".render.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # another process renders
        done = 0
        # What every call hears first, in every language (the language menu, digits, the
        # voice phrases, the main menu), before the articles.
        order = sorted(prompts.manifest(tree, t).all(), key=lambda p: (
            0 if p.id.startswith(("language/", "digit/", "ui/")) else
            1 if p.id.startswith(f"node/{tree.main}/") else 2))
        missing_tools = tts.missing_tools()
        converter = tts.missing_converter(getattr(prompts, "audio_format", "wav"))
        if converter:
            missing_tools.append(converter)
        if missing_tools:
            log.warning("voice prompts are not generated: %s missing (apt-get install "
                        "espeak-ng sox ffmpeg); callers hear recordings or the provider's voice",
                        ", ".join(missing_tools))
            return 0
        failed: set[str] = set()  # a language with no voice: said once, not per prompt
        for prompt in order:
            if prompt.lang in failed or prompts.state(prompt).status != "missing":
                continue
            try:
                prompts.render_prompt(prompt)
                done += 1
            except Exception as exc:
                failed.add(prompt.lang)
                log.warning("could not generate the %s prompts (%s): %s; record them with "
                            "`migrantline prompts record`", prompt.lang, prompt.id, exc)
        if done:
            log.info("generated %d voice prompts in the background", done)
        return done


def purge_voice(store: Store, prompts: Any) -> None:
    """Calls are kept a day (retries, missed-call checks); dynamic speech as long."""
    purge_voice_calls(store, time.time() - SESSION_KEEP_SECONDS)
    prompts.purge_dynamic()
