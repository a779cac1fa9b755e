"""A partner organisation's pages: the cases referred to it, each with only what was shared.

A partner's user (role ``partner``) reaches nothing else (``auth.PARTNER_PAGES``).
A case that was not referred to their organisation is "no such page" (404),
whether or not it exists. The page shows the reference and the fields the
referring operator shared; the phone numbers only when shared, masked until
"Show number". Every opening is audited as an operator's is, and the first
one is kept on the referral ("Opened by <partner> at ...") for the hotline.
"""

from __future__ import annotations

import time
from typing import Any

from flask import abort, g, render_template, request
from flask.typing import ResponseReturnValue

from ussd_app.complaints.service import NotFound, mask_phone
from ussd_app.dashboard.auth import audit
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.queue_views import MAX_PAGE, PAGE_SIZE, services
from ussd_app.parsing import bounded_int
from ussd_app.store import operators as operators_db
from ussd_app.store import partners as db


def _partner_id() -> int:
    """The signed-in partner user's organisation; staff have their own pages (404 here)."""
    if g.operator["role"] != "partner" or g.operator.get("partner_id") is None:
        abort(404)
    return int(g.operator["partner_id"])


@bp.get("/referred/")
def referred() -> ResponseReturnValue:
    page = bounded_int(request.args.get("page", ""), 1, MAX_PAGE) or 1
    rows, total = db.referred_to(services().store, _partner_id(), PAGE_SIZE,
                                 (page - 1) * PAGE_SIZE)
    for row in rows:
        row["shared"] = str(row["fields"]).split(",")
    audit("partner_queue", detail=f"partner {_partner_id()}")
    return render_template("dashboard/referred.html", rows=rows, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), query={},
                           partner=operators_db.partner(services().store, _partner_id()))


@bp.get("/referred/<int:cid>")
def referred_case(cid: int) -> ResponseReturnValue:
    return _case(cid, show_numbers=False)


@bp.post("/referred/<int:cid>/reveal")
def referred_reveal(cid: int) -> ResponseReturnValue:
    return _case(cid, show_numbers=True)


def _case(cid: int, show_numbers: bool) -> ResponseReturnValue:
    referral = db.referral_for(services().store, cid, _partner_id())
    if referral is None:
        abort(404)  # not theirs, or no such case: the same answer
    shared = str(referral["fields"]).split(",")
    if show_numbers and "phone" not in shared:
        abort(404)
    try:
        row = services().complaints.get(cid)
    except NotFound:
        abort(404)
    audit("partner_reveal_phone" if show_numbers else "partner_view", cid,
          f"partner {_partner_id()}")
    db.mark_opened(services().store, int(referral["id"]), int(g.operator["id"]), time.time())
    return render_template("dashboard/referred_case.html", c=_shown(row, shared),
                           shared=shared, show_numbers=show_numbers, referral=referral,
                           partner=operators_db.partner(services().store, _partner_id()))


def _shown(row: dict[str, Any], shared: list[str]) -> dict[str, Any]:
    """Only the shared fields of the case, opened; nothing else leaves this function."""
    full = services().complaints.reveal(row)
    shown: dict[str, Any] = {"id": row["id"], "reference_shown": full["reference_shown"],
                             "created_at": row["created_at"], "status": row["status"],
                             "erased_at": row.get("erased_at")}
    if "category" in shared:
        shown["category"] = row.get("category")
    if "country" in shared:
        shown["country"] = row.get("country")
    if "description" in shared:
        shown["description"] = full.get("description", "")
    if "contact" in shared:
        shown["contact"] = row.get("contact") or "unknown"
        shown["contact_when"] = full.get("contact_when", "")
    if "phone" in shared:
        shown["phone"] = full.get("phone", "")
        shown["phone_masked"] = full.get("phone_masked", "")
        shown["contact_phone"] = full.get("contact_phone", "")
        shown["contact_phone_masked"] = mask_phone(full.get("contact_phone", ""))
    return shown
