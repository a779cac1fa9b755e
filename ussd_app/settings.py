"""Every configuration setting, with its default and help, read once into one typed object.

Configuration comes only from the environment (and an optional ``.env``), so
a deployment is described by one file and a fresh clone runs with none. The
README's settings table is checked against this list by a test.

``load()`` reads and parses every setting once, at start: a bad value stops
the start with a message that names the setting and what it accepts (a
``SettingError``), never a traceback from deep inside the first request that
reads it. The result, a frozen ``Settings``, is what the code reads
(``config.draft_minutes``, an int), never the raw strings. Numbers are parsed
as requests are (``parsing.bounded_int``/``bounded_float``: ASCII digits, within
bounds); every on/off switch by the one ``switch`` parser; a setting set to an
empty value counts as unset (its default).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ussd_app.privacy import secret_key as _keys
from ussd_app.privacy.secret_key import (  # noqa: F401 - re-exported: settings.check_key & co.
    KEY_HELP,
    MIN_KEY_BITS,
    SecretKeyError,
    check_key,
    key_bits,
    key_file,
    secure_data_dir,
)
from ussd_app.setting_types import (  # noqa: F401 - re-exported: settings.SettingError & co.
    MINUTES_A_YEAR,
    OFF_WORDS,
    ON_WORDS,
    SIX_HOURS,
    Parse,
    Setting,
    SettingError,
    _refuse,
    choice,
    decimal,
    email_list,
    path,
    phone_list,
    resolved_path,
    setting,
    switch,
    text,
    whole,
)


@dataclass(frozen=True)
class Settings:
    """Every setting, parsed: one attribute per variable, named without ``MIGRANTLINE_``."""

    data_dir: Path = setting("MIGRANTLINE_DATA_DIR", "./var", resolved_path,
        "SQLite database, mirrored content, generated audio, outbox")
    database_url: str | None = setting("MIGRANTLINE_DATABASE_URL", None, text,
        "postgresql://user:password@host:5432/db for several nodes on one PostgreSQL; "
        "unset: the SQLite file in the data folder")
    min_free_mb: int = setting("MIGRANTLINE_MIN_FREE_MB", "200", whole(0, 10**12),
        "/healthz answers 503 when the disk holding the data folder has less free space "
        "than this many megabytes (filings would soon fail)")
    content_dir: Path = setting("MIGRANTLINE_CONTENT_DIR", "./content", path,
        "content tree to serve")
    recordings_dir: Path = setting("MIGRANTLINE_RECORDINGS_DIR", "./voice_prompts/recordings", path,
        "field recordings of voice prompts (`migrantline prompts record` writes here)")
    prompts_render: bool = setting("MIGRANTLINE_PROMPTS_RENDER", "on", switch,
        "on: the service generates, in the background, the audio of prompts that have "
        "none yet (one process at a time); off: only `migrantline prompts render` does")
    audio_format: str = setting("MIGRANTLINE_AUDIO_FORMAT", "mp3", choice("mp3", "wav"),
        "how prompts are kept, published and played: mp3 (16 kbit/s mono 8 kHz, an eighth "
        "of the bytes; both providers play it) or wav (8 kHz u-law, for a provider or a "
        "player that needs WAV)")
    audio_store: str = setting("MIGRANTLINE_AUDIO_STORE", "local", choice("local", "s3"), "or s3")
    s3_bucket: str | None = setting("MIGRANTLINE_S3_BUCKET", None, text, "s3: the bucket")
    s3_endpoint_url: str | None = setting("MIGRANTLINE_S3_ENDPOINT_URL", None, text, "s3: MinIO")
    s3_prefix: str | None = setting("MIGRANTLINE_S3_PREFIX", "migrantline/", text, "s3: its folder")
    s3_region: str | None = setting("MIGRANTLINE_S3_REGION", None, text, "s3: the region")
    voice_callback: str = setting(
        "MIGRANTLINE_VOICE_CALLBACK", "missed", choice("missed", "always", "off", off="off"),
        "missed: call back an inbound caller who hung up within 20 s without pressing a "
        "key; always: refuse every inbound call unanswered (free for the caller) and call "
        "back; off: never call back")
    tts_online: str = setting(
        "MIGRANTLINE_TTS_ONLINE", "auto", choice("auto", "off", on="auto", off="off"),
        "auto: generate prompts with gTTS when it is installed and Google is reachable "
        "(else espeak-ng); off: espeak-ng only")
    base_url: str = setting("MIGRANTLINE_BASE_URL", "http://127.0.0.1:5000", text,
        "public base URL: audio links and Twilio signature checks")
    secret_key: str | None = setting("MIGRANTLINE_SECRET_KEY", None, text,
        "signs cookies and derives encryption keys (at least 256 bits of entropy: "
        "`migrantline keys generate`); made once and kept in the data dir (with a warning "
        "at every start) when unset")
    webhook_token: str | None = setting("MIGRANTLINE_WEBHOOK_TOKEN", None, text,
        "every Africa's Talking and Kannel callback (and Twilio's, while TWILIO_AUTH_TOKEN "
        "is unset) must carry ?token=<value>; without it those webhooks answer 403 and "
        "`serve` refuses to start")
    at_allowed_ips: str | None = setting("MIGRANTLINE_AT_ALLOWED_IPS", None, text,
        "Africa's Talking callbacks are also refused unless they come from one of these "
        "addresses or networks (comma-separated CIDRs; the direct peer)")
    kannel_allowed_ips: str | None = setting("MIGRANTLINE_KANNEL_ALLOWED_IPS", None, text,
        "Kannel callbacks are also refused unless they come from one of these addresses "
        "or networks (comma-separated CIDRs; the direct peer)")
    insecure_open_webhooks: bool = setting("MIGRANTLINE_INSECURE_OPEN_WEBHOOKS", "off", switch,
        "on: webhooks with no authentication configured are open to anyone (not for real "
        "callers); `serve --insecure-open-webhooks` sets it")
    demo: bool = setting("MIGRANTLINE_DEMO", "off", switch,
        "on: webhooks with no authentication configured answer this machine (loopback) "
        "only, and `serve` binds 127.0.0.1 only; `serve --demo` (`make run`) sets it")
    sms_provider: str = setting(
        "MIGRANTLINE_SMS_PROVIDER", "outbox",
        choice("africastalking", "twilio", "kannel", "outbox"),
        "africastalking, twilio, kannel or outbox (store only)")
    ussd_max_gsm7: int = setting("MIGRANTLINE_USSD_MAX_GSM7", "160", whole(20, 1000),
        "characters per USSD screen in GSM-7")
    ussd_max_ucs2: int = setting("MIGRANTLINE_USSD_MAX_UCS2", "70", whole(10, 1000),
        "characters per USSD screen in UCS-2")
    resume_minutes: int = setting("MIGRANTLINE_RESUME_MINUTES", "5", whole(0, MINUTES_A_YEAR),
        "a redial within this many minutes of a dropped USSD session offers to continue")
    draft_minutes: int = setting("MIGRANTLINE_DRAFT_MINUTES", "60", whole(0, MINUTES_A_YEAR),
        "a complaint half written (USSD or SMS) can be continued this long after the "
        "caller dropped; then it is erased")
    retention_days: int = setting("MIGRANTLINE_RETENTION_DAYS", "365", whole(0, 36500),
        "`migrantline retention purge` erases the personal data of complaints closed "
        "longer ago than this")
    session_flush_ms: int = setting("MIGRANTLINE_SESSION_FLUSH_MS", "100", whole(0, 86_400_000),
        "no longer read (kept so old .env files still load): each USSD hop writes its "
        "session progress before it is answered")
    content_poll_seconds: float = setting(
        "MIGRANTLINE_CONTENT_POLL_SECONDS", "2", decimal(0, 86400),
        "how often the content folder is checked for changes (hot reload); 0 turns it off")
    log_level: str = setting(
        "MIGRANTLINE_LOG_LEVEL", "INFO", choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        "DEBUG, INFO, WARNING or ERROR")
    header_timeout_seconds: float = setting(
        "MIGRANTLINE_HEADER_TIMEOUT_SECONDS", "10", decimal(0.001, 3600),
        "`serve` closes a connection whose request headers are not complete this long "
        "after it opened or after its previous answer (also ends idle keep-alives)")
    body_timeout_seconds: float = setting(
        "MIGRANTLINE_BODY_TIMEOUT_SECONDS", "10", decimal(0.001, 3600),
        "`serve` answers 408 and closes the connection when a request body is not all "
        "in this long after its headers; also the most a stalled download may wait")
    trusted_proxies: str | None = setting("MIGRANTLINE_TRUSTED_PROXIES", None, text,
        "comma-separated addresses of reverse proxies (e.g. 127.0.0.1 for nginx on the "
        "same host): for requests from them `serve` takes the client's address from the "
        "last X-Forwarded-For entry")
    sms_conversation_hours: int = setting(
        "MIGRANTLINE_SMS_CONVERSATION_HOURS", "24", whole(0, 24 * 366),
        "an SMS conversation (where a phone is in the menus) is kept this many hours")
    sms_max_segments: int = setting("MIGRANTLINE_SMS_MAX_SEGMENTS", "2", whole(1, 255),
        "SMS parts a menu reply may use before it pages behind 98")
    sms_article_max_segments: int = setting(
        "MIGRANTLINE_SMS_ARTICLE_MAX_SEGMENTS", "6", whole(1, 255),
        "SMS parts an article asked for by SMS may use, sent concatenated")
    agency_reports_public_from: int = setting(
        "MIGRANTLINE_AGENCY_REPORTS_PUBLIC_FROM", "0", whole(0, 10**6),
        "callers checking an agency read how many complaints named it in the last 90 "
        "days only from this many on; 0 (the default) never shows a count. A count is "
        "not a finding: see the field-staff guide before turning it on")
    sms_rate_per_hour: int = setting("MIGRANTLINE_SMS_RATE_PER_HOUR", "30", whole(0, 10**9),
        "inbound SMS answered per phone per hour; more are stored, not answered")
    urgent_alert_numbers: tuple[str, ...] = setting(
        "MIGRANTLINE_URGENT_ALERT_NUMBERS", None, phone_list,
        "on-call phones (+ and digits, comma-separated) texted within a minute of an urgent "
        "case: its reference only, no personal data")
    urgent_alert_emails: tuple[str, ...] = setting(
        "MIGRANTLINE_URGENT_ALERT_EMAILS", None, email_list,
        "supervisors' addresses (comma-separated) e-mailed of each urgent case and escalation, "
        "with its reference only; needs MIGRANTLINE_SMTP_HOST")
    urgent_escalate_minutes: int = setting(
        "MIGRANTLINE_URGENT_ESCALATE_MINUTES", "10", whole(1, 1440),
        "an urgent case nobody acknowledged on the dashboard after this many minutes is "
        "escalated: the escalation phones are texted")
    urgent_escalate_numbers: tuple[str, ...] = setting(
        "MIGRANTLINE_URGENT_ESCALATE_NUMBERS", None, phone_list,
        "the phones an unacknowledged urgent case escalates to (default: the on-call phones)")
    urgent_alert_lang: str = setting(
        "MIGRANTLINE_URGENT_ALERT_LANG", "en", text,
        "the language of the on-call SMS (a code with a catalog in translations/)")
    outbox_max_attempts: int = setting("MIGRANTLINE_OUTBOX_MAX_ATTEMPTS", "8", whole(1, 1000),
        "sending attempts before an outbox message is dead (kept, not sent)")
    outbox_backoff_seconds: float = setting(
        "MIGRANTLINE_OUTBOX_BACKOFF_SECONDS", "30", decimal(0, SIX_HOURS),
        "wait before the first retry; it doubles after each failed attempt (at most 6 h)")
    outbox_lease_seconds: float = setting(
        "MIGRANTLINE_OUTBOX_LEASE_SECONDS", "120", decimal(1, 86400),
        "how long a worker holds a message it is sending; a killed worker's messages are "
        "taken again after this (the provider's HTTP timeouts are kept under half of it)")
    outbox_keep_days: int = setting("MIGRANTLINE_OUTBOX_KEEP_DAYS", "7", whole(0, 36500),
        "the text and number of an SMS are erased this many days after it was sent (or "
        "failed); its status and size stay for the figures")
    outbox_max_age_minutes: int = setting(
        "MIGRANTLINE_OUTBOX_MAX_AGE_MINUTES", "60", whole(0, MINUTES_A_YEAR),
        "with a real MIGRANTLINE_SMS_PROVIDER, /healthz answers 503 when a message has "
        "waited to be sent longer than this; 0 turns the check off")
    outbox_worker: bool = setting("MIGRANTLINE_OUTBOX_WORKER", "off", switch,
        "on: `serve` also runs the outbox worker in the background of each process")
    background: bool = setting("MIGRANTLINE_BACKGROUND", "on", switch,
        "off: this node sends nothing itself (no outbox worker, no call-backs placed, no "
        "partner notified): "
        "dedicated `migrantline outbox send --forever` and `callbacks place --forever` "
        "processes do")
    voice_provider: str = setting(
        "MIGRANTLINE_VOICE_PROVIDER", "none", choice("twilio", "africastalking", "none"),
        "places missed-call call-backs: twilio, africastalking or none (stored, not placed)")
    callback_per_day: int = setting("MIGRANTLINE_CALLBACK_PER_DAY", "3", whole(0, 10**6),
        "call-backs one number can get in 24 hours; more missed calls are refused")
    callback_min_minutes: int = setting(
        "MIGRANTLINE_CALLBACK_MIN_MINUTES", "10", whole(0, MINUTES_A_YEAR),
        "a number's missed calls within this many minutes of its last call-back are refused")
    callback_global_per_day: int = setting(
        "MIGRANTLINE_CALLBACK_GLOBAL_PER_DAY", "200", whole(0, 10**9),
        "call-backs all numbers together can get in 24 hours; more missed calls are refused")
    callback_countries: str | None = setting("MIGRANTLINE_CALLBACK_COUNTRIES", None, text,
        "country calling codes call-backs may go to (e.g. 977,971), or * for any; unset: "
        "the country of the number call-backs are placed from (TWILIO_FROM_NUMBER or "
        "AT_VOICE_NUMBER). Premium-rate, shared-cost and personal numbers never")
    callback_max_attempts: int = setting("MIGRANTLINE_CALLBACK_MAX_ATTEMPTS", "5", whole(1, 1000),
        "attempts to place a call-back before it is dead (temporary errors only)")
    recording_hosts: str = setting(
        "MIGRANTLINE_RECORDING_HOSTS", "api.twilio.com,*.africastalking.com", text,
        "hosts complaint recordings are downloaded from (https only; an entry "
        "`http://host[:port]` also allows plain http there, for a local stand-in)")
    recording_max_mb: int = setting("MIGRANTLINE_RECORDING_MAX_MB", "10", whole(1, 10**4),
        "a complaint recording larger than this many megabytes is refused")
    recording_max_attempts: int = setting("MIGRANTLINE_RECORDING_MAX_ATTEMPTS", "8", whole(1, 1000),
        "download attempts before a complaint recording is given up (dead)")
    recording_backoff_seconds: float = setting(
        "MIGRANTLINE_RECORDING_BACKOFF_SECONDS", "60", decimal(0, SIX_HOURS),
        "wait before the first retry of a recording download; it doubles after each "
        "failed attempt (at most 6 h)")
    at_username: str | None = setting("AT_USERNAME", None, text,
        "Africa's Talking username")
    at_api_key: str | None = setting("AT_API_KEY", None, text,
        "Africa's Talking API key")
    at_sender_id: str | None = setting("AT_SENDER_ID", None, text,
        "Africa's Talking sender id or short code")
    at_api_url: str | None = setting("AT_API_URL", None, text,
        "Africa's Talking API base URL for a stand-in (default: the SDK's own)")
    at_voice_number: str | None = setting("AT_VOICE_NUMBER", None, text,
        "Africa's Talking voice number that call-backs are placed from (+E.164)")
    at_voice_api_url: str | None = setting("AT_VOICE_API_URL", None, text,
        "Africa's Talking voice API base URL for a stand-in (default: the SDK's own)")
    twilio_account_sid: str | None = setting("TWILIO_ACCOUNT_SID", None, text,
        "Twilio account")
    twilio_auth_token: str | None = setting("TWILIO_AUTH_TOKEN", None, text,
        "Twilio auth token; when set, webhooks with a bad X-Twilio-Signature get 403")
    twilio_from_number: str | None = setting("TWILIO_FROM_NUMBER", None, text,
        "Twilio sending number")
    twilio_api_url: str | None = setting("TWILIO_API_URL", None, text,
        "Twilio API base URL for a stand-in (default: the SDK's own)")
    kannel_sendsms_url: str | None = setting("KANNEL_SENDSMS_URL", None, text,
        "a local Kannel gateway's sendsms URL")
    kannel_username: str | None = setting("KANNEL_USERNAME", None, text,
        "Kannel sendsms user")
    kannel_password: str | None = setting("KANNEL_PASSWORD", None, text,
        "Kannel sendsms password")
    kannel_sender: str | None = setting("KANNEL_SENDER", None, text,
        "sender (the short code or modem number) for Kannel sendsms; unset: global-sender")
    central_url: str | None = setting("MIGRANTLINE_CENTRAL_URL", None, text,
        "central content store that sync mirrors")
    central_pubkey: Path | None = setting("MIGRANTLINE_CENTRAL_PUBKEY", None, path,
        "path of the Ed25519 public key that sync checks bundles against")
    signing_key: Path | None = setting("MIGRANTLINE_SIGNING_KEY", None, path,
        "path of the Ed25519 private key that publish signs with (central side only)")
    sync_interval_seconds: float = setting(
        "MIGRANTLINE_SYNC_INTERVAL_SECONDS", "900", decimal(0, 7 * 86400),
        "how often the service syncs content from MIGRANTLINE_CENTRAL_URL in the "
        "background (jittered; backs off while failing); 0 turns it off")
    sync_max_kbps: int = setting("MIGRANTLINE_SYNC_MAX_KBPS", "0", whole(0, 10**7),
        "most a content sync may download, in kilobits a second (a 1 Mbit/s link is 1000; "
        "500 leaves half of it to everything else); 0: no cap")
    login_max_failures: int = setting("MIGRANTLINE_LOGIN_MAX_FAILURES", "5", whole(1, 10**9),
        "failed dashboard sign-ins on one account before it is locked")
    login_ip_max_failures: int = setting("MIGRANTLINE_LOGIN_IP_MAX_FAILURES", "20", whole(1, 10**9),
        "failed dashboard sign-ins from one address before it is locked")
    login_lock_minutes: int = setting(
        "MIGRANTLINE_LOGIN_LOCK_MINUTES", "15", whole(0, MINUTES_A_YEAR),
        "how long a locked account or address waits; failures older than this are forgotten")
    operator_idle_minutes: int = setting(
        "MIGRANTLINE_OPERATOR_IDLE_MINUTES", "30", whole(1, MINUTES_A_YEAR),
        "an operator idle this long is signed out of the dashboard")
    smtp_host: str | None = setting(
        "MIGRANTLINE_SMTP_HOST", None, text,
        "the mail server that e-mails partners of their referrals; unset: no e-mail is sent")
    smtp_port: int = setting("MIGRANTLINE_SMTP_PORT", "587", whole(1, 65535),
                             "the mail server's port")
    smtp_user: str | None = setting("MIGRANTLINE_SMTP_USER", None, text,
                                    "the mail server's user name (unset: no sign-in)")
    smtp_password: str | None = setting("MIGRANTLINE_SMTP_PASSWORD", None, text,
                                        "the mail server's password")
    smtp_from: str = setting("MIGRANTLINE_SMTP_FROM", "migrantline@localhost", text,
                             "the sender address of partners' e-mails")
    smtp_starttls: bool = setting("MIGRANTLINE_SMTP_STARTTLS", "on", switch,
                                  "upgrade the mail connection with STARTTLS (off only for a "
                                  "mail server on the same machine)")
    partner_notify_timeout_seconds: float = setting(
        "MIGRANTLINE_PARTNER_NOTIFY_TIMEOUT_SECONDS", "10", decimal(0.1, 300),
        "how long one e-mail or webhook delivery to a partner may take")
    partner_notify_max_attempts: int = setting(
        "MIGRANTLINE_PARTNER_NOTIFY_MAX_ATTEMPTS", "6", whole(1, 100),
        "deliveries of a referral's notification before it is marked failed")
    partner_notify_backoff_seconds: float = setting(
        "MIGRANTLINE_PARTNER_NOTIFY_BACKOFF_SECONDS", "30", decimal(0, 86400),
        "the wait before the first retry; each next one waits twice as long")
    centre_name: str = setting(
        "MIGRANTLINE_CENTRE_NAME", "MigrantLine centre", text,
        "this centre's name on its card (`migrantline partners export`): what partner "
        "centres' operators read as \"referred from <name>\"")
    centre_country: str = setting(
        "MIGRANTLINE_CENTRE_COUNTRY", "XX", text,
        "this centre's country (ISO code) on its card")
    centre_languages: str = setting(
        "MIGRANTLINE_CENTRE_LANGUAGES", "en", text,
        "the languages this centre's advisers speak (comma-separated codes) on its card")
    referral_interval_seconds: float = setting(
        "MIGRANTLINE_REFERRAL_INTERVAL_SECONDS", "5", decimal(0.05, 3600),
        "how often the background job delivers referrals and updates to partner centres")
    referral_backoff_seconds: float = setting(
        "MIGRANTLINE_REFERRAL_BACKOFF_SECONDS", "30", decimal(0, 86400),
        "the wait before a failed delivery to a partner centre is tried again; each next "
        "wait is twice as long, up to MIGRANTLINE_REFERRAL_MAX_BACKOFF_SECONDS; never given up")
    referral_max_backoff_seconds: float = setting(
        "MIGRANTLINE_REFERRAL_MAX_BACKOFF_SECONDS", "3600", decimal(0, 7 * 86400),
        "the longest wait between two deliveries to a partner centre that is down")

    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def named(self, name: str) -> Any:
        """The typed value of the variable ``name`` (for messages that list variables)."""
        return getattr(self, attribute(name))

    def required(self, what: str, *names: str) -> list[str]:
        """The values of ``names`` as text, or a ValueError saying ``what`` needs those unset."""
        missing = [n for n in names if not self.named(n)]
        if missing:
            raise ValueError(f"{what} needs " + ", ".join(missing))
        return [str(self.named(n)) for n in names]

    def as_config(self) -> dict[str, Any]:
        """The settings as they were given, by variable name (for Flask's ``app.config``)."""
        return dict(self.raw)


Config = Settings | Mapping[str, Any]  # what reads settings takes: a test may pass a dict
SETTINGS: tuple[Setting, ...] = tuple(f.metadata["setting"] for f in fields(Settings)
                                      if "setting" in f.metadata)


def from_mapping(values: Mapping[str, Any]) -> Settings:
    """Every setting read from ``values`` (by variable name); missing ones take their default."""
    raw = {s.name: values.get(s.name, s.default) for s in SETTINGS}
    typed = {f.name: f.metadata["setting"].read(raw[f.metadata["setting"].name])
             for f in fields(Settings) if "setting" in f.metadata}
    return Settings(**typed, raw=raw)


def load(environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from the environment (after ``.env``), then test overrides."""
    if environ is None:
        from dotenv import load_dotenv  # lazy: only when reading the real environment

        load_dotenv(override=False)
        environ = os.environ
    return from_mapping({**{s.name: environ[s.name] for s in SETTINGS if s.name in environ},
                         **(overrides or {})})


def of(config: Config) -> Settings:
    """``config`` itself when already read; else read from a mapping (a test's dict, or
    Flask's ``app.config``)."""
    return config if isinstance(config, Settings) else from_mapping(config)


def secret_key(config: Config, data_dir: Path, check: bool = True) -> bytes:
    """The configured secret, or (SQLite only) one made once and kept in the data folder;
    ``check=False`` only for ``keys rotate`` (see ``privacy.secret_key.secret_key``)."""
    config = of(config)
    return _keys.secret_key(config.secret_key, data_dir, check, bool(config.database_url))


def key_warning(config: Config, data_dir: Path) -> str | None:
    """What to say at every start when the key lives in the data folder (or None)."""
    return _keys.key_warning(of(config).secret_key, data_dir)


def attribute(name: str) -> str:
    """The ``Settings`` attribute of a variable: ``MIGRANTLINE_DRAFT_MINUTES`` -> draft_minutes."""
    return name.removeprefix("MIGRANTLINE_").lower()
