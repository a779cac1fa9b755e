"""The web application: the providers' webhooks, the audio the voice line plays, the
operators' dashboard and ``/healthz``, on one Flask app.

``create_app`` wires them over the parts ``services.build_services`` makes;
everything a request needs is kept on ``app.extensions["migrantline"]`` (a
``Services``), so tests and the CLI build the same objects the server does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from sms_flows.endpoints import bp as sms_bp
from sms_flows.outbox import start_background as start_outbox
from ussd_app import logs, settings
from ussd_app.centres.inbox import bp as centres_bp  # /partners/inbox
from ussd_app.channels.ussd.endpoints import UssdEndpoint
from ussd_app.channels.voice.endpoints import VoiceEndpoint, VoiceWebhooks
from ussd_app.channels.voice.endpoints import bp as voice_bp  # /voice/twilio, /voice/africastalking
from ussd_app.channels.webhook_auth import WebhookAuth
from ussd_app.dashboard.app import init_app as init_dashboard  # /operator/
from ussd_app.health import bp as health_bp
from ussd_app.services import Services, build_services
from ussd_app.urls import IdConverter, Utf8Urls
from voice_prompts.serve import bp as audio_bp  # /audio/: prompt audio for the voice line

log = logging.getLogger("migrantline")
__all__ = ["Services", "create_app"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    config = settings.load(overrides=test_config)  # a bad value stops here (SettingError)
    logs.configure(config.log_level)
    settings.secure_data_dir(config.data_dir)
    settings.secret_key(config, config.data_dir)  # a weak key stops here, before anything
    warning = settings.key_warning(config, config.data_dir)
    if warning:
        log.warning(warning)
    app = Flask(__name__)
    app.url_map.converters["int"] = IdConverter  # bounded ids in every route (urls.py)
    app.config.update(config.as_config())  # as given, by name: tests read them there
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    # Every webhook's check, from the settings once (a bad allow-list stops the start here).
    auth = app.extensions["webhook_auth"] = WebhookAuth(config)
    auth.log_start()
    services = app.extensions["migrantline"] = build_services(config)
    webhooks = app.extensions["voice_webhooks"] = VoiceWebhooks(services, auth)
    app.wsgi_app = VoiceEndpoint(app.wsgi_app, webhooks)  # type: ignore[method-assign]
    app.wsgi_app = UssdEndpoint(app.wsgi_app, services, auth)  # type: ignore[method-assign]
    app.wsgi_app = Utf8Urls(app.wsgi_app)  # type: ignore[method-assign]
    for blueprint in (health_bp, sms_bp, audio_bp, voice_bp, centres_bp):
        app.register_blueprint(blueprint)
    init_dashboard(app, services)
    if config.outbox_worker and config.background:  # off: a dedicated sender sends
        start_outbox(services)
    _error_pages(app)
    return app


def _error_pages(app: Flask) -> None:
    """Plain-text errors: providers and phones must never see an HTML traceback."""

    @app.errorhandler(404)
    def not_found(_: Exception) -> Response:
        return Response("not found", status=404, mimetype="text/plain")

    @app.errorhandler(405)
    def not_allowed(_: Exception) -> Response:
        return Response("method not allowed", status=405, mimetype="text/plain")

    @app.errorhandler(413)
    def too_large(_: Exception) -> Response:
        return Response("request too large", status=413, mimetype="text/plain")

    @app.errorhandler(Exception)
    def crashed(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return Response(exc.description or exc.name, status=exc.code or 500,
                            mimetype="text/plain")
        log.exception("unhandled error")
        return Response("internal error", status=500, mimetype="text/plain")
