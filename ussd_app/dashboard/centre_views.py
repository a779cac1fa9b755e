"""Partner centres abroad on the dashboard: pairing (supervisors), referring and updating.

Supervisors manage the directory: this centre's card to download, a partner's card
to upload, revoke, retry a link's waiting messages; each link shows its last
delivery, messages waiting and the oldest waiting (as ``/healthz`` does). Operators
refer a case from its page, only when the migrant agreed to share it abroad; on a
case referred here, a status change or outcome (``tell_origin``, called by those
actions) and a short message go back to the centre that referred it. Every step is
audited.
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ussd_app.centres.crypto import BadCard
from ussd_app.centres.service import ReferralRefused
from ussd_app.dashboard.auth import audit, supervisor
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.centre_case import refused, tell_origin
from ussd_app.dashboard.detail_views import action, services
from ussd_app.dashboard.i18n import _
from ussd_app.parsing import MAX_ID, bounded_int
from ussd_app.store import centres as db

CARD_LIMIT = 16 * 1024


@action("centre_refer")
def centre_refer(cid: int, row: dict[str, Any]) -> str:
    centre_id = bounded_int(request.form.get("centre_id", ""), 0, MAX_ID)
    if centre_id is None:
        return _("Choose a partner centre.")
    try:
        services().centres.refer(cid, centre_id, request.form.getlist("share"),
                                 g.operator["id"])
    except ReferralRefused as exc:
        return refused(exc.reason)
    audit("centre_referral", cid, f"to centre {centre_id}")
    centre = db.centre(services().store, centre_id) or {"name": "?"}
    sms = ""
    if row.get("status") != "referred":
        services().complaints.set_status(cid, "referred", g.operator["id"], "operator")
        sms = " " + _("The migrant is told by SMS where contact is safe.")
    return _("Referred to %(centre)s: it will be delivered as soon as its link is up.",
             centre=centre["name"]) + sms


@action("centre_message")
def centre_message(cid: int, row: dict[str, Any]) -> str:
    text = request.form.get("message", "").strip()
    if not text:
        return _("Write the message first.")
    said = tell_origin(cid, message=text)
    audit("centre_message", cid)
    return said or _("This case was not referred from another centre.")


@bp.get("/centres")
@supervisor
def centres() -> ResponseReturnValue:
    c = services().centres
    return render_template("dashboard/centres.html", links=c.links(), me=c.card()["card"],
                           fingerprint=c.fingerprint(),
                           directory={r["id"]: r for r in db.centres(services().store)})


@bp.get("/centres/card.json")
@supervisor
def centre_card() -> ResponseReturnValue:
    audit("centre_export", detail="card downloaded")
    return Response(services().centres.card_bytes(), mimetype="application/json",
                    headers={"Content-Disposition": "attachment; filename=centre-card.json"})


@bp.post("/centres/import")
@supervisor
def centre_import() -> ResponseReturnValue:
    upload = request.files.get("card")
    raw = upload.read(CARD_LIMIT + 1) if upload is not None else b""
    try:
        found, new = services().centres.import_card(raw, "operator", g.operator["id"])
    except BadCard as exc:
        flash(_("The card was refused: %(why)s", why=str(exc)), "error")
    else:
        flash((_("Partner centre added: %(name)s.", name=found["name"]) if new else
               _("Partner centre updated: %(name)s.", name=found["name"])) + " " +
              _("Check its fingerprint with them: %(fingerprint)s",
                fingerprint=found["fingerprint"]), "info")
    return redirect(url_for("dashboard.centres"), 303)


@bp.post("/centres/<int:centre_id>/revoke")
@supervisor
def centre_revoke(centre_id: int) -> ResponseReturnValue:
    if services().centres.revoke(centre_id, "operator", g.operator["id"]):
        flash(_("Revoked: nothing is sent to this centre or accepted from it any more."),
              "info")
    return redirect(url_for("dashboard.centres"), 303)


@bp.post("/centres/<int:centre_id>/retry")
@supervisor
def centre_retry(centre_id: int) -> ResponseReturnValue:
    count = db.retry_now(services().store, centre_id, services().centres.clock())
    audit("centre_retry", detail=f"centre {centre_id}: {count}")
    flash(_("%(count)s message(s) will be sent again now.", count=count), "info")
    return redirect(url_for("dashboard.centres"), 303)
