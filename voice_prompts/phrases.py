"""What the voice line says that no screen shows: marked for the catalogs.

Kept few: the voice line reuses the navigation labels of the screens
(``ussd_app.engine.messages``) and adds only what a caller must hear.
"""

from __future__ import annotations

from ussd_app.engine.messages import N_

PRESS = N_("press")
WELCOME = N_("Welcome to MigrantLine.")
NO_KEY = N_("We did not hear a key.")
GOODBYE = N_("Goodbye.")
ONE_MOMENT = N_("One moment, please.")
RECORD_AFTER_TONE = N_("After the tone, tell us what happened. Press the hash key when you "
                       "have finished.")
YOUR_REFERENCE = N_("Your reference number is")
VOICE_SAVED = N_("Thank you. Your voice message is saved.")
VOICE_MISSING = N_("We did not get your voice message.")
SPEAK_AFTER_TONE = N_("After the tone, say your answer, then press the hash key.")
KEYPAD_THEN_HASH = N_("Type it on your keypad, then press the hash key.")
# What a spoken answer shows where a typed one would (the confirm screen, the dashboard).
VOICE_ANSWER = N_("(voice message)")

# The language menu: one line per language, spoken in that language with its own name.
FOR_LANGUAGE = N_("For {language}, press")

# Digits, spoken one by one (a menu key, a reference number).
DIGITS = (N_("zero"), N_("one"), N_("two"), N_("three"), N_("four"), N_("five"), N_("six"),
          N_("seven"), N_("eight"), N_("nine"))

# Said once per call, on the first menu after the language is known: the key that always
# leads to the help numbers.
HELP_ANY_TIME = N_("For help now, press")
# After the first options of a long menu: the key that reads the next few.
FOR_MORE = N_("For more, press")
# A language with no voice of any kind (no recording, no generated speech, no provider
# voice), said in the nearest language that has one, before that language's key.
NO_VOICE = N_("Sorry, there is no {language} voice yet.")
