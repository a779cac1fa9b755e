"""Every part of a running service, built once per process from the settings.

``build_services`` is what ``create_app`` (and the CLI, and the tests) use, so
each builds the same objects the server does. Background jobs started here
report to ``/healthz`` of this data folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sms_flows.service import SmsService
from ussd_app import audio_store, cluster, jobs, settings
from ussd_app.agencies.actions import agency_actions
from ussd_app.agencies.registry import AgencyRegistry
from ussd_app.centres.service import Centres
from ussd_app.channels.ussd.sessions import UssdSessions
from ussd_app.channels.voice import prompts as voice_prompts
from ussd_app.channels.voice.callbacks import Callbacks
from ussd_app.channels.voice.calls import VoiceCalls
from ussd_app.channels.voice.recordings import VoiceRecordings
from ussd_app.complaints.actions import make_actions
from ussd_app.complaints.alerts import INTERVAL as ALERT_INTERVAL
from ussd_app.complaints.alerts import UrgentAlerts
from ussd_app.complaints.referrals import INTERVAL as NOTIFY_INTERVAL
from ussd_app.complaints.referrals import PartnerNotifier
from ussd_app.complaints.service import Complaints
from ussd_app.content import sync
from ussd_app.content.layouts import content_layouts
from ussd_app.content.registry import ContentRegistry
from ussd_app.i18n import Catalogs, default_catalogs
from ussd_app.job_records.actions import make_record_actions
from ussd_app.job_records.service import JobRecords
from ussd_app.mail import send_mail
from ussd_app.privacy import rekey
from ussd_app.privacy.protect import PhoneHasher, Sealer
from ussd_app.privacy.purges import purge_drafts, purge_outbox_bodies
from ussd_app.store import Store, open_store
from ussd_app.store.base import is_postgres_url

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: settings.Settings
    store: Store
    content: ContentRegistry
    catalogs: Catalogs
    ussd: UssdSessions
    sms: SmsService | None = None
    complaints: Complaints | None = None
    sync: Any = None  # the background content sync (sync.BackgroundSync), when configured
    prompts: Any = None  # the voice prompts (voice_prompts.PromptLibrary)
    voice: Any = None  # the voice line (channels.voice.calls.VoiceCalls)
    callbacks: Callbacks | None = None  # missed-call call-backs (voice)
    recordings: VoiceRecordings | None = None  # complaint recordings from the voice line
    partners: PartnerNotifier | None = None  # tells partners of their referrals
    records: JobRecords | None = None  # job-offer records kept before departure
    centres: Centres | None = None  # partner centres abroad: referrals and their updates

    def t(self, lang: str, message: str) -> str:
        return self.catalogs.gettext(lang, message)


def build_services(config: settings.Config) -> Services:
    """Every part of the service; its background jobs report to /healthz of this data dir."""
    config = settings.of(config)
    with jobs.owned_by(str(config.data_dir)):
        return _build_services(config)


def _open_store(config: settings.Settings) -> tuple[Store, bytes]:
    """The store and the secret key, refused when the key is not the data's."""
    url = config.database_url
    if url and not is_postgres_url(url):
        raise settings.SettingError(
            f"MIGRANTLINE_DATABASE_URL must start with postgresql:// (got {url.split(':')[0]}:"
            "...); unset it to use the SQLite file in the data folder")
    store = open_store(config.data_dir, config.session_flush_ms, url=url or "")
    secret = settings.secret_key(config, config.data_dir)
    if not rekey.check_fingerprint(store, secret):  # before anything starts with it
        raise settings.SecretKeyError(
            f"MIGRANTLINE_SECRET_KEY is not the key the data in {config.data_dir} was sealed "
            "with (was it rotated with `migrantline keys rotate`? set the new key); not "
            "starting, so that nothing is sealed with the wrong key")
    return store, secret


def _content(config: settings.Settings, store: Store, catalogs: Catalogs
             ) -> tuple[ContentRegistry, AgencyRegistry, Any]:
    """The tree being served (with content/agencies.csv loaded alongside), and its sync."""
    agencies = AgencyRegistry(store, catalogs.gettext, catalogs.ngettext,
                              reports_from=config.agency_reports_public_from)
    # the synced mirror (a symlink to the current version) once MIGRANTLINE_CENTRAL_URL is set
    # versions a session started on are read from the mirror's folders (sync.archive)
    content = ContentRegistry(sync.served_content_dir(config), content_layouts(config),
                              catalogs.gettext, load_data=agencies.load,
                              archive=sync.archive(config))
    content.load()
    content.watch(config.content_poll_seconds)
    background_sync = sync.start_background(config, on_switch=content.poll)
    return content, agencies, background_sync


def _purges(store: Store, config: settings.Settings, sms: SmsService) -> None:
    """Sessions are kept a day (resume needs minutes), drafts of complaints only as long
    as they may be continued: nothing a caller typed lingers."""
    draft_seconds = 60 * config.draft_minutes
    keep_days = config.outbox_keep_days
    # once per cluster on PostgreSQL (cluster.py)
    cluster.every(store, 300, "session-purge",
                  lambda: purge_drafts(store, draft_seconds, sms.conversation_seconds))
    cluster.every(store, 3600, "outbox-purge", lambda: purge_outbox_bodies(store, keep_days))


def _urgent_alerts(store: Store, config: settings.Settings, complaints: Complaints) -> None:
    """On-call phones texted of each urgent case, and escalation (once per cluster)."""
    numbers = config.urgent_alert_numbers or ()
    emails = config.urgent_alert_emails or () if config.smtp_host else ()
    if not numbers and not config.urgent_escalate_numbers and not emails:
        log.info("MIGRANTLINE_URGENT_ALERT_NUMBERS is not set: urgent cases alert on the "
                    "dashboard only, no on-call phone is texted")
        return
    alerts = UrgentAlerts(complaints, numbers, config.urgent_escalate_numbers or (),
                          config.urgent_escalate_minutes, config.urgent_alert_lang,
                          mail=lambda to, subject, body: send_mail(config, to, subject, body, 10),
                          emails=emails)
    cluster.every(store, ALERT_INTERVAL, "urgent-alerts", alerts.run)


def _build_services(config: settings.Settings) -> Services:
    store, secret = _open_store(config)
    catalogs = default_catalogs()
    t = catalogs.gettext
    content, agencies, background_sync = _content(config, store, catalogs)
    layout, *sms_layouts = content.layouts
    complaints = Complaints(store, secret, t, resolve_agency=agencies.resolve)
    records = JobRecords(store, secret, resolve_agency=agencies.resolve)
    complaints.job_records = records  # a complaint links to its record; erasure takes both
    engine: dict[str, Any] = {"services": {"agency_search": agencies},
                              "actions": {**make_actions(complaints, t),
                                          **agency_actions(agencies.warning),
                                          **make_record_actions(records, complaints, t)}}
    draft_seconds = 60 * config.draft_minutes
    ussd = UssdSessions(store, content, PhoneHasher(secret), Sealer(secret), layout, t,
                        resume_seconds=60 * config.resume_minutes,
                        draft_seconds=draft_seconds,
                        article_segments=config.sms_article_max_segments, **engine)
    sms = SmsService(store, content, ussd.hasher, ussd.sealer, *sms_layouts, t,
                     complaints=complaints,
                     conversation_seconds=3600 * config.sms_conversation_hours,
                     rate_per_hour=config.sms_rate_per_hour, draft_seconds=draft_seconds,
                     **engine)
    _purges(store, config, sms)
    _urgent_alerts(store, config, complaints)
    partners = PartnerNotifier(store, secret, config, t)
    if config.background:  # once per cluster: a node that sends nothing itself skips it
        cluster.every(store, NOTIFY_INTERVAL, "partner-notify", partners.run)
    centres = Centres(store, secret, config, complaints, t)
    centres.records = records  # a referral may carry the case's job-offer record
    if config.background:  # deliveries to partner centres: once per cluster
        cluster.every(store, config.referral_interval_seconds, "centre-deliver",
                      centres.deliver)
    audio = audio_store.from_config(config)  # shared by every node when it is a bucket
    recordings = VoiceRecordings(store, secret, config, audio=audio)
    recordings.start()  # retries due downloads, and those a crash left half done
    # An erasure deletes the recordings' audio kept in the shared bucket at once.
    complaints.after_erase = lambda: jobs.once(recordings.delete_erased, "recordings-erase")
    # Missed-call call-backs: placed in the background when a voice provider is set.
    callbacks = Callbacks(store, ussd.sealer, ussd.hasher, config, background=config.background)
    callbacks.start()
    prompts = voice_prompts.prompt_library(config, audio)
    voice = VoiceCalls(store, content, ussd.hasher, ussd.sealer, prompts, t,
                       recordings=recordings, callbacks=callbacks,
                       callback_mode=config.voice_callback, background=jobs.once, **engine)
    _voice_jobs(config, store, prompts, lambda: voice_prompts.render_missing(
        prompts, content, t, config.data_dir))
    return Services(config, store, content, catalogs, ussd, sms, complaints,
                    sync=background_sync, prompts=prompts, voice=voice, callbacks=callbacks,
                    recordings=recordings, partners=partners, records=records,
                    centres=centres)


def _voice_jobs(config: settings.Settings, store: Store, prompts: Any,
                render: Callable[[], int]) -> None:
    cluster.every(store, 3600, "voice-purge", lambda: voice_prompts.purge_voice(store, prompts))
    if config.prompts_render:  # one node renders (PostgreSQL); one process of a machine (file lock)
        jobs.once(cluster.once_per_cluster(store, "prompts-render", render), "prompts-render")
