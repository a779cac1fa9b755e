"""Interface strings the engine shows, marked for extraction into the catalogs.

The engine never translates: it names a message id and the channel's
translator turns it into the caller's language. ``N_`` only marks a string
for ``pybabel extract``.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    return message


# Navigation labels, shown beside their keys.
BACK = N_("Back")
MAIN_MENU = N_("Menu")
MORE = N_("More")
HELP = N_("Help now")

# Hints: one short line above a screen shown again after an input it cannot use.
# Kept short: pages keep room for the longest one in place of the title.
INVALID = N_("Invalid choice")
NO_MORE = N_("No more pages")
EMPTY_ANSWER = N_("Type an answer")
PICK_LANGUAGE = N_("Pick a language")

# Resume after a dropped session.
RESUME_QUESTION = N_("Continue where you stopped?")
RESUME_CONTINUE = N_("Continue")
RESUME_RESTART = N_("Start again")

# Errors shown as the last screen of a session.
UNAVAILABLE = N_("Sorry, the service is not available now. Please try again later.")

# How one option line reads; translators may change the order or punctuation.
OPTION_LINE = N_("{key}. {label}")
NAV_ITEM = N_("{key} {label}")
