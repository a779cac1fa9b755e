"""The urgent-alert strip: a small page every dashboard page frames, refreshed every few
seconds, so an urgent case shows (and sounds, once) within seconds on any open dashboard.

Why a framed page and not a script: the dashboard runs no script at all (its CSP
forbids it, so a caller's text can never run in an operator's browser). The strip
reloads itself (``<meta http-equiv="refresh">``); the page around it does not, so
an operator typing a note loses nothing. It plays a sound once per new urgent case
per signed-in session, and does not count as activity for the idle sign-out.
"""

from __future__ import annotations

import time

from flask import current_app, g, render_template, session
from flask.typing import ResponseReturnValue

from ussd_app.dashboard.blueprint import bp
from ussd_app.store import complaints as db

REFRESH_SECONDS = 3  # an urgent case shows within this (and the query's time) of filing


@bp.get("/alerts")
def alerts() -> ResponseReturnValue:
    if g.operator is None:
        return render_template("dashboard/alerts.html", signed_out=True, waiting=[],
                               ring=False, refresh=None, now=time.time())
    waiting = db.waiting_urgent(current_app.extensions["migrantline"].store)
    newest = max((int(c["id"]) for c in waiting), default=0)
    ring = newest > int(session.get("alert_seen", 0))
    if ring:
        session["alert_seen"] = newest
    return render_template("dashboard/alerts.html", signed_out=False, waiting=waiting,
                           ring=ring, refresh=REFRESH_SECONDS, now=time.time())
