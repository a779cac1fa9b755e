"""One complaint: everything the caller said, its history, its messages, and the actions.

The messages are one timeline, oldest first: what the migrant texted about the
case (``Complaints.timeline``), every SMS sent to them for it, their voice
messages. Only a signed-in operator reads it, and the opening is audited.

Opening the page decrypts the complaint, so every opening is audited; the
phone numbers stay masked until "Show number" (a POST, audited again). Each
action goes through ``Complaints`` (which writes the history and queues the
migrant's SMS only where contact is safe) and is audited without its text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ussd_app.complaints.alerts import acknowledge
from ussd_app.complaints.outcomes import OUTCOMES
from ussd_app.complaints.referrals import DEFAULT_SHARED, SHAREABLE, shared_fields
from ussd_app.complaints.service import (
    MESSAGE_TEMPLATES,
    STATUSES,
    ContactNotSafe,
    NotFound,
    mask_phone,
)
from ussd_app.dashboard import centre_case
from ussd_app.dashboard.auth import accounts, audit
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.i18n import ACTOR_NAMES, STATUS_NAMES, _, label, language_name
from ussd_app.dashboard.queue_views import services, untouched
from ussd_app.engine.bidi import for_display
from ussd_app.job_records.compare import promised_vs_reported
from ussd_app.parsing import MAX_ID, bounded_int
from ussd_app.privacy.protect import open_text
from ussd_app.store import operators as operators_db
from ussd_app.store import partners as partners_db
from ussd_app.store import queue as queue_db

NOTE_LIMIT = 2000
Action = Callable[[int, dict[str, Any]], str]


def _complaint(cid: int) -> dict[str, Any]:
    try:
        return dict(services().complaints.get(cid))
    except NotFound:
        abort(404)


def _outbox(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The complaint's SMS, their text opened for the operator (sealed at rest)."""
    complaints = services().complaints
    shown = []
    for message in queue_db.outbox_for(services().store, *complaints.outbox_keys(row)):
        try:
            message["body"] = open_text(complaints.phone_sealer, message["body"])
        except Exception:  # a key change: say so rather than fail the page
            message["body"] = "(cannot be decrypted with the current secret key)"
        shown.append(message)
    return shown


@bp.get("/complaints/<int:cid>")
def detail(cid: int) -> ResponseReturnValue:
    return _page(cid, show_numbers=False)


@bp.post("/complaints/<int:cid>/reveal")
def reveal(cid: int) -> ResponseReturnValue:
    return _page(cid, show_numbers=True)


def _page(cid: int, show_numbers: bool, **extra: Any) -> ResponseReturnValue:
    row = _complaint(cid)
    complaints = services().complaints
    audit("reveal_phone" if show_numbers else "view", cid)
    shown = complaints.reveal(row)
    people = {o["id"]: o for o in accounts().all()}
    history = complaints.history(cid)
    for event in history:
        who = people.get(event.get("operator_id") or -1)
        event["who"] = (who["name"] or who["email"]) if who else label(ACTOR_NAMES,
                                                                        event["actor"])
    agency = None
    if row.get("agency_licence"):
        registry = services().ussd.services.get("agency_search")
        agency = registry.lookup(row["agency_licence"]) if registry is not None else None
    lang = str(row.get("lang") or "en")
    # As the SMS will carry them: marked to read right in a right-to-left language.
    previews = {key: for_display(services().t(lang, text).format(
        reference=shown["reference_shown"]), lang) for key, text in MESSAGE_TEMPLATES.items()}
    recordings = (services().recordings.for_complaint(str(row["reference"]))
                  if services().recordings is not None else [])
    record, compared = None, []
    records = services().records
    if row.get("job_record_id") and records is not None:
        found = records.get(int(row["job_record_id"]))
        if found is not None:
            record = records.reveal(found)
            compared = promised_vs_reported(record, shown)
    return render_template(
        "dashboard/detail.html", c=shown, history=history,
        timeline=complaints.timeline(row, recordings),
        agency=agency, show_numbers=show_numbers, now=time.time(),
        contact_phone_masked=mask_phone(shown.get("contact_phone", "")),
        truncated=[f for f in str(row.get("truncated") or "").split(",") if f],
        untouched=untouched(row, time.time()), statuses=STATUSES,
        operators=[o for o in people.values() if o["active"]],
        partners=operators_db.partners(services().store, active_only=True),
        previews=previews, can_message=complaints.can_message(row), recordings=recordings,
        outcomes=OUTCOMES, assigned=people.get(row.get("assigned_to") or -1),
        acknowledged_by=people.get(row.get("acknowledged_by") or -1),
        migrant_lang=language_name(lang), shareable=SHAREABLE, default_shared=DEFAULT_SHARED,
        referrals=partners_db.referrals_of(services().store, cid), reply=extra.get("reply"),
        reply_error=extra.get("reply_error"), record=record, compared=compared,
        **centre_case.case_context(row))


def action(name: str) -> Callable[[Action], Action]:
    """Register ``fn(cid, row) -> message`` as POST /complaints/<cid>/<name>: it runs the
    action, flashes what it did, and the browser goes back to the complaint's page."""

    def register(fn: Action) -> Action:
        def view(cid: int) -> ResponseReturnValue:
            message = fn(cid, _complaint(cid))
            if message:
                flash(message, "info")
            return redirect(url_for("dashboard.detail", cid=cid), 303)

        bp.add_url_rule(f"/complaints/<int:cid>/{name}", fn.__name__, view, methods=["POST"])
        return fn

    return register


def _change_status(cid: int, row: dict[str, Any], status: str, detail: str = "") -> str:
    """Set the status; say whether the migrant's status SMS was queued (contact safe)."""
    before = len(_outbox(row))
    services().complaints.set_status(cid, status, g.operator["id"], "operator", detail=detail)
    if len(_outbox(row)) > before:
        return _("An SMS to the migrant was queued.")
    return _("No SMS to the migrant: this status has none, or contact is not safe "
             "for updates.")


@action("acknowledge")
def acknowledge_urgent(cid: int, row: dict[str, Any]) -> str:
    """The operator who acknowledges an urgent case owns the first contact: the alert
    strip stops showing it and it does not escalate."""
    if not row.get("urgent"):
        return _("Only an urgent case is acknowledged.")
    if row.get("acknowledged_at"):
        return _("This urgent case was already acknowledged.")
    acknowledge(services().complaints, cid, g.operator["id"])
    audit("acknowledge", cid)
    return _("Acknowledged: the alert stops and the case will not be escalated.")


@action("assign")
def assign(cid: int, row: dict[str, Any]) -> str:
    wanted = request.form.get("operator_id", "")
    operator_id = bounded_int(wanted, 0, MAX_ID)
    operator = accounts().by_id(operator_id) if operator_id is not None else None
    if operator is None or not operator["active"]:
        return _("Choose an operator to assign it to.")
    who = operator["name"] or operator["email"]
    services().complaints.act(cid, "assign", g.operator["id"], "operator", detail=who,
                              fields={"assigned_to": operator["id"]})
    audit("assign", cid, f"to operator {operator['id']}")
    return _("Assigned to %(who)s.", who=who)


@action("status")
def status(cid: int, row: dict[str, Any]) -> str:
    wanted = request.form.get("status", "")
    if wanted not in STATUSES:
        return _("Choose a status.")
    sms = _change_status(cid, row, wanted, request.form.get("note", "")[:NOTE_LIMIT])
    audit("status", cid, wanted)
    told = centre_case.tell_origin(cid, status=wanted) if wanted != row["status"] else ""
    return " ".join(filter(None, (_("Status changed to %(status)s.",
                                    status=label(STATUS_NAMES, wanted)), sms, told)))


@action("note")
def note(cid: int, row: dict[str, Any]) -> str:
    text = request.form.get("note", "").strip()
    if not text:
        return _("Write the note first.")
    services().complaints.act(cid, "note", g.operator["id"], "operator",
                              detail=text[:NOTE_LIMIT])
    audit("note", cid)
    if len(text) > NOTE_LIMIT:
        return _("Note added, cut to %(limit)s characters.", limit=NOTE_LIMIT)
    return _("Note added.")


@action("message")
def message(cid: int, row: dict[str, Any]) -> str:
    template = request.form.get("template", "")
    if template not in MESSAGE_TEMPLATES:
        return _("Choose a message.")
    try:
        services().complaints.message(cid, template, g.operator["id"], "operator")
    except ContactNotSafe:
        audit("message_refused", cid, template)
        return _("Not sent: the caller did not say it is safe to contact them by SMS.")
    audit("message", cid, template)
    return _("The SMS was queued.")


@action("refer")
def refer(cid: int, row: dict[str, Any]) -> str:
    wanted = request.form.get("partner_id", "")
    partner_id = bounded_int(wanted, 0, MAX_ID)
    partner = (operators_db.partner(services().store, partner_id)
               if partner_id is not None else None)
    if partner is None or not partner["active"]:
        return _("Choose a partner organisation.")
    text = request.form.get("note", "").strip()[:NOTE_LIMIT]
    services().complaints.act(cid, "referral", g.operator["id"], "operator",
                              detail=partner["name"] + (f": {text}" if text else ""))
    fields = shared_fields(request.form.getlist("share"))
    settings = partners_db.notify_settings(services().store, int(partner["id"])) or {}
    ways = [way for way, on in (("email", settings.get("notify_email")),
                                ("webhook", settings.get("webhook_url"))) if on]
    partners_db.refer(services().store, cid, int(partner["id"]), ",".join(fields),
                      g.operator["id"], ways, time.time())
    sms = _change_status(cid, row, "referred")
    audit("referral", cid, f"to partner {partner['id']}; shared {','.join(fields)}")
    return _("Referred to %(partner)s.", partner=partner["name"]) + " " + sms
