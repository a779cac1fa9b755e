"""Every configuration setting, with its default and help, in one list.

Configuration comes only from the environment (and an optional ``.env``), so
a deployment is described by one file and a fresh clone runs with none. The
README's settings table is checked against this list by a test.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("MIGRANTLINE_DATA_DIR", "./var",
            "SQLite database, mirrored content, generated audio, outbox"),
    Setting("MIGRANTLINE_CONTENT_DIR", "./content", "content tree to serve"),
    Setting("MIGRANTLINE_RECORDINGS_DIR", "./voice_prompts/recordings",
            "field recordings of voice prompts (`migrantline prompts record` writes here)"),
    Setting("MIGRANTLINE_PROMPTS_RENDER", "on",
            "on: the service generates, in the background, the audio of prompts that have "
            "none yet (one process at a time); off: only `migrantline prompts render` does"),
    Setting("MIGRANTLINE_VOICE_CALLBACK", "missed",
            "missed: call back an inbound caller who hung up within 20 s without pressing a "
            "key; always: refuse every inbound call unanswered (free for the caller) and call "
            "back; off: never call back"),
    Setting("MIGRANTLINE_TTS_ONLINE", "auto",
            "auto: generate prompts with gTTS when it is installed and Google is reachable "
            "(else espeak-ng); off: espeak-ng only"),
    Setting("MIGRANTLINE_BASE_URL", "http://127.0.0.1:5000",
            "public base URL: audio links and Twilio signature checks"),
    Setting("MIGRANTLINE_SECRET_KEY", None,
            "signs cookies and derives encryption keys; made once and kept in the data dir "
            "(with a warning) when unset"),
    Setting("MIGRANTLINE_WEBHOOK_TOKEN", None,
            "when set, every Africa's Talking and Kannel callback must carry ?token=<value>"),
    Setting("MIGRANTLINE_SMS_PROVIDER", "outbox",
            "africastalking, twilio, kannel or outbox (store only)"),
    Setting("MIGRANTLINE_USSD_MAX_GSM7", "160", "characters per USSD screen in GSM-7"),
    Setting("MIGRANTLINE_USSD_MAX_UCS2", "70", "characters per USSD screen in UCS-2"),
    Setting("MIGRANTLINE_RESUME_MINUTES", "5",
            "a redial within this many minutes of a dropped USSD session offers to continue"),
    Setting("MIGRANTLINE_DRAFT_MINUTES", "60",
            "a complaint half written (USSD or SMS) can be continued this long after the "
            "caller dropped; then it is erased"),
    Setting("MIGRANTLINE_RETENTION_DAYS", "365",
            "`migrantline retention purge` erases the personal data of complaints closed "
            "longer ago than this"),
    Setting("MIGRANTLINE_SESSION_FLUSH_MS", "100",
            "how often USSD session progress is written to the database, in milliseconds"),
    Setting("MIGRANTLINE_CONTENT_POLL_SECONDS", "2",
            "how often the content folder is checked for changes (hot reload); 0 turns it off"),
    Setting("MIGRANTLINE_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Setting("MIGRANTLINE_HEADER_TIMEOUT_SECONDS", "10",
            "`serve` closes a connection whose request headers are not complete this long "
            "after it opened or after its previous answer (also ends idle keep-alives)"),
    Setting("MIGRANTLINE_BODY_TIMEOUT_SECONDS", "10",
            "`serve` answers 408 and closes the connection when a request body is not all "
            "in this long after its headers; also the most a stalled download may wait"),
    Setting("MIGRANTLINE_TRUSTED_PROXIES", None,
            "comma-separated addresses of reverse proxies (e.g. 127.0.0.1 for nginx on the "
            "same host): for requests from them `serve` takes the client's address from the "
            "last X-Forwarded-For entry"),
    Setting("MIGRANTLINE_SMS_CONVERSATION_HOURS", "24",
            "an SMS conversation (where a phone is in the menus) is kept this many hours"),
    Setting("MIGRANTLINE_SMS_MAX_SEGMENTS", "2",
            "SMS parts a menu reply may use before it pages behind 98"),
    Setting("MIGRANTLINE_SMS_ARTICLE_MAX_SEGMENTS", "6",
            "SMS parts an article asked for by SMS may use, sent concatenated"),
    Setting("MIGRANTLINE_SMS_RATE_PER_HOUR", "30",
            "inbound SMS answered per phone per hour; more are stored, not answered"),
    Setting("MIGRANTLINE_OUTBOX_MAX_ATTEMPTS", "8",
            "sending attempts before an outbox message is dead (kept, not sent)"),
    Setting("MIGRANTLINE_OUTBOX_BACKOFF_SECONDS", "30",
            "wait before the first retry; it doubles after each failed attempt (at most 6 h)"),
    Setting("MIGRANTLINE_OUTBOX_LEASE_SECONDS", "120",
            "how long a worker holds a message it is sending; a killed worker's messages are "
            "taken again after this"),
    Setting("MIGRANTLINE_OUTBOX_WORKER", "off",
            "on: `serve` also runs the outbox worker in the background of each process"),
    Setting("MIGRANTLINE_VOICE_PROVIDER", "none",
            "places missed-call call-backs: twilio, africastalking or none (stored, not placed)"),
    Setting("MIGRANTLINE_CALLBACK_PER_DAY", "3",
            "call-backs one number can get in 24 hours; more missed calls are refused"),
    Setting("MIGRANTLINE_CALLBACK_MIN_MINUTES", "10",
            "a number's missed calls within this many minutes of its last call-back are refused"),
    Setting("MIGRANTLINE_CALLBACK_MAX_ATTEMPTS", "5",
            "attempts to place a call-back before it is dead (temporary errors only)"),
    Setting("MIGRANTLINE_RECORDING_HOSTS", "api.twilio.com,*.africastalking.com",
            "hosts complaint recordings are downloaded from (https only; an entry "
            "`http://host[:port]` also allows plain http there, for a local stand-in)"),
    Setting("MIGRANTLINE_RECORDING_MAX_MB", "10",
            "a complaint recording larger than this many megabytes is refused"),
    Setting("MIGRANTLINE_RECORDING_MAX_ATTEMPTS", "8",
            "download attempts before a complaint recording is given up (dead)"),
    Setting("MIGRANTLINE_RECORDING_BACKOFF_SECONDS", "60",
            "wait before the first retry of a recording download; it doubles after each "
            "failed attempt (at most 6 h)"),
    Setting("AT_USERNAME", None, "Africa's Talking username"),
    Setting("AT_API_KEY", None, "Africa's Talking API key"),
    Setting("AT_SENDER_ID", None, "Africa's Talking sender id or short code"),
    Setting("AT_API_URL", None,
            "Africa's Talking API base URL for a stand-in (default: the SDK's own)"),
    Setting("AT_VOICE_NUMBER", None,
            "Africa's Talking voice number that call-backs are placed from (+E.164)"),
    Setting("AT_VOICE_API_URL", None,
            "Africa's Talking voice API base URL for a stand-in (default: the SDK's own)"),
    Setting("TWILIO_ACCOUNT_SID", None, "Twilio account"),
    Setting("TWILIO_AUTH_TOKEN", None,
            "Twilio auth token; when set, webhooks with a bad X-Twilio-Signature get 403"),
    Setting("TWILIO_FROM_NUMBER", None, "Twilio sending number"),
    Setting("TWILIO_API_URL", None, "Twilio API base URL for a stand-in (default: the SDK's own)"),
    Setting("KANNEL_SENDSMS_URL", None, "a local Kannel gateway's sendsms URL"),
    Setting("KANNEL_USERNAME", None, "Kannel sendsms user"),
    Setting("KANNEL_PASSWORD", None, "Kannel sendsms password"),
    Setting("KANNEL_SENDER", None,
            "sender (the short code or modem number) for Kannel sendsms; unset: global-sender"),
    Setting("MIGRANTLINE_CENTRAL_URL", None, "central content store that sync mirrors"),
    Setting("MIGRANTLINE_CENTRAL_PUBKEY", None,
            "path of the Ed25519 public key that sync checks bundles against"),
    Setting("MIGRANTLINE_SIGNING_KEY", None,
            "path of the Ed25519 private key that publish signs with (central side only)"),
    Setting("MIGRANTLINE_SYNC_INTERVAL_SECONDS", "900",
            "how often the service syncs content from MIGRANTLINE_CENTRAL_URL in the "
            "background (jittered; backs off while failing); 0 turns it off"),
    Setting("MIGRANTLINE_LOGIN_MAX_FAILURES", "5",
            "failed dashboard sign-ins on one account before it is locked"),
    Setting("MIGRANTLINE_LOGIN_IP_MAX_FAILURES", "20",
            "failed dashboard sign-ins from one address before it is locked"),
    Setting("MIGRANTLINE_LOGIN_LOCK_MINUTES", "15",
            "how long a locked account or address waits; failures older than this are forgotten"),
    Setting("MIGRANTLINE_OPERATOR_IDLE_MINUTES", "30",
            "an operator idle this long is signed out of the dashboard"),
)


def load(environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Settings from the environment (after ``.env``), then test overrides."""
    if environ is None:
        try:
            from dotenv import load_dotenv

            load_dotenv(override=False)
        except ImportError:  # pragma: no cover - python-dotenv is a dependency
            pass
        environ = os.environ
    config: dict[str, Any] = {s.name: environ.get(s.name, s.default) for s in SETTINGS}
    config.update(overrides or {})
    return config


def flag(config: Mapping[str, Any], name: str) -> bool:
    """on/off settings: on, 1, true, yes (any case) are on; anything else is off."""
    return str(config.get(name) or "").strip().lower() in ("on", "1", "true", "yes")


def integer(config: Mapping[str, Any], name: str) -> int:
    value = config.get(name)
    try:
        return int(str(value))
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from exc


def secret_key(config: Mapping[str, Any], data_dir: Path) -> bytes:
    """The configured secret, or one made once and kept beside the database."""
    configured = config.get("MIGRANTLINE_SECRET_KEY")
    if configured:
        return str(configured).encode()
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        log.warning("MIGRANTLINE_SECRET_KEY is not set: made one in %s. Set it in production "
                    "and keep it safe: it protects stored personal data.", path)
    return path.read_text().strip().encode()
