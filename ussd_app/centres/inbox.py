"""``POST /partners/inbox``: where partner centres deliver referrals and updates.

No cookie, no token: the envelope's signature by a known, unrevoked centre is the
authentication (``Centres.receive``). The answer is JSON without personal data:
200 stored (or ``idempotent``: seen before), 400 unreadable, tampered or not for
this centre, 403 an unknown or revoked sender, 503 when it could not be stored now
(the sender retries).
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from ussd_app.store.base import DB_ERRORS

bp = Blueprint("centres", __name__)
log = logging.getLogger(__name__)


@bp.post("/partners/inbox")
def inbox() -> ResponseReturnValue:
    centres = current_app.extensions["migrantline"].centres
    try:
        answer = centres.receive(request.get_data(cache=False), request.remote_addr or "")
    except DB_ERRORS:
        log.exception("partner inbox: could not store a message now")
        return jsonify({"ok": False, "error": "unavailable"}), 503
    return jsonify(answer.body), answer.status
