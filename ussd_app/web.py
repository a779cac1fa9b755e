"""MigrantLine: safe-migration information and help by USSD, SMS and voice.

``create_app`` wires the pieces: settings, the store, the content registry,
the catalogs and the channel blueprints. Everything a request needs is kept
on ``app.extensions["migrantline"]`` (a ``Services``), so tests and the CLI
build the same objects the server does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response

from sms_flows.service import SmsService
from ussd_app import jobs, settings
from ussd_app.agencies.registry import AgencyRegistry
from ussd_app.channels.ussd.sessions import UssdSessions
from ussd_app.channels.voice.callbacks import Callbacks
from ussd_app.channels.voice.calls import VoiceCalls
from ussd_app.channels.voice.recordings import VoiceRecordings
from ussd_app.complaints.actions import make_actions
from ussd_app.complaints.service import Complaints
from ussd_app.content import sync
from ussd_app.content.registry import ContentRegistry
from ussd_app.engine.encoding import Limits
from ussd_app.i18n import Catalogs, default_catalogs
from ussd_app.privacy import rekey
from ussd_app.privacy.protect import PhoneHasher, Sealer
from ussd_app.store import Store, open_store, purge_sms_conversations
from ussd_app.store.voice import purge_voice_calls
from ussd_app.urls import IdConverter, Utf8Urls

log = logging.getLogger("migrantline")
SESSION_KEEP_SECONDS = 24 * 3600


@dataclass
class Services:
    config: Mapping[str, Any]
    store: Store
    content: ContentRegistry
    catalogs: Catalogs
    ussd: UssdSessions
    sms: SmsService | None = None
    complaints: Complaints | None = None
    sync: Any = None  # the background content sync (sync.BackgroundSync), when configured
    prompts: Any = None  # the voice prompts (voice_prompts.PromptLibrary)
    voice: Any = None  # the voice line (voice_calls.VoiceCalls)
    callbacks: Callbacks | None = None  # missed-call call-backs (voice)
    recordings: VoiceRecordings | None = None  # complaint recordings from the voice line

    def t(self, lang: str, message: str) -> str:
        return self.catalogs.gettext(lang, message)


def ussd_limits(config: Mapping[str, Any]) -> Limits:
    return Limits(gsm7=settings.integer(config, "MIGRANTLINE_USSD_MAX_GSM7"),
                  ucs2=settings.integer(config, "MIGRANTLINE_USSD_MAX_UCS2"))


def build_services(config: Mapping[str, Any]) -> Services:
    """Every part of the service; its background jobs report to /healthz of this data dir."""
    with jobs.owned_by(str(Path(config["MIGRANTLINE_DATA_DIR"]).resolve())):
        return _build_services(config)


def _build_services(config: Mapping[str, Any]) -> Services:
    data_dir = Path(config["MIGRANTLINE_DATA_DIR"]).resolve()
    store = open_store(data_dir, settings.integer(config, "MIGRANTLINE_SESSION_FLUSH_MS"))
    secret = settings.secret_key(config, data_dir)
    if not rekey.check_fingerprint(store, secret):  # before anything starts with it
        raise settings.SecretKeyError(
            f"MIGRANTLINE_SECRET_KEY is not the key the data in {data_dir} was sealed with "
            "(was it rotated with `migrantline keys rotate`? set the new key); not starting, "
            "so that nothing is sealed with the wrong key")
    catalogs = default_catalogs()
    layouts = content_layouts(config)
    layout, sms_layouts = layouts[0], layouts[1:]
    # content/agencies.csv, loaded with the tree
    agencies = AgencyRegistry(store, catalogs.gettext, catalogs.ngettext)
    # the synced mirror (a symlink to the current version) once MIGRANTLINE_CENTRAL_URL is set
    content = ContentRegistry(sync.served_content_dir(config), layouts, catalogs.gettext,
                              load_data=agencies.load)
    content.load()
    content.watch(float(config.get("MIGRANTLINE_CONTENT_POLL_SECONDS") or 0))
    background_sync = sync.start_background(config, on_switch=content.poll)
    complaints = Complaints(store, secret, catalogs.gettext, resolve_agency=agencies.resolve)
    actions = make_actions(complaints, catalogs.gettext)
    draft_seconds = 60 * settings.integer(config, "MIGRANTLINE_DRAFT_MINUTES")
    ussd = UssdSessions(store, content, PhoneHasher(secret), Sealer(secret), layout,
                        catalogs.gettext,
                        resume_seconds=60 * settings.integer(config,
                                                             "MIGRANTLINE_RESUME_MINUTES"),
                        services={"agency_search": agencies}, actions=actions,
                        draft_seconds=draft_seconds)
    sms = SmsService(store, content, ussd.hasher, ussd.sealer, *sms_layouts, catalogs.gettext,
                     services={"agency_search": agencies}, actions=actions,
                     complaints=complaints,
                     conversation_seconds=3600 * settings.integer(
                         config, "MIGRANTLINE_SMS_CONVERSATION_HOURS"),
                     rate_per_hour=settings.integer(config, "MIGRANTLINE_SMS_RATE_PER_HOUR"),
                     draft_seconds=draft_seconds)
    # Sessions are kept a day (resume needs minutes), drafts of complaints only as long
    # as they may be continued: nothing a caller typed lingers.
    jobs.every(300, lambda: _purge_drafts(store, draft_seconds, sms.conversation_seconds),
               "session-purge", run_at_stop=False)  # a purge is no buffer to flush at exit
    keep_days = settings.integer(config, "MIGRANTLINE_OUTBOX_KEEP_DAYS")
    jobs.every(3600, lambda: purge_outbox_bodies(store, keep_days), "outbox-purge",
               run_at_stop=False)
    recordings = VoiceRecordings(store, secret, config)
    recordings.start()  # retries due downloads, and those a crash left half done
    # Missed-call call-backs: placed in the background when a voice provider is set.
    callbacks = Callbacks(store, ussd.sealer, ussd.hasher, config)
    callbacks.start()
    prompts = prompt_library(config)
    voice = VoiceCalls(store, content, ussd.hasher, ussd.sealer, prompts, catalogs.gettext,
                       services={"agency_search": agencies}, actions=actions,
                       complaints=complaints, recordings=recordings, callbacks=callbacks,
                       callback_mode=str(config.get("MIGRANTLINE_VOICE_CALLBACK") or "missed"),
                       background=jobs.once)
    jobs.every(3600, lambda: _purge_voice(store, prompts), "voice-purge", run_at_stop=False)
    if settings.flag(config, "MIGRANTLINE_PROMPTS_RENDER"):
        jobs.once(lambda: render_missing(prompts, content, catalogs.gettext, data_dir),
                  "prompts-render")
    return Services(config, store, content, catalogs, ussd, sms, complaints,
                    sync=background_sync, prompts=prompts, voice=voice, callbacks=callbacks,
                    recordings=recordings)


def _purge_voice(store: Store, prompts: Any) -> None:
    """Calls are kept a day (retries, missed-call checks); dynamic speech as long."""
    purge_voice_calls(store, time.time() - SESSION_KEEP_SECONDS)
    prompts.purge_dynamic()


def render_missing(prompts: Any, content: ContentRegistry, t: Any, data_dir: Path) -> int:
    """Generate the audio no prompt has yet, in the background of one process only.

    Why here as well as ``migrantline prompts render``: a deployment that never
    ran the command still ends up playing generated audio instead of the
    provider's voice, without anyone waiting on it. A file lock keeps the
    other worker processes from doing the same work twice.
    """
    import fcntl

    tree = content.current
    if tree is None:
        return 0
    lock_path = data_dir / "audio" / ".render.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # another process renders
        done = 0
        # What every call hears first, in every language (the language menu, digits, the
        # voice phrases, the main menu), before the articles.
        order = sorted(prompts.manifest(tree, t).all(), key=lambda p: (
            0 if p.id.startswith(("language/", "digit/", "ui/")) else
            1 if p.id.startswith(f"node/{tree.main}/") else 2))
        from voice_prompts import tts

        missing_tools = tts.missing_tools()
        if missing_tools:
            log.warning("voice prompts are not generated: %s missing (apt-get install "
                        "espeak-ng sox); callers hear recordings or the provider's voice",
                        ", ".join(missing_tools))
            return 0
        failed: set[str] = set()  # a language with no voice: said once, not per prompt
        for prompt in order:
            if prompt.lang in failed or prompts.state(prompt).status != "missing":
                continue
            try:
                prompts.render_prompt(prompt)
                done += 1
            except Exception as exc:
                failed.add(prompt.lang)
                log.warning("could not generate the %s prompts (%s): %s; record them with "
                            "`migrantline prompts record`", prompt.lang, prompt.id, exc)
        if done:
            log.info("generated %d voice prompts in the background", done)
        return done


def prompt_library(config: Mapping[str, Any]) -> Any:
    """The voice prompts: synced recordings first, then the local ones, then generated audio."""
    from voice_prompts import PromptLibrary

    data_dir = Path(config["MIGRANTLINE_DATA_DIR"]).resolve()
    recordings = Path(str(config.get("MIGRANTLINE_RECORDINGS_DIR")
                          or "./voice_prompts/recordings")).resolve()
    return PromptLibrary([sync.served_content_dir(config) / "audio", recordings],
                         data_dir / "audio", str(config["MIGRANTLINE_BASE_URL"]), "en",
                         online=str(config.get("MIGRANTLINE_TTS_ONLINE") or "auto"))


def purge_outbox_bodies(store: Store, keep_days: float) -> int:
    """Erase the text and number of SMS done with for ``keep_days`` (hourly, and by
    ``migrantline retention purge``); then fold the WAL so no old frame keeps them."""
    from ussd_app.store.privacy import checkpoint, erase_outbox_bodies

    now = time.time()
    count = erase_outbox_bodies(store, now - keep_days * 86400, now)
    if count:
        checkpoint(store)
    return count


def _purge_drafts(store: Store, draft_seconds: float, conversation_seconds: float) -> None:
    from ussd_app.store.privacy import purge_erased_phones

    now = time.time()
    purge_erased_phones(store, now)
    store.purge_sessions(now - SESSION_KEEP_SECONDS, drafts_older_than=now - draft_seconds)
    purge_sms_conversations(store, now - conversation_seconds, now - draft_seconds)


def _sms_layouts(config: Mapping[str, Any]) -> tuple[Any, Any]:
    """The SMS layouts: menu replies, and articles asked for by SMS."""
    from sms_flows.layout import SmsLayout

    return (SmsLayout(settings.integer(config, "MIGRANTLINE_SMS_MAX_SEGMENTS"),
                      node_types=("menu", "contacts", "ask", "language")),
            SmsLayout(settings.integer(config, "MIGRANTLINE_SMS_ARTICLE_MAX_SEGMENTS"),
                      node_types=("article",)))


def content_layouts(config: Mapping[str, Any]) -> list[Any]:
    """Every layout a tree is paged for before it is served (sync checks with the same)."""
    from ussd_app.channels.ussd.endpoints import UssdLayout

    return [UssdLayout(ussd_limits(config)), *_sms_layouts(config)]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    config = settings.load(overrides=test_config)
    logging.basicConfig(level=str(config.get("MIGRANTLINE_LOG_LEVEL") or "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_http_clients()
    data_dir = Path(str(config["MIGRANTLINE_DATA_DIR"])).resolve()
    settings.secure_data_dir(data_dir)
    settings.secret_key(config, data_dir)  # a weak key stops here, before anything starts
    warning = settings.key_warning(config, data_dir)
    if warning:
        log.warning(warning)
    app = Flask(__name__)
    app.url_map.converters["int"] = IdConverter  # bounded ids in every route (urls.py)
    app.config.update(config)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    from ussd_app.channels.webhook_auth import WebhookAuth

    # Every webhook's check, from the settings once (a bad allow-list stops the start here).
    app.extensions["webhook_auth"] = WebhookAuth(config)
    app.extensions["webhook_auth"].log_start()
    app.extensions["migrantline"] = build_services(config)

    from sms_flows.endpoints import bp as sms_bp
    from ussd_app.channels.ussd import endpoints as ussd
    from ussd_app.health import bp as health_bp

    services: Services = app.extensions["migrantline"]
    app.wsgi_app = ussd.UssdEndpoint(app.wsgi_app, services,  # type: ignore[method-assign]
                                     app.extensions["webhook_auth"])
    app.wsgi_app = Utf8Urls(app.wsgi_app)  # type: ignore[method-assign]
    app.register_blueprint(health_bp)
    app.register_blueprint(sms_bp)
    from voice_prompts.serve import bp as audio_bp  # /audio/: prompt audio for the voice line

    app.register_blueprint(audio_bp)
    from ussd_app.channels.voice.endpoints import (
        bp as voice_bp,  # /voice/twilio, /voice/africastalking
    )

    app.register_blueprint(voice_bp)
    from ussd_app.dashboard import (
        init_app as init_dashboard,  # /operator/: the operators' dashboard
    )

    init_dashboard(app, services)
    if str(config.get("MIGRANTLINE_OUTBOX_WORKER") or "off").lower() in ("on", "1", "true"):
        from sms_flows.outbox import start_background

        start_background(services)
    _error_pages(app)
    return app


# HTTP clients that log whole request URLs (Kannel's carries the number and the text
# in its query) or headers: never below WARNING, whatever MIGRANTLINE_LOG_LEVEL says.
NOISY_LOGGERS = ("urllib3", "twilio.http_client", "requests")


def quiet_http_clients() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


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
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return Response(exc.description or exc.name, status=exc.code or 500,
                            mimetype="text/plain")
        log.exception("unhandled error")
        return Response("internal error", status=500, mimetype="text/plain")
