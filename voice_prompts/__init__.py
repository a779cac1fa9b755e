"""Voice prompts: what the voice line plays, and where each piece of audio comes from.

Every spoken piece (each translated text of the content tree, the interface
phrases, the digits, the language menu) is a *prompt* with a stable id. A
caller hears, in order of preference: a field recording of the current text,
audio generated offline (espeak-ng, or gTTS when online), the provider's own
text-to-speech, or the same prompt in the fallback language. Never silence
while any of those exists.

The interface messages to speak besides the content (navigation, the
complaints' status lines) are handed in by the app: ``PromptLibrary(...,
ui_messages=...)``; this package imports no feature of ``ussd_app``.
"""

from __future__ import annotations

from voice_prompts.library import PromptLibrary, Spoken
from voice_prompts.manifest import Manifest, Prompt, build_manifest

__all__ = ["Manifest", "Prompt", "PromptLibrary", "Spoken", "build_manifest"]
