"""Inbound SMS and delivery reports from Africa's Talking, Twilio and Kannel.

Only routes and answer shapes live here: each provider's checks (token,
X-Twilio-Signature) and fields are in its module (``ussd_app.providers``);
what a message gets in reply is decided by ``sms.SmsService``, and the reply
always goes through the outbox, never in the callback's answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, request

from sms_flows.service import SmsService, sms_inbound
from ussd_app import store as db
from ussd_app.channels.webhook_auth import refused
from ussd_app.providers import africastalking as at
from ussd_app.providers import kannel as kn  # short names: the views are named after them
from ussd_app.providers import twilio as tw
from ussd_app.providers.inbound import DeliveryReport, SmsIn

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")


def _services() -> Any:
    return current_app.extensions["migrantline"]


def _text(body: str, status: int = 200, mimetype: str = "text/plain") -> Response:
    return Response(body, status=status, mimetype=mimetype)


def _inbound(provider: str, message: SmsIn, phone_field: str,
             answer: Callable[[], Response]) -> Response:
    if not message.phone:
        return _text(f"not an SMS callback: {phone_field} is required", 400)
    sms: SmsService = _services().sms
    try:
        outcome = sms.receive(sms_inbound(provider, message.message_id, message.phone,
                                          message.text))
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
    return _inbound(at.NAME, at.sms(request.form), at.SMS_FIELDS[0], lambda: _text("OK"))


@bp.route("/twilio", methods=["POST"])
def twilio() -> Response:
    if (refusal := refused("sms_twilio")) is not None:
        return refusal
    return _inbound(tw.NAME, tw.sms(request.form), tw.SMS_FIELDS[0],
                    lambda: _text(tw.EMPTY_TWIML, mimetype="application/xml"))


@bp.route("/kannel", methods=["GET", "POST"])
def kannel() -> Response:
    if (refusal := refused("sms_kannel")) is not None:
        return refusal
    fields = request.form if request.method == "POST" and request.form else request.args
    return _inbound(kn.NAME, kn.sms(fields), kn.SMS_FIELDS[0], lambda: _text(""))


def _report(report: DeliveryReport) -> Response:
    provider_id, status, error = report.provider_id, report.status, report.error
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
    return _report(at.delivery_report(request.form))


@bp.route("/twilio/status", methods=["POST"])
def twilio_status() -> Response:
    if (refusal := refused("sms_twilio")) is not None:
        return refusal
    return _report(tw.message_status(request.form))


@bp.route("/kannel/delivery", methods=["GET", "POST"])
def kannel_delivery() -> Response:
    if (refusal := refused("sms_kannel")) is not None:
        return refusal
    return _report(kn.delivery_report(request.values))
