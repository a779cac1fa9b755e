"""``agency_warning``: the complaint flow's pause when the agency a caller names is not
licensed today or was flagged ("This agency's licence EXPIRED on …; continue?").

The caller may still report it (a complaint about an unlicensed recruiter matters
most), so the warning is a screen with "continue" and "name another", never a
refusal. A registry or flag read that fails says nothing and lets the caller
on: a complaint is never held up by a lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from ussd_app.engine.answers import Action, ActionResult, Query

log = logging.getLogger(__name__)

AGAINST = "against"  # the field the complaint flow keeps the agency's name or licence in
WARNING = "agency_warning"  # the answer the warning screen shows


def agency_actions(warn: Callable[[str, str], str]) -> Mapping[str, Action]:
    """``warn(typed, lang)`` is the registry's ``warning``."""

    def agency_warning(q: Query) -> ActionResult:
        typed = q.answers.get(AGAINST, "")
        try:
            text = warn(typed, q.lang) if typed else ""
        except Exception:
            log.exception("could not check the agency a complaint names")
            text = ""
        return ActionResult("warn" if text else "next", {WARNING: text})

    return {"agency_warning": agency_warning}
