"""Every configuration setting, with its default and help, in one list.

Configuration comes only from the environment (and an optional ``.env``), so
a deployment is described by one file and a fresh clone runs with none. The
README's settings table is checked against this list by a test.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ussd_app.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("MIGRANTLINE_DATA_DIR", "./var",
            "SQLite database, mirrored content, generated audio, outbox"),
    Setting("MIGRANTLINE_MIN_FREE_MB", "200",
            "/healthz answers 503 when the disk holding the data folder has less free space "
            "than this many megabytes (filings would soon fail)"),
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
            "signs cookies and derives encryption keys (at least 256 bits of entropy: "
            "`migrantline keys generate`); made once and kept in the data dir (with a warning "
            "at every start) when unset"),
    Setting("MIGRANTLINE_WEBHOOK_TOKEN", None,
            "every Africa's Talking and Kannel callback (and Twilio's, while TWILIO_AUTH_TOKEN "
            "is unset) must carry ?token=<value>; without it those webhooks answer 403 and "
            "`serve` refuses to start"),
    Setting("MIGRANTLINE_AT_ALLOWED_IPS", None,
            "Africa's Talking callbacks are also refused unless they come from one of these "
            "addresses or networks (comma-separated CIDRs; the direct peer)"),
    Setting("MIGRANTLINE_KANNEL_ALLOWED_IPS", None,
            "Kannel callbacks are also refused unless they come from one of these addresses "
            "or networks (comma-separated CIDRs; the direct peer)"),
    Setting("MIGRANTLINE_INSECURE_OPEN_WEBHOOKS", "off",
            "on: webhooks with no authentication configured are open to anyone (not for real "
            "callers); `serve --insecure-open-webhooks` sets it"),
    Setting("MIGRANTLINE_DEMO", "off",
            "on: webhooks with no authentication configured answer this machine (loopback) "
            "only, and `serve` binds 127.0.0.1 only; `serve --demo` (`make run`) sets it"),
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
            "taken again after this (the provider's HTTP timeouts are kept under half of it)"),
    Setting("MIGRANTLINE_OUTBOX_KEEP_DAYS", "7",
            "the text and number of an SMS are erased this many days after it was sent (or "
            "failed); its status and size stay for the figures"),
    Setting("MIGRANTLINE_OUTBOX_MAX_AGE_MINUTES", "60",
            "with a real MIGRANTLINE_SMS_PROVIDER, /healthz answers 503 when a message has "
            "waited to be sent longer than this; 0 turns the check off"),
    Setting("MIGRANTLINE_OUTBOX_WORKER", "off",
            "on: `serve` also runs the outbox worker in the background of each process"),
    Setting("MIGRANTLINE_VOICE_PROVIDER", "none",
            "places missed-call call-backs: twilio, africastalking or none (stored, not placed)"),
    Setting("MIGRANTLINE_CALLBACK_PER_DAY", "3",
            "call-backs one number can get in 24 hours; more missed calls are refused"),
    Setting("MIGRANTLINE_CALLBACK_MIN_MINUTES", "10",
            "a number's missed calls within this many minutes of its last call-back are refused"),
    Setting("MIGRANTLINE_CALLBACK_GLOBAL_PER_DAY", "200",
            "call-backs all numbers together can get in 24 hours; more missed calls are refused"),
    Setting("MIGRANTLINE_CALLBACK_COUNTRIES", None,
            "country calling codes call-backs may go to (e.g. 977,971), or * for any; unset: "
            "the country of the number call-backs are placed from (TWILIO_FROM_NUMBER or "
            "AT_VOICE_NUMBER). Premium-rate, shared-cost and personal numbers never"),
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


KEY_HELP = ("make one with `migrantline keys generate` (or `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`) and set it in MIGRANTLINE_SECRET_KEY")
MIN_KEY_BITS = 256
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9_\-+/]+=*")


class SecretKeyError(ConfigError):
    """The secret key is unusable (too weak); the message says how to make a good one."""


def key_bits(key: str) -> float:
    """A conservative estimate of the entropy of ``key``, in bits.

    Why an estimate and not a rule on length: the key derives every encryption
    key of the data at rest, so a short or patterned one (``a``, ``aaaa…``,
    ``password…``) makes a stolen database readable by guessing. Per character
    a key is credited with what its alphabet allows (hex 4 bits, base64 6
    bits, otherwise log2 of the character classes it uses, and 2 bits for words
    separated by spaces); then no more than
    its zlib-compressed size, so repeated or patterned text counts for little.
    """
    if not key:
        return 0.0
    if _HEX.fullmatch(key):
        alphabet = 16
    elif _BASE64.fullmatch(key):
        alphabet = 64
    else:
        alphabet = sum(size for test, size in (
            (str.islower, 26), (str.isupper, 26), (str.isdigit, 10),
            (lambda c: not c.isalnum(), 33)) if any(test(c) for c in key))
    by_alphabet = len(key) * math.log2(alphabet) if alphabet > 1 else 0.0
    if any(c.isspace() for c in key):  # words: English carries about 2 bits a letter
        by_alphabet = min(by_alphabet, 2.0 * len(key))
    unique = len(set(key))
    if unique < 8:  # 'aaaa…', 'abab…': whatever the length
        by_alphabet = min(by_alphabet, len(key) * math.log2(max(unique, 1)) / 4)
    by_compression = 8.0 * max(len(zlib.compress(key.encode(), 9)) - 6, 0)
    return min(by_alphabet, by_compression)


def check_key(key: str, name: str = "MIGRANTLINE_SECRET_KEY") -> None:
    """Refuse a key of less than 256 bits of (estimated) entropy, saying how to make one."""
    bits = key_bits(key)
    if bits < MIN_KEY_BITS:
        raise SecretKeyError(
            f"{name} is too weak (about {int(bits)} bits of entropy; at least "
            f"{MIN_KEY_BITS} are needed, e.g. 43 random base64 or 64 hex characters): "
            + KEY_HELP)


def key_file(data_dir: Path) -> Path:
    return data_dir / "secret_key"


def secret_key(config: Mapping[str, Any], data_dir: Path, check: bool = True) -> bytes:
    """The configured secret, or one made once and kept beside the database.

    ``check=False`` only for ``keys rotate``, which must still open data sealed
    with an old weak key to re-seal it with a strong one.
    """
    configured = config.get("MIGRANTLINE_SECRET_KEY")
    if configured:
        key = str(configured).strip()
        if check:
            check_key(key)
        return key.encode()
    path = key_file(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if check:
        check_key(key, str(path))
    return key.encode()


def key_warning(config: Mapping[str, Any], data_dir: Path) -> str | None:
    """What to say at every start when the key lives in the data folder (or None).

    Said at every start, not only the first: a copy of the data folder (a
    backup, a lost laptop) then holds the key with the data it protects.
    """
    if config.get("MIGRANTLINE_SECRET_KEY"):
        return None
    return (f"MIGRANTLINE_SECRET_KEY is not set: the key is kept in {key_file(data_dir)}, "
            "beside the data it protects, so a copy of the data folder can be read. Set "
            "MIGRANTLINE_SECRET_KEY in the environment (`migrantline keys generate`, or keep "
            f"the present key: its value is in that file), then delete {key_file(data_dir)}.")


def secure_data_dir(data_dir: Path) -> None:
    """The data folder 0700 and everything in it owner-only (files 0600, folders 0700).

    Why at every start and not only at creation: folders made by an older
    version (0755, files 0644) are fixed too. Other local users then cannot
    read the database, its WAL and SHM, the key or generated audio.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for root, dirs, files in os.walk(data_dir):
        _chmod(Path(root), 0o700)
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                _chmod(path, 0o600)
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except OSError as exc:  # not ours (a mounted folder, say): say so, do not stop
        log.warning("cannot make %s private (%s): do it by hand (chmod %o)", path,
                    exc.strerror, mode)
