"""What a complaint is made of: its fields, the words a caller reads, who is calling.

The ``N_`` texts are gettext messages in the caller's language. SMS wording
stays neutral: a shared phone or a boss may read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ussd_app.conversation.inbound import Caller
from ussd_app.engine.messages import N_
from ussd_app.errors import InvalidInput, NotAllowed, NotFound  # noqa: F401 - NotFound: no complaint with that id
from ussd_app.store.queue import OPEN

CATEGORIES = ("unpaid_wages", "contract", "documents", "fees", "abuse", "forced_labour",
              "lost_contact", "other")
STATUSES = ("new", "in_progress", "referred", "resolved", "closed")
# A case still worked on (the queue's "Open"): what a migrant texts from its phone goes to it.
OPEN_STATUSES = OPEN
# Whether and how the caller may be contacted: any time; only at the times they gave;
# on another number; never. "unknown" until asked (an urgent report filed at once).
CONTACTS = ("any", "times", "other", "never", "unknown")
FILED_BY = ("self", "family")
# The urgent path's questions (danger_call, danger_where); not answered: NULL.
CALL_NOW = ("yes", "no", "skipped")
WHERE_NOW = ("here", "other", "skipped")
AGAINST = ("agency", "employer", "both", "other")

PIN_LOCK_SECONDS = 30 * 60
PIN_TRIES = 3  # wrong PINs on one reference before it is locked for PIN_LOCK_SECONDS
PHONE_TRIES = 10  # wrong PINs from one phone (any reference) before it is locked too
FIELD_LIMITS = {"against": 160, "employer": 160, "city": 80, "country_other": 80,
                "description": 2000, "contact_when": 160, "contact_phone": 32,
                # a lost-contact report: the relative, their last news; a wage as reported
                "relative_name": 120, "last_contact": 80, "wage_paid": 40}

STATUS_LABELS = {
    "new": N_("Received"),
    "in_progress": N_("In progress"),
    "referred": N_("Referred to a partner"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}
# SMS wording stays neutral: a shared phone or a boss may read it.
RECEIPT_SMS = N_("MigrantLine: your reference is {reference}. Keep it to follow your case.")
STATUS_SMS = {
    "in_progress": N_("MigrantLine: case {reference} is in progress. An adviser is working "
                      "on it."),
    "referred": N_("MigrantLine: case {reference} was passed to a partner organisation that "
                   "can help."),
    "resolved": N_("MigrantLine: case {reference} is resolved. Call us if you still need "
                   "help."),
    "closed": N_("MigrantLine: case {reference} is closed. Call us if you need help again."),
}
# The reply to an SMS added to the case timeline (``messages.py``).
ATTACHED_SMS = N_("MigrantLine: your message was added to case {reference}.")
MESSAGE_TEMPLATES = {
    "call_us": N_("MigrantLine: please call us when it is safe for you. Case {reference}."),
    "more_info": N_("MigrantLine: we need more information on case {reference}. Please call "
                    "us when it is safe."),
    "tried_to_call": N_("MigrantLine: we tried to call you about case {reference}. We will "
                        "try again."),
    "partner_will_call": N_("MigrantLine: a partner organisation will contact you about case "
                            "{reference}."),
}
STATUS_LINE_CASE = N_("Case {reference}")
STATUS_LINE_STATUS = N_("Status: {status}")
STATUS_LINE_FILED = N_("Filed on {date}")
STATUS_LINE_UPDATED = N_("Last update on {date}")
STATUS_ERASED = N_("The personal data of this case was erased.")
# A job-offer record followed or erased by its reference (it starts with 0).
RECORD_LINE = N_("Job offer record {reference}")
RECORD_LINE_KEPT = N_("Kept since {date}")
RECORD_ERASED = N_("What this record held was erased.")
# The key purpose of what callers say and of history details: whoever adds to a
# complaint's history (voice_recordings.py) seals with the same.
TEXT_PURPOSE = "complaint text v1"


class ContactNotSafe(NotAllowed):
    """The caller said not to contact them (or was never asked): no SMS goes."""


# An operator's free-text reply: at most this many SMS parts (6 x 153 GSM-7 characters,
# 6 x 67 in UCS-2).
MAX_REPLY_PARTS = 6


class ReplyTooLong(InvalidInput):
    """An operator's reply over ``MAX_REPLY_PARTS`` SMS parts (the args: its parts)."""


@dataclass(frozen=True)
class Lookup:
    """What a status question found. ``kind``: status, need_pin, bad_reference, denied,
    locked. ``denied`` covers a wrong PIN and an unknown reference alike, so that
    another phone learns nothing, not even whether the case exists."""

    kind: str
    row: dict[str, Any] | None = None
    reference: str = ""


Agencies = Callable[[str], tuple[str, str] | None]  # typed text -> (licence, name)


def number_country(caller: Caller) -> str:
    """The country (ISO code, upper case) of the caller's number by its calling code; ""
    when withheld or not a number. A roaming migrant's home code says where the SIM is
    from, not where they are: the urgent path asks, with this as the first answer."""
    return caller.country
