"""The interface messages the voice line speaks, beside the content's own texts.

The voice prompts library is handed this list (``web.prompt_library``): it
names messages of the engine, of the voice line and of the complaints
feature, so it lives here, with the channel that speaks them, and
``voice_prompts`` imports no feature.
"""

from __future__ import annotations

from ussd_app.complaints import actions as _a
from ussd_app.complaints import model as _c
from ussd_app.engine import messages as _m
from voice_prompts import phrases as _p

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
    _c.STATUS_ERASED, _p.HELP_ANY_TIME, _p.FOR_MORE,
    # Under an article's short version: the full text by SMS, or heard here.
    _m.SEND_FULL, _m.READ_FULL, _m.SMS_FULL_QUESTION, _m.NO_SMS, _m.SMS_YES, _m.SMS_NO,
    _m.SMS_QUEUED,
)
