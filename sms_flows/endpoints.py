"""Inbound SMS and delivery reports from Africa's Talking, Twilio and Kannel.

Only parsing, checking (token, X-Twilio-Signature) and answer shapes live
here; what a message gets in reply is decided by ``sms.SmsService``, and the
reply always goes through the outbox, never in the callback's answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, request

from sms_flows.service import SmsService, sms_inbound
from ussd_app import store as db

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
AT_STATUS = {"Success": "delivered", "Failed": "failed", "Rejected": "failed",
             "Sent": "sent", "Submitted": "sent", "Buffered": "sent"}
TWILIO_STATUS = {"delivered": "delivered", "undelivered": "failed", "failed": "failed",
                 "sent": "sent", "queued": "sent", "sending": "sent", "accepted": "sent"}
KANNEL_STATUS = {"1": "delivered", "2": "failed", "16": "failed", "4": "sent", "8": "sent"}


def _services() -> Any:
    return current_app.extensions["migrantline"]


def refused(channel: str) -> Response | None:
    """The 403 this request gets (``ussd_app.webhook_auth``), or None to go on.

    Checked before anything is read or applied: a forged callback changes nothing.
    """
    form = request.form if channel in ("sms_twilio", "voice_twilio") and \
        request.method == "POST" else None
    reason = current_app.extensions["webhook_auth"].check(channel, request.environ, form)
    return _text(reason, 403) if reason else None


def _text(body: str, status: int = 200, mimetype: str = "text/plain") -> Response:
    return Response(body, status=status, mimetype=mimetype)


def _inbound(provider: str, fields: Mapping[str, str], names: tuple[str, str, str],
             answer: Callable[[], Response]) -> Response:
    phone_field, text_field, id_field = names
    phone = (fields.get(phone_field) or "").strip()[:64]
    if not phone:
        return _text(f"not an SMS callback: {phone_field} is required", 400)
    sms: SmsService = _services().sms
    try:
        outcome = sms.receive(sms_inbound(provider, (fields.get(id_field) or "").strip(), phone,
                                      fields.get(text_field) or ""))
    except Exception:  # never a 500: a 503 makes the provider try again later
        log.exception("inbound SMS from %s failed", provider)
        return _text("try again later", 503)
    if outcome.status == "unavailable":
        return _text("no content to serve now; try again later", 503)
    return answer()


@bp.route("/africastalking", methods=["POST"])
def africastalking() -> Response:
    if (refusal := refused("sms_africastalking")) is not None:
        return refusal
    return _inbound("africastalking", request.form, ("from", "text", "id"),
                    lambda: _text("OK"))


@bp.route("/twilio", methods=["POST"])
def twilio() -> Response:
    if (refusal := refused("sms_twilio")) is not None:
        return refusal
    return _inbound("twilio", request.form, ("From", "Body", "MessageSid"),
                    lambda: _text(EMPTY_TWIML, mimetype="application/xml"))


@bp.route("/kannel", methods=["GET", "POST"])
def kannel() -> Response:
    if (refusal := refused("sms_kannel")) is not None:
        return refusal
    fields = request.form if request.method == "POST" and request.form else request.args
    return _inbound("kannel", fields, ("from", "text", "id"), lambda: _text(""))


def _report(provider_id: str, status: str | None, error: str | None = None) -> Response:
    if not provider_id or status is None:
        return _text("OK")  # a status we do not track, or no id: nothing to change
    if not db.delivery_report(_services().store, provider_id[:100], status,
                              error[:200] if error else None):
        log.info("delivery report for a message we do not know")
    return _text("OK")


@bp.route("/africastalking/delivery", methods=["POST"])
def africastalking_delivery() -> Response:
    if (refusal := refused("sms_africastalking")) is not None:
        return refusal
    form = request.form
    return _report(form.get("id", ""), AT_STATUS.get(form.get("status", "")),
                   form.get("failureReason"))


@bp.route("/twilio/status", methods=["POST"])
def twilio_status() -> Response:
    if (refusal := refused("sms_twilio")) is not None:
        return refusal
    form = request.form
    return _report(form.get("MessageSid", ""), TWILIO_STATUS.get(form.get("MessageStatus", "")),
                   form.get("ErrorCode"))


@bp.route("/kannel/delivery", methods=["GET", "POST"])
def kannel_delivery() -> Response:
    if (refusal := refused("sms_kannel")) is not None:
        return refusal
    return _report(request.values.get("id", ""), KANNEL_STATUS.get(request.values.get("type", "")))
