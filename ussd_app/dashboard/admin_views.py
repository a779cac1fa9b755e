"""Supervisors' pages: the audit log, partner organisations, operator accounts."""

from __future__ import annotations

import secrets
import time

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ussd_app.complaints.referrals import BadWebhookUrl, check_webhook_url
from ussd_app.complaints.service import parse_reference
from ussd_app.dashboard.auth import accounts, audit, supervisor
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.i18n import _
from ussd_app.dashboard.queue_views import MAX_PAGE, services
from ussd_app.parsing import MAX_ID, bounded_int
from ussd_app.store import complaints as complaints_db
from ussd_app.store import operators as db
from ussd_app.store import partners as partners_db

AUDIT_PAGE = 50


@bp.get("/audit")
@supervisor
def audit_log() -> ResponseReturnValue:
    """Newest first; for one complaint (by reference) or one operator when asked."""
    page = bounded_int(request.args.get("page", ""), 1, MAX_PAGE) or 1
    typed = request.args.get("reference", "").strip()
    complaint_id = None
    if typed:
        reference = parse_reference(typed)
        row = complaints_db.by_reference(services().store, reference) if reference else None
        if row is None:
            flash(_("No complaint has the reference %(reference)s.", reference=typed), "error")
            return redirect(url_for("dashboard.audit_log"))
        complaint_id = int(row["id"])
    operator = request.args.get("operator", "")
    operator_id = bounded_int(operator, 0, MAX_ID)
    rows, total = db.audit_rows(services().store, AUDIT_PAGE, (page - 1) * AUDIT_PAGE,
                                complaint_id, operator_id)
    return render_template("dashboard/audit.html", rows=rows, total=total, page=page,
                           pages=max(1, -(-total // AUDIT_PAGE)), reference=typed,
                           operator_id=operator_id, operators=accounts().all(),
                           known=accounts().known_emails())


@bp.get("/partners")
@supervisor
def partners() -> ResponseReturnValue:
    rows = [{**p, **(partners_db.notify_settings(services().store, p["id"]) or {})}
            for p in db.partners(services().store)]
    return render_template("dashboard/partners.html", partners=rows,
                           smtp=bool(services().config.smtp_host))


@bp.post("/partners/<int:partner_id>/notify")
@supervisor
def partner_notify(partner_id: int) -> ResponseReturnValue:
    """How the partner is told of a referral; a new webhook gets a new secret, shown once."""
    current = partners_db.notify_settings(services().store, partner_id)
    if current is None:
        abort(404)
    email = request.form.get("notify_email", "").strip()[:254] or None
    url = request.form.get("webhook_url", "").strip()[:500] or None
    if email and "@" not in email:
        flash(_("That is not an e-mail address."), "error")
        return redirect(url_for("dashboard.partners"), 303)
    try:
        url = check_webhook_url(url) if url else None
    except BadWebhookUrl:
        flash(_("The webhook must be an https:// address."), "error")
        return redirect(url_for("dashboard.partners"), 303)
    secret = None
    if url and (url != current["webhook_url"] or request.form.get("new_secret") == "1"
                or not current["webhook_secret_sealed"]):
        secret = secrets.token_urlsafe(32)
    sealed = services().partners.sealer.seal(secret) if secret else None
    partners_db.set_notify(services().store, partner_id, email, url, sealed)
    audit("partner_notify", detail=f"partner {partner_id}: email {'yes' if email else 'no'}, "
          f"webhook {'yes' if url else 'no'}{', new secret' if secret else ''}")
    flash(_("Saved."), "info")
    if secret:
        flash(_("The webhook secret, shown this once: give it to the partner. %(secret)s",
                secret=secret), "info")
    return redirect(url_for("dashboard.partners"), 303)


@bp.post("/partners")
@supervisor
def add_partner() -> ResponseReturnValue:
    name = " ".join(request.form.get("name", "").split())[:160]
    if not name:
        flash(_("Give the organisation's name."), "error")
        return redirect(url_for("dashboard.partners"), 303)
    partner_id = db.add_partner(services().store, name,
                                request.form.get("country", "").strip().upper()[:8],
                                request.form.get("contact", "").strip()[:300], time.time())
    audit("partner_add", detail=f"partner {partner_id}")
    flash(_("Partner %(name)s added.", name=name), "info")
    return redirect(url_for("dashboard.partners"), 303)


@bp.post("/partners/<int:partner_id>/active")
@supervisor
def partner_active(partner_id: int) -> ResponseReturnValue:
    if db.partner(services().store, partner_id) is None:
        abort(404)
    active = request.form.get("active") == "1"
    db.set_partner_active(services().store, partner_id, active)
    audit("partner_enable" if active else "partner_disable", detail=f"partner {partner_id}")
    return redirect(url_for("dashboard.partners"), 303)


@bp.get("/operators")
@supervisor
def operators() -> ResponseReturnValue:
    return render_template("dashboard/operators.html", operators=accounts().all())


@bp.post("/operators/<int:operator_id>/active")
@supervisor
def operator_active(operator_id: int) -> ResponseReturnValue:
    if accounts().by_id(operator_id) is None:
        abort(404)
    active = request.form.get("active") == "1"
    if operator_id == g.operator["id"] and not active:
        flash(_("You cannot disable your own account."), "error")
        return redirect(url_for("dashboard.operators"), 303)
    accounts().set_active(operator_id, active)
    audit("operator_enable" if active else "operator_disable",
          detail=f"operator {operator_id}")
    return redirect(url_for("dashboard.operators"), 303)
