"""Voice prompts: what the voice line plays, and where each piece of audio comes from.

Every spoken piece (each translated text of the content tree, the interface
phrases, the digits, the language menu) is a *prompt* with a stable id. A
caller hears, in order of preference: a field recording of the current text,
audio generated offline (espeak-ng, or gTTS when online), the provider's own
text-to-speech, or the same prompt in the fallback language. Never silence
while any of those exists.
"""

from __future__ import annotations

from ussd_app.complaints import actions as _a
from ussd_app.complaints import service as _c
from ussd_app.engine import messages as _m
from voice_prompts import phrases as _p
from voice_prompts.library import PromptLibrary, Spoken
from voice_prompts.manifest import Manifest, Prompt, build_manifest

# The interface msgids the voice line speaks; the lead extends this tuple.
VOICE_UI_MESSAGES: tuple[str, ...] = (
    _m.BACK, _m.MAIN_MENU, _m.MORE, _m.INVALID, _m.NO_MORE, _m.PICK_LANGUAGE, _m.DIGITS_ONLY,
    _m.FOUR_DIGITS, _m.BAD_REFERENCE, _m.NOT_NOW, _m.RESUME_QUESTION, _m.RESUME_CONTINUE,
    _m.RESUME_RESTART, _m.UNAVAILABLE, _m.SEND, _m.CANCEL,
    _p.PRESS, _p.WELCOME, _p.NO_KEY, _p.GOODBYE, _p.ONE_MOMENT, _p.RECORD_AFTER_TONE,
    _p.YOUR_REFERENCE, _p.VOICE_SAVED, _p.VOICE_MISSING, _p.SPEAK_AFTER_TONE,
    _p.KEYPAD_THEN_HASH, _p.VOICE_ANSWER, _m.TEXT_CUT, _m.BAD_PHONE, _m.EMPTY_ANSWER,
    _a.RECEIPT_SENT, _a.RECEIPT_NOT_SENT, _a.WRONG_PIN, *_c.STATUS_LABELS.values(),
    _c.STATUS_LINE_CASE, _c.STATUS_LINE_STATUS, _c.STATUS_LINE_FILED, _c.STATUS_LINE_UPDATED,
    _c.STATUS_ERASED,
)

__all__ = ["VOICE_UI_MESSAGES", "Manifest", "Prompt", "PromptLibrary", "Spoken",
           "build_manifest"]
