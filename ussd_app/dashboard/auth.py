"""Who is signed in: the session cookie, CSRF tokens, roles, idle time-out, the audit log.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure under
https, path /operator). It carries only the operator's id, the account's
session epoch, the time of the last request, the CSRF token and the language:
nothing personal. Bumping the epoch (sign-out, a disabled account, a new
password) signs out every browser of that operator at its next request, so a
copied cookie does not outlive its sign-out. Every POST must carry the
session's CSRF token, the sign-in form included.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from ussd_app.dashboard.accounts import Accounts
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.i18n import _, languages
from ussd_app.store import operators as db

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., ResponseReturnValue])
PUBLIC = ("dashboard.login", "dashboard.static")
# Refreshes itself every few seconds: it says "signed out" instead of redirecting, and it
# does not count as activity (an open dashboard nobody uses still signs out when idle).
QUIET = ("dashboard.alerts",)
# All a partner organisation's user may open; any other page is "no such page" (404), so
# they learn nothing of the cases that are not theirs, nor of the staff's pages.
PARTNER_PAGES = ("dashboard.referred", "dashboard.referred_case", "dashboard.referred_reveal",
                 "dashboard.logout", "dashboard.language", "dashboard.static")


def accounts() -> Accounts:
    return current_app.extensions["dashboard"].accounts


def audit(action: str, complaint_id: int | None = None, detail: str = "") -> None:
    """One audit row: who, when, what, which complaint, from where. No personal data."""
    operator = g.get("operator")
    db.audit(current_app.extensions["migrantline"].store, time.time(),
             operator["id"] if operator else None, action, complaint_id, detail,
             request.remote_addr or "")


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


@bp.before_request
def load_operator() -> ResponseReturnValue | None:
    """Check the CSRF token of every POST, then who is signed in, before any view runs."""
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        if not sent or not hmac.compare_digest(sent, str(session.get("csrf", ""))):
            g.operator = None
            return render_template("dashboard/error.html", back=_same_site(request.referrer),
                                   message=_("The form had expired or did not come from this "
                                             "dashboard. Go back, reload the page and try "
                                             "again.")), 400
    g.operator = None
    operator_id = session.get("op")
    if operator_id is not None:
        g.operator = _current(int(operator_id))
    if g.operator is None and request.endpoint not in PUBLIC + QUIET:
        return redirect(url_for("dashboard.login", next=request.full_path
                                if request.method == "GET" else None))
    if g.operator is not None and g.operator["role"] == "partner" and \
            request.endpoint not in PUBLIC + PARTNER_PAGES:
        if request.endpoint == "dashboard.queue":
            return redirect(url_for("dashboard.referred"))
        abort(404)
    return None


def _current(operator_id: int) -> dict[str, Any] | None:
    """The signed-in operator, or None (and the session ended) when it no longer holds."""
    idle = 60 * int(current_app.extensions["dashboard"].idle_minutes)
    now = time.time()
    operator = accounts().by_id(operator_id)
    expired = now - float(session.get("seen", 0)) > idle
    if operator is None or not operator["active"] or expired or \
            session.get("epoch") != operator["session_epoch"]:
        session.clear()
        if expired and operator is not None:
            flash(_("You were signed out after a time without activity."), "info")
        return None
    if request.endpoint not in QUIET:
        session["seen"] = now
    g.lang = session.get("lang") or operator.get("lang") or "en"
    return operator


def supervisor(view: F) -> F:
    """A view for supervisors only: 403 for an operator."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if g.operator is None or g.operator["role"] != "supervisor":
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _same_site(url: str | None) -> str | None:
    """``url`` if it points into the dashboard on this site, else None (no open redirect)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    if not parts.path.startswith(bp.url_prefix or "/operator"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        if g.operator is not None:
            return redirect(url_for("dashboard.queue"))
        csrf_token()
        return render_template("dashboard/login.html", next=request.args.get("next", ""))
    email = request.form.get("email", "")
    result = accounts().sign_in(email, request.form.get("password", ""),
                                request.remote_addr or "")
    if result.result != "ok" or result.operator is None:
        g.operator = None
        audit("sign_in_locked" if result.result == "locked" else "sign_in_failed",
              detail=accounts().email_key(email))  # a keyed hash: never the text typed
        minutes = accounts().lock_seconds // 60
        message = _("Too many failed sign-ins. Try again in %(minutes)s minutes.",
                    minutes=minutes) if result.result == "locked" else \
            _("Wrong email or password, or the account is disabled.")
        flash(message, "error")
        return render_template("dashboard/login.html", next=request.form.get("next", ""),
                               email=email), 429 if result.result == "locked" else 401
    operator = result.operator
    lang = session.get("lang")
    session.clear()  # a new session: nothing from before the sign-in carries over
    session.update({"op": operator["id"], "epoch": operator["session_epoch"],
                    "seen": time.time(), "lang": lang or operator.get("lang") or "en"})
    csrf_token()
    g.operator = operator
    audit("sign_in")
    return redirect(_same_site(request.form.get("next")) or url_for("dashboard.queue"), 303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    audit("sign_out")
    db.end_sessions(current_app.extensions["migrantline"].store, g.operator["id"])
    session.clear()
    return redirect(url_for("dashboard.login"), 303)


@bp.post("/language")
def language() -> ResponseReturnValue:
    lang = request.form.get("lang", "en")
    if lang in dict(languages()):
        session["lang"] = lang
        db.update_operator(current_app.extensions["migrantline"].store, g.operator["id"],
                           {"lang": lang})
    return redirect(_same_site(request.referrer) or url_for("dashboard.queue"), 303)
