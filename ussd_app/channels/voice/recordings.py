"""A complaint's recordings: from the voice provider's URL to the operator's ears.

A caller who leaves a spoken message gives us, through the provider's
callback, only a URL. The callback must answer at once and may be retried,
so ``expect`` writes one durable row per idempotency key and returns; a
background job (``fetch_due``) downloads the audio and keeps it encrypted in
the database, where backups and retention already reach. A failed download
is retried with exponential backoff and given up (``dead``) after a number of
attempts; either way the complaint's history says so, so an operator knows a
message was left even when its audio could not be had.

The download is guarded because the URL comes from outside: only https
(plain http only where an allow-list entry says so, for a local stand-in),
only the providers' hosts (``MIGRANTLINE_RECORDING_HOSTS``), bounded time
and size, and only bytes that are audio by their magic numbers: a forged
callback cannot make the service fetch an internal address or store a page.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from ussd_app import jobs, settings
from ussd_app.audio_store import AudioStore, AudioStoreError
from ussd_app.complaints.service import TEXT_PURPOSE
from ussd_app.errors import NotFound, ProviderError, TransportError
from ussd_app.parsing import MAX_ID, bounded_int
from ussd_app.privacy.protect import BytesSealer, Sealer
from ussd_app.providers import africastalking, twilio
from ussd_app.providers import transport as http
from ussd_app.providers.transport import Request, Response, Transport
from ussd_app.store import Store
from ussd_app.store import complaints as complaint_db
from ussd_app.store import voice_recordings as db

log = logging.getLogger(__name__)

PROVIDERS = ("twilio", "africastalking")
CONNECT_TIMEOUT, READ_TIMEOUT = 5.0, 30.0
TOTAL_SECONDS = 90.0  # a whole download, however slowly its bytes trickle (< LEASE)
LEASE = 120.0
MAX_BACKOFF = 6 * 3600.0
MAX_REDIRECTS = 3
BATCH = 20
RETRY_EVERY = 30.0  # how often the periodic job looks for due retries
PERMANENT_HTTP = (400, 410)  # retrying cannot help; other errors may pass (a 404 while the
# provider is still processing the recording, a 401 while credentials are being fixed)
AUDIO_HEADER = 12  # bytes the magic-number check needs
REDIRECTS = (301, 302, 303, 307, 308)
ACCEPT = {"Accept": "audio/mpeg, audio/wav, audio/ogg, audio/*"}


class NotStored(NotFound):
    """No stored audio with that id (unknown, not fetched yet, dead or erased)."""


@dataclass(frozen=True)
class AllowedHost:
    """One entry of ``MIGRANTLINE_RECORDING_HOSTS``: ``[http://]host-or-*.domain[:port]``."""

    pattern: str
    port: int | None = None
    http: bool = False

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        if scheme == "http" and not self.http:
            return False
        if self.port is not None and port != self.port:
            return False
        if self.pattern.startswith("*."):
            return host.endswith(self.pattern[1:])  # a subdomain, at any depth
        return host == self.pattern


def parse_hosts(text: str) -> tuple[AllowedHost, ...]:
    """The allow-list from its setting: comma-separated, case-insensitive."""
    hosts = []
    for entry in (e.strip().lower() for e in str(text or "").split(",")):
        if not entry:
            continue
        http = entry.startswith("http://")
        parts = urlsplit(entry if "://" in entry else f"https://{entry}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"MIGRANTLINE_RECORDING_HOSTS: bad entry {entry!r}") from exc
        if not parts.hostname:
            raise ValueError(f"MIGRANTLINE_RECORDING_HOSTS: bad entry {entry!r}")
        hosts.append(AllowedHost(parts.hostname, port, http))
    return tuple(hosts)


def sniff_audio(head: bytes) -> str | None:
    """The audio type of these first bytes, or None: what is stored must be audio."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:3] == b"ID3":
        return "audio/mpeg"
    # An MPEG audio frame: 11 sync bits, a version other than "reserved", a layer (layer
    # bits 00 would be AAC in ADTS, which neither provider sends).
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 \
            and (head[1] >> 3) & 3 != 1 and (head[1] >> 1) & 3 != 0:
        return "audio/mpeg"
    if head[:4] == b"OggS":
        return "audio/ogg"
    return None


def _seconds(value: Any) -> int | None:
    """A provider's duration as whole seconds, or None when it is missing or not a number."""
    try:
        seconds = round(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if 0 <= seconds < 10**7 else None


def wav_seconds(data: bytes) -> int | None:
    """The length of a WAV file, when the provider did not say.

    Read from the RIFF chunks by hand: the ``wave`` module refuses the
    WAVE_FORMAT_EXTENSIBLE header that sox and many recorders write.
    """
    byte_rate, position = 0, 12
    while position + 8 <= len(data):
        name, size = data[position:position + 4], int.from_bytes(
            data[position + 4:position + 8], "little")
        if name == b"fmt " and size >= 12:
            byte_rate = int.from_bytes(data[position + 16:position + 20], "little")
        elif name == b"data":
            size = min(size, len(data) - position - 8)  # a header written before the end
            return round(size / byte_rate) if byte_rate else None
        position += 8 + size + (size & 1)
    return None


class VoiceRecordings:
    """Expected recordings, their downloads and their encrypted audio."""

    def __init__(self, store: Store, secret: bytes, config: settings.Config,
                 transport: Transport | None = None, audio: AudioStore | None = None):
        self.store = store
        # A bucket every node reads: the sealed audio goes there, the row keeps its key.
        self.objects = audio if audio is not None and audio.shared else None
        self.transport = transport or http.default_transport()
        self.url_sealer = Sealer(secret, "voice recording url v1")
        self.audio_sealer = BytesSealer(secret, "voice recording audio v1")
        self.event_sealer = Sealer(secret, TEXT_PURPOSE)  # history details, as complaints'
        config = settings.of(config)
        self.hosts = parse_hosts(config.recording_hosts)
        self.max_bytes = config.recording_max_mb * 1_000_000
        self.max_attempts = config.recording_max_attempts
        self.backoff = config.recording_backoff_seconds
        sid, token = config.twilio_account_sid, config.twilio_auth_token
        self.twilio_account = (sid, token) if sid and token else (None, None)
        self._periodic: jobs.Periodic | None = None

    # -------------------------------------------------------- the provider's callback

    def expect(self, reference: str, provider: str, url: str, duration: int | None,
               key: str) -> bool:
        """Note that complaint ``reference`` has a recording at ``url``; fetch it soon.

        Durable before this returns, once per ``key`` (a provider's retry of the
        same callback adds nothing). True if this call added the row. Nothing is
        kept for an empty URL (nothing was recorded) or an unknown or erased
        complaint. The download runs in the background, never in the callback.
        """
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}, not {provider!r}")
        url = (url or "").strip()
        if not url or not key:
            return False
        complaint = complaint_db.by_reference(self.store, reference)
        if complaint is None or complaint.get("erased_at"):
            log.warning("a recording for an unknown or erased complaint was not kept")
            return False
        seconds = _seconds(duration)
        added = db.insert(self.store, {
            "key": key, "complaint_id": int(complaint["id"]), "reference": reference,
            "provider": provider, "url_sealed": self.url_sealer.seal(url),
            "duration": seconds, "created_at": time.time()})
        if added:
            jobs.once(self.fetch_due, "recordings-fetch")
        return added

    # -------------------------------------------------------- the background job

    def start(self) -> None:
        """Retry due downloads every ``RETRY_EVERY`` seconds (and pick up a crash's)."""
        if self._periodic is None:
            self._periodic = jobs.every(RETRY_EVERY, self.fetch_due, "recordings-retry",
                                        run_at_stop=False)

    def fetch_due(self, now: float | None = None) -> int:
        """Download every recording due (new, or due for a retry); return how many stored."""
        stored = 0
        self.delete_erased()
        token = secrets.token_hex(8)
        at = time.time() if now is None else now
        while True:
            claimed = db.claim(self.store, at, LEASE, token, BATCH)
            if not claimed:
                return stored
            for row in claimed:
                stored += self._fetch(row, token, at) == "stored"

    def _fetch(self, row: dict[str, Any], token: str, now: float) -> str:
        try:
            url = self.url_sealer.open(str(row["url_sealed"]))
        except Exception:
            return self._dead(row, token, now, "cannot read the sealed URL (secret key changed?)")
        try:
            data, mimetype = self._download(str(row["provider"]), url)
        except ProviderError as exc:
            return self._retry(row, token, now, exc)
        return self._store(row, token, now, data, mimetype)

    def _retry(self, row: dict[str, Any], token: str, now: float, exc: ProviderError) -> str:
        attempts = int(row["attempts"])
        if not exc.temporary or attempts >= self.max_attempts:
            return self._dead(row, token, now, f"{exc} (attempt {attempts})")
        delay = min(self.backoff * 2 ** (attempts - 1), MAX_BACKOFF)
        delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
        db.finish(self.store, int(row["id"]), token,
                  {"status": "failed", "error": str(exc), "next_attempt_at": now + delay,
                   "updated_at": time.time()})
        log.info("recording %s: attempt %s failed (%s); retry in %.0f s", row["id"],
                 attempts, exc, delay)
        return "failed"

    def _store(self, row: dict[str, Any], token: str, now: float, data: bytes,
               mimetype: str) -> str:
        duration = row.get("duration")
        if duration is None and mimetype == "audio/wav":
            duration = wav_seconds(data)
        done = time.time()
        sealed = self.audio_sealer.seal(data, str(row["key"]).encode())
        where: dict[str, Any] = {"audio_sealed": sealed}
        if self.objects is not None:  # sealed before it leaves: the bucket holds no voice
            where = {"audio_key": f"recordings/{secrets.token_hex(16)}"}
            try:
                self.objects.put(where["audio_key"], sealed)
            except AudioStoreError as exc:
                return self._retry(row, token, now, ProviderError(f"audio store: {exc}"))
        if not db.finish(self.store, int(row["id"]), token,
                         {"status": "stored", "error": None, "duration": duration,
                          "bytes": len(data), "mimetype": mimetype, "stored_at": done,
                          **where, "updated_at": done},
                         {"at": done, "actor": "system", "kind": "recording_stored"}):
            log.warning("recording %s: lease lost or complaint erased; not stored", row["id"])
            if "audio_key" in where:
                self._delete_object(where["audio_key"])
            return "lost"
        log.info("recording %s stored (%s bytes, %s)", row["id"], len(data), mimetype)
        return "stored"

    def _dead(self, row: dict[str, Any], token: str, now: float, error: str) -> str:
        done = time.time()
        db.finish(self.store, int(row["id"]), token,
                  {"status": "dead", "error": error, "updated_at": done},
                  {"at": done, "actor": "system", "kind": "recording_dead",
                   "detail_sealed": self.event_sealer.seal(error)})
        log.warning("recording %s given up: %s", row["id"], error)
        return "dead"

    # -------------------------------------------------------- the download

    def request(self, provider: str, url: str) -> tuple[str, dict[str, str]]:
        """What to GET for a provider's recording URL, and the credentials it needs."""
        if provider == "twilio":
            return twilio.recording_request(url, *self.twilio_account)
        return africastalking.recording_request(url)

    def check_url(self, url: str) -> None:
        """Raise a permanent ``ProviderError`` unless ``url`` may be fetched."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ProviderError("not a valid URL", temporary=False) from exc
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if scheme not in ("http", "https") or not host:
            raise ProviderError("only http(s) URLs are fetched", temporary=False)
        if parts.username or parts.password:
            raise ProviderError("URLs with credentials are not fetched", temporary=False)
        if not any(h.matches(scheme, host, port) for h in self.hosts):
            raise ProviderError(f"host {host} is not in MIGRANTLINE_RECORDING_HOSTS"
                                + (" (or not for plain http)" if scheme == "http" else ""),
                                temporary=False)

    def _download(self, provider: str, url: str) -> tuple[bytes, str]:
        """The audio at ``url`` and its type, within the limits; ``ProviderError`` otherwise.

        Redirects are followed by hand, each target checked like the first URL,
        and the Twilio credentials never go to another host than the first.
        """
        url, auth = self.request(provider, url)
        first_host = urlsplit(url).hostname
        deadline = time.monotonic() + TOTAL_SECONDS
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url)
            headers = ACCEPT | (auth if urlsplit(url).hostname == first_host else {})
            try:
                response = self.transport(Request("GET", url, headers,
                                                  timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                                                  stream=True))
            except TransportError as exc:
                raise ProviderError(f"{exc.reason} fetching the recording") from exc
            try:
                if response.status in REDIRECTS and response.header("Location"):
                    url = urljoin(url, response.header("Location"))
                    continue
                if response.status != 200:
                    raise ProviderError(f"HTTP {response.status}",
                                        temporary=response.status not in PERMANENT_HTTP)
                return self._read(response, deadline)
            finally:
                response.close()
        raise ProviderError("too many redirects", temporary=False)

    def _read(self, response: Response, deadline: float) -> tuple[bytes, str]:
        length = response.header("Content-Length")
        declared = bounded_int(length.strip(), 0, MAX_ID)  # else the limit is checked below
        if declared is not None and declared > self.max_bytes:
            raise ProviderError(f"recording of {length} bytes is over the limit of "
                                f"{self.max_bytes}", temporary=False)
        data = bytearray()
        try:
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > self.max_bytes:
                    raise ProviderError(f"recording is over the limit of {self.max_bytes} "
                                        "bytes", temporary=False)
                if len(data) >= AUDIO_HEADER and sniff_audio(bytes(data[:AUDIO_HEADER])) is None:
                    raise ProviderError("not audio (by its first bytes)", temporary=False)
                if time.monotonic() > deadline:
                    raise ProviderError("the download took too long")
        except TransportError as exc:
            raise ProviderError(f"{exc.reason} reading the recording") from exc
        mimetype = sniff_audio(bytes(data[:AUDIO_HEADER]))
        if mimetype is None:
            raise ProviderError("not audio (by its first bytes)", temporary=False)
        return bytes(data), mimetype

    # -------------------------------------------------------- operators

    def for_complaint(self, reference: str) -> list[dict[str, Any]]:
        """The complaint's recordings (id, status, duration, bytes, ...), oldest first."""
        complaint = complaint_db.by_reference(self.store, reference)
        return db.for_complaint(self.store, int(complaint["id"])) if complaint else []

    def get(self, recording_id: int) -> dict[str, Any] | None:
        """One recording's row without its audio (which complaint, status, size)."""
        return db.by_id(self.store, recording_id)

    def audio(self, recording_id: int) -> tuple[bytes, str]:
        """The decrypted audio and its type; ``NotStored`` if there is none to play."""
        found = db.sealed_audio(self.store, recording_id)
        if found is None:
            raise NotStored(recording_id)
        key, sealed, mimetype = found
        try:
            if isinstance(sealed, str):  # the object key of audio in the shared bucket
                sealed = self.objects.get(sealed)  # type: ignore[union-attr]
            return self.audio_sealer.open(sealed, key.encode()), mimetype  # type: ignore[arg-type]
        except Exception as exc:  # a changed secret key, or the bucket unreachable
            log.warning("recording %s cannot be read (%s)", recording_id, type(exc).__name__)
            raise NotStored(recording_id) from exc

    def delete_erased(self) -> int:
        """Delete from the bucket the audio of recordings whose complaint was erased (run
        after each erasure and with every retry round); how many objects went."""
        found = db.erased_objects(self.store) if self.objects is not None else []
        gone = [rid for rid, key in found if self._delete_object(key)]
        for recording_id in gone:
            db.object_gone(self.store, recording_id)
        return len(gone)

    def _delete_object(self, key: str) -> bool:
        try:
            self.objects.delete(key)  # type: ignore[union-attr]
            return True
        except AudioStoreError as exc:
            log.warning("erased recording audio not deleted yet (retried): %s", exc)
            return False

    def counts(self) -> dict[str, int]:
        return db.counts(self.store)

    def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.stop()
            self._periodic = None
