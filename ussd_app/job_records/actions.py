"""The actions the job-offer and lost-contact flows name in the content.

``file_job_record`` keeps a record (``JobRecords.file``) and gives its reference
as ``record_reference`` (not ``reference``: that answer names the caller's
complaint, which the urgent path and the voice recordings look for).
``file_lost_contact`` files a complaint of category ``lost_contact`` from a
family member's answers, through ``Complaints.file`` like any other.
"""

from __future__ import annotations

from collections.abc import Mapping

from ussd_app.complaints.actions import _receipt_words, guarded
from ussd_app.complaints.service import Complaints, show_reference
from ussd_app.engine.answers import Action, ActionResult, Query
from ussd_app.engine.screens import Translate
from ussd_app.job_records.service import JobRecords

LOST_CONTACT_REACH = ("any", "other", "never")


def lost_contact_answers(answers: Mapping[str, str], agency_known: bool) -> dict[str, str]:
    """A family member's lost-contact answers as a complaint's fields."""
    reach = answers.get("lost_reach", "")
    filed = {"consent": "yes", "filed_by": "family", "category": "lost_contact",
             "relative_name": answers.get("lost_name", ""),
             "last_contact": answers.get("lost_since", ""),
             "country": answers.get("lost_country", ""),
             "against": answers.get("lost_employer", ""),
             "against_kind": "agency" if agency_known else "other",
             "contact": reach if reach in LOST_CONTACT_REACH else "never",
             "contact_phone": answers.get("lost_phone", "") if reach == "other" else ""}
    return {k: v for k, v in filed.items() if v}


def make_record_actions(records: JobRecords, complaints: Complaints,
                        t: Translate) -> dict[str, Action]:
    def file_job_record(q: Query) -> ActionResult:
        row = records.file(q.key, q.caller, q.lang, q.answers)
        return ActionResult(answers={"record_reference": show_reference(row["reference"])})

    def file_lost_contact(q: Query) -> ActionResult:
        typed = q.answers.get("lost_employer", "")
        known = bool(typed and complaints.resolve_agency and complaints.resolve_agency(typed))
        row = complaints.file(q.key, q.caller, q.lang, lost_contact_answers(q.answers, known))
        receipt = "" if q.caller.channel == "sms" else t(q.lang,
                                                          _receipt_words(complaints, row))
        return ActionResult(answers={"reference": show_reference(row["reference"]),
                                     "receipt": receipt})

    return {"file_job_record": guarded(file_job_record),
            "file_lost_contact": guarded(file_lost_contact)}
