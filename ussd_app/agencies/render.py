"""What a caller reads about the agencies a search found, in their language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from ussd_app.agencies.agency import Agency, Found, Statement, country_name
from ussd_app.engine import messages as m
from ussd_app.engine.screens import Translate

PluralTranslate = Callable[[str, str, str, int], str]  # (lang, singular, plural, n)


def render(found: Found | None, lang: str, t: Translate, today: date,
           nt: PluralTranslate | None = None,
           flagged: Callable[[Agency], list[str]] | None = None) -> str:
    """Search results as text in the caller's language; the engine pages it."""
    if found is None:
        return t(lang, m.AGENCY_UNAVAILABLE)
    if found.too_short:
        return t(lang, m.AGENCY_TOO_SHORT)
    if not found.agencies:
        return t(lang, m.AGENCY_NO_MATCH)
    lines = []
    several = len(found.agencies) > 1 or found.count > 1
    if several:
        closest = found.count > len(found.agencies)
        singular, plural = m.AGENCY_FOUND_CLOSEST if closest else m.AGENCY_FOUND
        found_line = (nt(lang, singular, plural, found.count) if nt else
                      singular if found.count == 1 else plural)
        lines.append(found_line.format(count=found.count, shown=len(found.agencies)))
    for number, agency in enumerate(found.agencies, start=1):
        also = found.also[number - 1] if number <= len(found.also) else ""
        name = f"{agency.name} / {also}" if also else agency.name
        lines.append(f"{number}. {name}" if several else name)
        lines.append(_status(agency, lang, t, today))
        if flagged is not None:
            lines.extend(flagged(agency))  # flags raised by supervisors (agencies.flags)
        lines.append(f"{agency.licence}, {country_name(agency.country, lang)}")
        lines.append(t(lang, m.AGENCY_SOURCE).format(source=agency.source,
                                                     date=agency.data_date.isoformat()))
        lines.extend(t(lang, m.AGENCY_ALSO).format(
            source=s.source, date=s.data_date.isoformat(), status=_state(s, lang, t, today))
            for s in agency.also)
    if found.count > len(found.agencies):
        lines.append(t(lang, m.AGENCY_NARROW))
    return "\n".join(lines)


def warning(agency: Agency, lang: str, t: Translate, today: date) -> str:
    """What a caller naming ``agency`` in a complaint is told first ("" when it is
    licensed today): they may still report it, and should know it cannot recruit."""
    if agency.status == "suspended":
        return t(lang, m.AGENCY_WARN_SUSPENDED)
    if agency.status == "revoked":
        return t(lang, m.AGENCY_WARN_REVOKED)
    if agency.expired(today):
        expires = agency.expires.isoformat() if agency.expires else ""
        return t(lang, m.AGENCY_WARN_EXPIRED).format(date=expires)
    return ""


def _state(said: Agency | Statement, lang: str, t: Translate, today: date) -> str:
    """A licence's state today in words: licensed until, EXPIRED on, SUSPENDED, REVOKED."""
    expires = said.expires.isoformat() if said.expires else ""
    if said.status == "suspended":
        return t(lang, m.AGENCY_SUSPENDED)
    if said.status == "revoked":
        return t(lang, m.AGENCY_REVOKED)
    if said.expired(today):
        return t(lang, m.AGENCY_EXPIRED).format(date=expires)
    return t(lang, m.AGENCY_LICENSED).format(date=expires)


def _status(agency: Agency, lang: str, t: Translate, today: date) -> str:
    state = _state(agency, lang, t, today)
    if agency.status == "licensed" and not agency.expired(today):
        return state
    return f"{state}. {t(lang, m.AGENCY_DO_NOT_PAY)}"
