"""The dashboard's words in the operator's language (English unless they pick another).

Every string goes through the same gettext catalogs as the phone channels
(``translations/``), so ``make catalogs`` extracts the Python strings here and
the templates' ``_()`` alike. Labels for stored codes (statuses, categories,
contact choices) are kept here, marked with ``N_`` and translated when shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from flask import current_app, g, session

from ussd_app.agencies.agency import country_name
from ussd_app.complaints import safe_window
from ussd_app.engine.messages import N_
from ussd_app.i18n import TRANSLATIONS_DIR

STATUS_NAMES = {"new": N_("New"), "in_progress": N_("In progress"),
                "referred": N_("Referred"), "resolved": N_("Resolved"),
                "closed": N_("Closed")}
CATEGORY_NAMES = {"unpaid_wages": N_("Unpaid wages"), "contract": N_("Contract broken"),
                  "documents": N_("Documents taken"), "fees": N_("Recruitment fees"),
                  "abuse": N_("Abuse"), "forced_labour": N_("Forced labour"),
                  "lost_contact": N_("Lost contact"), "other": N_("Other")}
CONTACT_NAMES = {"any": N_("Any time"), "times": N_("Only at the times given"),
                 "other": N_("Only on another number"),
                 "never": N_("Never: do not call or SMS"),
                 "unknown": N_("Not asked yet")}
# The urgent path's questions, as answered (NULL, shown as "not answered", is not a "no").
CALL_NOW_NAMES = {"yes": N_("Yes: call now on this number"),
                  "no": N_("No: the caller will call"),
                  "skipped": N_("Skipped by the caller")}
WHERE_NOW_NAMES = {"here": N_("In the country of the number"),
                   "other": N_("In another country"),
                   "skipped": N_("Skipped by the caller")}
FILED_BY_NAMES = {"self": N_("The migrant"), "family": N_("A family member")}
AGAINST_NAMES = {"agency": N_("Recruitment agency"), "employer": N_("Employer"),
                 "other": N_("Other")}
EVENT_NAMES = {"filed": N_("Filed"), "urgent": N_("Urgent report"),
               "details": N_("Details added"), "status": N_("Status changed"),
               "note": N_("Internal note"), "assign": N_("Assigned"),
               "referral": N_("Referred to a partner"), "message": N_("SMS to the migrant"),
               "erased": N_("Personal data erased"),
               "recording_stored": N_("Voice message received"),
               "recording_dead": N_("Voice message could not be fetched"),
               "outcome": N_("Outcome recorded"),
               "urgent_answer": N_("Answered an urgent question"),
               "alerted": N_("On-call phones texted"),
               "escalated": N_("Escalated: not acknowledged in time"),
               "acknowledged": N_("Urgent case acknowledged"),
               "centre_referral": N_("Referred to a centre abroad"),
               "centre_referred_in": N_("Referred here by a centre abroad"),
               "centre_update": N_("News from the centre abroad")}
OUTCOME_NAMES = {"resolved": N_("Resolved"), "referred": N_("Referred"),
                 "compensation": N_("Compensation recovered"),
                 "no_contact": N_("No contact possible"), "withdrawn": N_("Withdrawn")}
CHANNEL_NAMES = {"ussd": N_("USSD"), "sms": N_("SMS"), "voice": N_("Voice")}
GROUP_NAMES = {"category": N_("Category"), "country": N_("Country"),
               "agency": N_("Agency"), "channel": N_("Channel"), "lang": N_("Language")}
ACTOR_NAMES = {"caller": N_("Caller"), "system": N_("System"), "operator": N_("Operator"),
               "centre": N_("Partner centre")}
CENTRE_SHARE_NAMES = {"category": N_("Category"), "country": N_("Country"), "city": N_("City"),
                      "employer": N_("Employer"), "against": N_("Against"),
                      "description": N_("What happened"), "phone": N_("Phone numbers"),
                      "record": N_("Job-offer record, lost-contact details")}
LINK_NAMES = {"queued": N_("Waiting to be sent"), "sending": N_("Sending"),
              "sent": N_("Delivered"), "refused": N_("Refused by the centre")}
FIELD_NAMES = {"against": N_("Against"), "employer": N_("Employer"), "city": N_("City"),
               "country_other": N_("Country"), "description": N_("What happened"),
               "contact_when": N_("When to contact"), "contact_phone": N_("Other number"),
               "relative_name": N_("Relative"), "last_contact": N_("Last contact"),
               "wage_paid": N_("Wage paid")}
# A job-offer record beside its complaint (``job_records.compare``), and its scans.
PROMISED_NAMES = {"country": N_("Country"), "employer": N_("Employer"),
                  "agency": N_("Agency"), "wage": N_("Wage a month"), "job": N_("Job"),
                  "start": N_("Contract start and length"),
                  "family": N_("Family contact")}
SCAN_KIND_NAMES = {"contract": N_("Contract"), "passport": N_("Passport"),
                   "other": N_("Other document")}
TEMPLATE_NAMES = {"call_us": N_("Please call us"), "more_info": N_("We need more information"),
                  "tried_to_call": N_("We tried to call you"),
                  "partner_will_call": N_("A partner will contact you"),
                  "reply": N_("Reply in the operator's words")}
SHARE_NAMES = {"category": N_("Category"), "country": N_("Country"),
               "contact": N_("Whether and how to contact them"),
               "description": N_("What happened"), "phone": N_("Phone numbers")}
NOTIFY_VIA_NAMES = {"email": N_("E-mail to the partner"), "webhook": N_("Partner's webhook")}
NOTIFY_NAMES = {"queued": N_("Waiting to be sent"), "sending": N_("Sending"),
                "sent": N_("Delivered"), "failed": N_("Failed: tell the partner yourself")}
# A caller's safe window (``complaints.safe_window``), as the days they picked.
DAYS_NAMES = {"all": N_("Every day"), "sun-thu": N_("Sunday to Thursday"),
              "mon-fri": N_("Monday to Friday"), "fri": N_("Friday only"),
              "fri-sat": N_("Friday and Saturday"), "sat-sun": N_("Saturday and Sunday")}
OUTBOX_NAMES = {"queued": N_("Queued"), "sending": N_("Sending"), "sent": N_("Sent"),
                "delivered": N_("Delivered"), "failed": N_("Failed"), "dead": N_("Not sent"),
                "suppressed": N_("Suppressed (the phone sent STOP)")}
RECORDING_NAMES = {"pending": N_("Waiting to be fetched"), "fetching": N_("Being fetched"),
                   "failed": N_("Fetch failed, will retry"), "stored": N_("Stored"),
                   "dead": N_("Could not be fetched"), "erased": N_("Erased")}


@lru_cache(maxsize=1)
def languages() -> tuple[tuple[str, str], ...]:
    """(code, name in its own script) of English and every language with a catalog."""
    codes = ["en", *sorted(p.name for p in TRANSLATIONS_DIR.iterdir()
                           if (p / "LC_MESSAGES" / "messages.po").is_file())]
    return tuple((code, _own_name(code)) for code in dict.fromkeys(codes))


def _own_name(code: str) -> str:
    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (UnknownLocaleError, ValueError):
        return code
    return name[:1].upper() + name[1:]


def current_lang() -> str:
    lang = g.get("lang") or session.get("lang") or "en"
    return lang if lang in dict(languages()) else "en"


def text_direction() -> str:
    try:
        return str(Locale.parse(current_lang()).text_direction)
    except (UnknownLocaleError, ValueError):
        return "ltr"


def _(message: str, **values: Any) -> str:
    """``message`` in the operator's language, with ``%(name)s`` placeholders filled."""
    text = current_app.extensions["migrantline"].catalogs.gettext(current_lang(), message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
    text = current_app.extensions["migrantline"].catalogs.ngettext(current_lang(), singular,
                                                                  plural, n)
    return text % {"num": n, **values}


def label(names: dict[str, str], code: Any) -> str:
    """A stored code as the operator reads it; an unknown code as it is."""
    if code is None or code == "":
        return "–"
    found = names.get(str(code))
    return _(found) if found else str(code)


def language_name(code: Any) -> str:
    """A language code as the operator reads it, in the operator's language."""
    if not code:
        return "–"
    try:
        return Locale.parse(str(code)).get_display_name(current_lang()) or str(code)
    except (UnknownLocaleError, ValueError):
        return str(code)


def country(code: Any) -> str:
    if not code:
        return "–"
    if code == "other":
        return _("Other")
    return country_name(str(code), current_lang())


def when(at: Any) -> str:
    """A time as operators compare them: in digits, UTC, to the minute."""
    if not at:
        return "–"
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d %H:%M UTC")


def local_when(at: Any, zone: str) -> str:
    """A time on the caller's clock, in digits, with the zone's name."""
    return safe_window.local_time(float(at), zone).strftime("%Y-%m-%d %H:%M ") + zone


def window_text(window: Any, zone: str) -> str:
    """A case's safe window as the operator reads it: days, hours, the caller's zone."""
    found = safe_window.parse(window)
    if found is None:
        return "–"
    start, end = found.span
    return _("%(days)s, %(start)s:00 to %(end)s:00, the caller's time (%(zone)s)",
             days=label(DAYS_NAMES, found.days), start=start, end=end, zone=zone)


def age(at: Any, now: float) -> str:
    """How long ago, in the largest whole unit: 3 d, 5 h, 12 min."""
    seconds = max(0, now - float(at or now))
    if seconds >= 86400:
        return _("%(n)s d", n=int(seconds // 86400))
    if seconds >= 3600:
        return _("%(n)s h", n=int(seconds // 3600))
    return _("%(n)s min", n=int(seconds // 60))


def size(n: Any) -> str:
    """A size in kilobytes (recordings: tens to thousands of them)."""
    if n is None or n == "":
        return "–"
    return _("%(n)s KB", n=max(1, round(int(n) / 1000)))
