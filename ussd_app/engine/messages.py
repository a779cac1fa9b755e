"""Interface strings the engine shows, marked for extraction into the catalogs.

The engine never translates: it names a message id and the channel's
translator turns it into the caller's language. ``N_`` only marks a string
for ``pybabel extract``.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    return message


def NP_(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802 - gettext marker
    """Marks a message with plural forms (extracted with ``-k NP_:1,2``)."""
    return singular, plural


# Navigation labels, shown beside their keys.
BACK = N_("Back")
MAIN_MENU = N_("Menu")
MORE = N_("More")

# Hints: one short line above a screen shown again after an input it cannot use.
# Kept short: pages keep room for the longest one in place of the title.
INVALID = N_("Invalid choice")
NO_MORE = N_("No more pages")
EMPTY_ANSWER = N_("Type an answer")
PICK_LANGUAGE = N_("Pick a language")
# Hints on questions (a PIN, a number, a reference): their screens are short, so these
# need no room reserved on every page.
DIGITS_ONLY = N_("Type digits only")
FOUR_DIGITS = N_("Type 4 digits")
BAD_PHONE = N_("Type the number with its country code")
BAD_REFERENCE = N_("Not found. Check the number.")
TEXT_CUT = N_("Too long: shortened")
NOT_NOW = N_("Not possible now. Try again later.")

# Resume after a dropped session.
RESUME_QUESTION = N_("Continue where you stopped?")
RESUME_CONTINUE = N_("Continue")
RESUME_RESTART = N_("Start again")

# Errors shown as the last screen of a session.
UNAVAILABLE = N_("Sorry, the service is not available now. Please try again later.")
SESSION_TOO_LONG = N_("This session is too long. Please dial again.")

# "Send me this by SMS" on contact lists.
SEND_SMS = N_("SMS")
SMS_QUESTION = N_("Send this list by SMS to this phone? Only if that is safe for you.")
SMS_YES = N_("Yes, send it")
SMS_NO = N_("No")
SMS_QUEUED = N_("Done. The SMS will arrive soon.")

# An article on USSD is its short version; these keys, under its last page, get the rest.
SEND_FULL = N_("Send the full text")
READ_FULL = N_("Read it all here")
SMS_FULL_QUESTION = N_("Send the full text by SMS to this phone? Only if that is safe for "
                       "you.")
# A withheld number (or one SMS cannot reach): nothing to send to, say so and offer the rest.
NO_SMS = N_("We cannot send an SMS to this number: it is hidden. Read the full text here.")

# A confirm screen: the answers, then these keys.
SEND = N_("Send")
CANCEL = N_("Cancel")
SHORTENED = N_("(shortened)")

# How one option line reads; translators may change the order or punctuation.
OPTION_LINE = N_("{key}. {label}")
NAV_ITEM = N_("{key} {label}")

# Check an agency: what the agency_search service says about the agencies found.
AGENCY_FOUND = NP_("{count} agency found", "{count} agencies found")
AGENCY_CLOSEST = N_("The closest {shown}:")
# More found than shown: one sentence each, so no full stop goes missing between them.
AGENCY_FOUND_CLOSEST = NP_("{count} agency found. The closest {shown}:",
                           "{count} agencies found. The closest {shown}:")
AGENCY_LICENSED = N_("Licensed until {date}")
AGENCY_EXPIRED = N_("Licence EXPIRED on {date}")
AGENCY_SUSPENDED = N_("Licence SUSPENDED")
AGENCY_REVOKED = N_("Licence REVOKED")
AGENCY_DO_NOT_PAY = N_("Do not pay or sign anything.")
# Said in the complaint flow when the agency the caller names is not licensed today.
AGENCY_WARN_EXPIRED = N_("This agency's licence EXPIRED on {date}.")
AGENCY_WARN_SUSPENDED = N_("This agency's licence is SUSPENDED.")
AGENCY_WARN_REVOKED = N_("This agency's licence was REVOKED.")
AGENCY_SOURCE = N_("Source: {source}, data of {date}")
# How many complaints named the agency lately (only from a threshold a deployment sets).
AGENCY_REPORTS = NP_("{count} complaint from migrants named this agency in the last 90 days "
                     "(not verified).",
                     "{count} complaints from migrants named this agency in the last 90 days "
                     "(not verified).")
# Another official list says something else of the same licence (newest first).
AGENCY_ALSO = N_("{source}, data of {date}: {status}")
AGENCY_NARROW = N_("Type more of the name to see fewer results.")
AGENCY_NO_MATCH = N_("No agency found. Check the spelling or the number. An agency that is "
                     "not on the list may have no licence.")
AGENCY_TOO_SHORT = N_("Type at least 3 letters of the name, or the licence number.")
AGENCY_UNAVAILABLE = N_("The list of agencies is not available now. Please try again later.")
# An option naming the country of the caller's number, when the number says none.
THIS_COUNTRY = N_("The country of this number")
