"""Complaints: filing, following by reference, operators' actions, erasure.

Every channel files through ``Complaints.file`` and answers status questions
through ``Complaints.lookup``; the dashboard acts through the other methods.
Each part lives in its own module and works on the keys and helpers of
``ComplaintsBase``:

    model.py       fields, statuses, the words a caller reads, Caller, Lookup
    references.py  the reference numbers (Damm check digit) and how they are shown
    base.py        the sealers, the PIN key, the number it is safe to text
    filing.py      file: answers checked, sealed, stored with the receipt SMS
    lookup.py      lookup and status_text: following a case by its reference
    operators.py   get, reveal, history, set_status, act, message (the dashboard)
    messages.py    open_case, attach, timeline: what the migrant texts about a case
    outcomes.py    record_outcome: what came of a closed case (checked)
    erasure.py     erase_for_phone, erase, purge

The names other modules use are importable from here.
"""

from __future__ import annotations

from ussd_app.complaints.erasure import Erasure
from ussd_app.complaints.filing import Filing
from ussd_app.complaints.lookup import Following
from ussd_app.complaints.messages import Attached, CaseMessages
from ussd_app.complaints.model import (
    CATEGORIES,
    MAX_REPLY_PARTS,
    MESSAGE_TEMPLATES,
    STATUSES,
    TEXT_PURPOSE,
    Caller,
    ContactNotSafe,
    Lookup,
    NotFound,
    ReplyTooLong,
)
from ussd_app.complaints.operators import OperatorActions
from ussd_app.complaints.outcomes import Outcomes
from ussd_app.complaints.references import (
    damm,
    digits_of,
    mask_phone,
    new_reference,
    parse_reference,
    show_reference,
)


class Complaints(Filing, Following, OperatorActions, Outcomes, Erasure, CaseMessages):
    """The complaints service: one object per process, shared by every channel."""


__all__ = ["Attached", "CATEGORIES", "MAX_REPLY_PARTS", "MESSAGE_TEMPLATES", "STATUSES",
           "TEXT_PURPOSE", "Caller", "Complaints", "ContactNotSafe", "Lookup", "NotFound",
           "ReplyTooLong", "damm", "digits_of", "mask_phone", "new_reference", "parse_reference",
           "show_reference"]
