"""A reply in the operator's own words: start from a template, preview, then send.

No script on the page: each step is a POST that shows the case page again.
``template`` fills the text box with a template in the migrant's language;
``preview`` shows the encoding (GSM-7 or UCS-2), the SMS parts and when it will
be sent (at once, or held until the caller's safe time, on their clock and in
UTC); ``send`` queues it through the outbox (``Complaints.reply``, sealed, held
like every SMS of the case) and audits it as ``message`` (``reply``). A reply
over 6 parts, or to a case whose caller said never (or was not asked), is
refused with a message that says why (a withheld number has none to reply to);
the text typed is kept on the page.
"""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from ussd_app.complaints.service import (
    MAX_REPLY_PARTS,
    MESSAGE_TEMPLATES,
    ContactNotSafe,
    ReplyTooLong,
    show_reference,
)
from ussd_app.dashboard.auth import audit
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.detail_views import _complaint, _page
from ussd_app.dashboard.i18n import _, local_when, when
from ussd_app.dashboard.queue_views import services

# What the form keeps of a pasted text: far over 6 parts, so the refusal says how long.
FORM_LIMIT = 4000


@bp.post("/complaints/<int:cid>/reply")
def reply(cid: int) -> ResponseReturnValue:
    row = _complaint(cid)
    complaints = services().complaints
    text = request.form.get("text", "")[:FORM_LIMIT]
    step = request.form.get("step", "preview")
    if step == "template":
        template = request.form.get("template", "")
        if template in MESSAGE_TEMPLATES:
            text = services().t(str(row["lang"]), MESSAGE_TEMPLATES[template]).format(
                reference=show_reference(str(row["reference"])))
        return _page(cid, False, reply={"text": text})
    try:
        checked = complaints.reply_check(row, text)
    except ContactNotSafe:
        audit("message_refused", cid, "reply")
        if row.get("contact") in ("any", "times") and not row.get("phone_sealed"):
            flash(_("Not sent: the number was withheld, so there is no number to reply to."),
                  "info")
        else:
            flash(_("Not sent: the caller did not say it is safe to contact them by SMS."),
                  "info")
        return redirect(url_for("dashboard.detail", cid=cid), 303)
    except ReplyTooLong as exc:
        error = _("Too long: %(parts)s SMS parts; a reply may have at most %(max)s. "
                  "Shorten it and preview again.", parts=exc.args[0], max=MAX_REPLY_PARTS)
        return _page(cid, False, reply={"text": text}, reply_error=error)
    except ValueError:
        return _page(cid, False, reply={"text": text}, reply_error=_("Write the reply first."))
    if step != "send":
        return _page(cid, False, reply={"text": checked.body, "checked": checked,
                                        "held": checked.send_at > complaints.clock()})
    complaints.reply(cid, checked.body, g.operator["id"], "operator")
    audit("message", cid, "reply")
    sent_at = complaints.send_time(row)
    if sent_at > complaints.clock():
        zone = complaints.window(row)[1]
        flash(_("The reply was queued. It is held until the caller's safe time: %(local)s "
                "(%(utc)s).", local=local_when(sent_at, zone), utc=when(sent_at)), "info")
    else:
        flash(_("The reply was queued."), "info")
    return redirect(url_for("dashboard.detail", cid=cid), 303)
