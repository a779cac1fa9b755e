"""The operators' dashboard wired into the app: its cookie, templates, headers and routes.

Server-rendered HTML with no script at all (the Content-Security-Policy
forbids it), one small stylesheet and inline SVG for the chart: offices have
poor links and no CDN is reachable. Jinja autoescapes everything a caller
typed. ``init_app`` wires it into ``create_app``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from ussd_app import settings
from ussd_app.complaints.references import show_reference
from ussd_app.content.sync import health as sync_health
from ussd_app.dashboard import (  # noqa: F401 - imported for their routes on ``bp``
    admin_views,
    agency_views,
    alert_views,
    analytics_views,
    centre_views,
    detail_views,
    i18n,
    partner_views,
    queue_views,
    record_views,
    recording_views,
    reply_views,
)
from ussd_app.dashboard.accounts import Accounts
from ussd_app.dashboard.auth import csrf_token
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.i18n import _
from ussd_app.job_records.scans import UPLOAD_MAX_BODY, UPLOAD_PATH

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; "
       "frame-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
# The urgent-alert strip is the one page framed, by the dashboard's own pages only.
FRAMED = {"dashboard.alerts"}


@dataclass
class Dashboard:
    accounts: Accounts
    idle_minutes: int


def init_app(app: Flask, services: Any) -> None:
    config: settings.Settings = services.config
    secret = settings.secret_key(config, config.data_dir)
    # A key of its own for the cookie, derived from the one secret (as privacy.py does).
    app.secret_key = hmac.new(secret, b"migrantline dashboard session v1",
                              hashlib.sha256).hexdigest()
    app.config.update(
        SESSION_COOKIE_NAME="migrantline_operator", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_PATH="/operator",
        SESSION_COOKIE_SECURE=config.base_url.startswith("https://"))
    app.extensions["dashboard"] = Dashboard(
        Accounts(services.store, config, secret=secret),
        config.operator_idle_minutes)
    _templates(app)
    app.register_blueprint(bp)
    app.before_request(_upload_limit)


def _upload_limit() -> None:
    """A scan's upload may be bigger than the app's 64 KB, before anything reads the form
    (the CSRF check does); its view checks the scan's own limit."""
    if request.method == "POST" and UPLOAD_PATH.match(request.path):
        request.max_content_length = UPLOAD_MAX_BODY


def ltr(value: Any) -> Markup:
    """A number, date or licence that reads left to right inside right-to-left text.

    ``<bdi dir="ltr">``: isolated, so neither the Arabic around it nor a neighbouring
    number reorders it (browsers, unlike basic handsets, all know isolates)."""
    return Markup('<bdi dir="ltr">%s</bdi>') % ("–" if value in (None, "") else value)


def isolated(value: Any) -> str:
    """``ltr`` for plain text (a page title): the isolate characters themselves."""
    return f"\u2066{value}\u2069"


def reference(value: Any) -> Markup:
    """A complaint reference as operators read it, in groups of four, left to right."""
    return ltr(show_reference(str(value)))


def _templates(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.filters["ltr"] = ltr
    app.jinja_env.filters["isolated"] = isolated
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n._, i18n.ngettext, newstyle=True)
    app.jinja_env.globals.update(
        csrf_token=csrf_token, ref=reference, when=i18n.when, age=i18n.age, label=i18n.label,
        local_when=i18n.local_when, window_text=i18n.window_text,
        country=i18n.country, languages=i18n.languages, current_lang=i18n.current_lang,
        text_direction=i18n.text_direction, STATUS_NAMES=i18n.STATUS_NAMES,
        CATEGORY_NAMES=i18n.CATEGORY_NAMES, CONTACT_NAMES=i18n.CONTACT_NAMES,
        FILED_BY_NAMES=i18n.FILED_BY_NAMES, AGAINST_NAMES=i18n.AGAINST_NAMES,
        EVENT_NAMES=i18n.EVENT_NAMES, FIELD_NAMES=i18n.FIELD_NAMES,
        TEMPLATE_NAMES=i18n.TEMPLATE_NAMES, OUTBOX_NAMES=i18n.OUTBOX_NAMES,
        RECORDING_NAMES=i18n.RECORDING_NAMES, size=i18n.size,
        OUTCOME_NAMES=i18n.OUTCOME_NAMES, CHANNEL_NAMES=i18n.CHANNEL_NAMES,
        GROUP_NAMES=i18n.GROUP_NAMES, language_name=i18n.language_name,
        CALL_NOW_NAMES=i18n.CALL_NOW_NAMES, WHERE_NOW_NAMES=i18n.WHERE_NOW_NAMES,
        SHARE_NAMES=i18n.SHARE_NAMES, NOTIFY_VIA_NAMES=i18n.NOTIFY_VIA_NAMES,
        NOTIFY_NAMES=i18n.NOTIFY_NAMES, PROMISED_NAMES=i18n.PROMISED_NAMES,
        SCAN_KIND_NAMES=i18n.SCAN_KIND_NAMES, CENTRE_SHARE_NAMES=i18n.CENTRE_SHARE_NAMES,
        LINK_NAMES=i18n.LINK_NAMES)


@bp.context_processor
def _page() -> dict[str, Any]:
    """Who is signed in, and at every page's foot the content served and its last sync."""
    services = current_app.extensions["migrantline"]
    tree = services.content.current
    return {"operator": g.get("operator"), "content_version": tree.version if tree else None,
            "sync": sync_health(services.config)}


@bp.after_request
def _headers(response: Response) -> Response:
    """Pages with personal data: no caching, no framing, no script, no referrer."""
    framed = request.endpoint in FRAMED
    response.headers["Content-Security-Policy"] = CSP.replace(
        "frame-ancestors 'none'", "frame-ancestors 'self'") if framed else CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if framed else "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if response.mimetype != "text/css":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(403)
def _forbidden(error: Exception) -> ResponseReturnValue:
    return render_template("dashboard/error.html",
                           message=_("Only supervisors can open this page.")), 403


@bp.errorhandler(404)
def _not_found(error: Exception) -> ResponseReturnValue:
    return render_template("dashboard/error.html", message=_("There is no such page.")), 404
