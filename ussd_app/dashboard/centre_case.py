"""A case page's part about centres abroad, and telling the referring centre of a change.

Kept apart from ``centre_views`` so that the case page and the status and outcome
actions (``detail_views``, ``analytics_views``) use it without importing the views
that register themselves on those actions.
"""

from __future__ import annotations

from typing import Any

from flask import g

from ussd_app.centres.service import DEFAULT_SHARED, SHAREABLE, ReferralRefused
from ussd_app.dashboard.i18n import _
from ussd_app.dashboard.queue_views import services
from ussd_app.privacy.protect import Sealer
from ussd_app.store import centres as db


def refused(reason: str) -> str:
    return {
        "no_consent": _("Not referred: the migrant did not agree to share this case with a "
                        "centre in another country."),
        "erased": _("Not referred: the personal data of this case was erased."),
        "unknown_centre": _("Choose a partner centre."),
        "revoked_centre": _("Not sent: this partner centre was revoked."),
    }.get(reason, _("Choose a partner centre."))


def case_context(row: dict[str, Any]) -> dict[str, Any]:
    """What the case page shows of centres: referrals both ways, with what came back."""
    store = services().store
    referrals = db.referrals_of(store, int(row["id"]))
    sealer: Sealer = services().complaints.text_sealer
    for r in referrals:
        sealed = r.get("remote_message_sealed")
        try:
            r["remote_message"] = sealer.open(sealed) if sealed else ""
        except Exception:  # a key change: say so rather than fail the page
            r["remote_message"] = "(cannot be decrypted with the current secret key)"
    return {"centre_referrals": referrals,
            "incoming": next((r for r in referrals if r["direction"] == "in"), None),
            "centres": db.centres(store, active_only=True), "centre_shareable": SHAREABLE,
            "centre_default_shared": DEFAULT_SHARED}


def tell_origin(cid: int, status: str | None = None, outcome: dict[str, Any] | None = None,
                message: str = "") -> str:
    """On a case referred here, send the change back; a sentence for the flash, or ''."""
    try:
        sent = services().centres.send_update(cid, g.operator["id"], status=status,
                                              outcome=outcome, message=message)
    except ReferralRefused as exc:
        return refused(exc.reason)
    return _("The referring centre will be told.") if sent else ""
