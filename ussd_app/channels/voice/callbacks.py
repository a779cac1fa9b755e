"""Missed-call call-backs: a caller rings and hangs up, the service calls them back.

A call to the service costs a migrant airtime they may not have; a missed
call costs nothing. The voice webhooks see the missed call and call
``Callbacks.request``, which stores the request durably (idempotent by the
provider's id of the missed call) and decides it at once: the rate limits
(``MIGRANTLINE_CALLBACK_PER_DAY``, ``MIGRANTLINE_CALLBACK_MIN_MINUTES``, and
``MIGRANTLINE_CALLBACK_GLOBAL_PER_DAY`` for all numbers together), the
countries the office calls (``MIGRANTLINE_CALLBACK_COUNTRIES``; never a
premium-rate or shared-cost number) and an SMS opt-out (STOP) refuse it,
visibly (status ``refused``), without a word to the provider. Only a call
the service itself answered or rejected from its signed voice webhook is
called back (``voice_calls``): a status callback alone never is. A queued
call-back is then placed in the background through Twilio or Africa's
Talking (``MIGRANTLINE_VOICE_PROVIDER``); the answered call arrives at the
ordinary voice webhook, so the caller hears the usual menu.

Every outbound call costs the office money, and a call placed twice is a
stranger ringing twice, so placing follows the SMS outbox: a claim with a
lease, the provider's call id written the moment the provider accepts (a row
with one is never called again, even if its worker dies before finishing),
temporary errors (timeouts, 5xx, 429) retried with exponential backoff up to
``MIGRANTLINE_CALLBACK_MAX_ATTEMPTS`` and permanent ones (4xx, an invalid
number) ``failed`` at once. A call-back not placed within ``STALE_SECONDS``
is ``dead``: a phone ringing hours later is no answer to a missed call.

The one window left is a worker killed after the provider took the call and
before its id is written (a few milliseconds): that call-back is tried again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Protocol

import phonenumbers

from ussd_app import cluster, jobs, settings
from ussd_app.errors import ProviderError
from ussd_app.privacy.protect import PhoneHasher, Sealer, normalise_phone
from ussd_app.providers.africastalking import AtVoice
from ussd_app.providers.transport import Transport
from ussd_app.providers.twilio import TwilioVoice
from ussd_app.store import Store, is_opted_out
from ussd_app.store import callbacks as db
from ussd_app.store.base import DB_ERRORS

log = logging.getLogger(__name__)

PROVIDERS = ("twilio", "africastalking", "none")
MAX_BACKOFF = 3600.0
STALE_SECONDS = 2 * 3600.0
KEEP_SECONDS = 30 * 24 * 3600.0  # finished call-backs are listed this long, then forgotten


class VoiceProvider(Protocol):
    name: str

    def call(self, phone: str) -> str:
        """Place one outbound call to ``phone`` (+E.164); return the provider's call id."""
        ...


def make_voice_provider(config: settings.Config,
                        transport: Transport | None = None) -> VoiceProvider | None:
    """The provider MIGRANTLINE_VOICE_PROVIDER names; None for ``none`` (store only)."""
    config = settings.of(config)
    name = config.voice_provider

    def need(*names: str) -> list[str]:
        return config.required(f"MIGRANTLINE_VOICE_PROVIDER={name}", *names)

    if name == "none":
        return None
    if name == "twilio":
        sid, token, number, base = need("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                                        "TWILIO_FROM_NUMBER", "MIGRANTLINE_BASE_URL")
        return TwilioVoice(sid, token, number, base.rstrip("/") + "/voice/twilio",
                           config.twilio_api_url, transport=transport)
    if name == "africastalking":
        username, key, number = need("AT_USERNAME", "AT_API_KEY", "AT_VOICE_NUMBER")
        return AtVoice(username, key, number, config.at_voice_api_url, transport=transport)
    raise ValueError(f"MIGRANTLINE_VOICE_PROVIDER must be one of {', '.join(PROVIDERS)}, "
                     f"not {name!r}")


# Numbers never called back whatever the country: the office would pay a premium or share
# the cost, or reach a forwarding service or a voicemail rather than a phone (what toll
# fraud with call-backs aims at).
_NEVER_CALLED = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number",
    phonenumbers.PhoneNumberType.UAN: "a universal access number",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail number",
    phonenumbers.PhoneNumberType.PAGER: "a pager number",
}


def allowed_countries(setting: object, from_number: str | None) -> frozenset[int] | None:
    """The country calling codes call-backs may go to; None: any.

    ``MIGRANTLINE_CALLBACK_COUNTRIES`` lists them (``977,971`` or ``+977``), or
    is ``*`` for any. Unset, the default is the country of the number
    call-backs are placed from: a hotline calls back its own country's numbers
    only, never a foreign or premium one on the strength of a missed call. With
    no such number (no provider: nothing is placed) any country is stored, and
    a provider set later checks again before it calls.
    """
    text = str(setting or "").strip()
    if text == "*":
        return None
    if not text:
        if not from_number:
            return None
        try:
            return frozenset({phonenumbers.parse(str(from_number), None).country_code or 0})
        except phonenumbers.NumberParseException:
            raise ValueError(f"cannot tell the country of the call-back number {from_number!r}: "
                             "set MIGRANTLINE_CALLBACK_COUNTRIES (e.g. 977)") from None
    codes = set()
    for part in text.replace(";", ",").split(","):
        code = part.strip().lstrip("+")
        if not code:
            continue
        if not (code.isascii() and code.isdigit() and len(code) <= 3) or \
                phonenumbers.region_code_for_country_code(int(code)) == "ZZ":
            raise ValueError(f"MIGRANTLINE_CALLBACK_COUNTRIES: {part.strip()!r} is not a "
                             "country calling code (e.g. 977 for Nepal, 971 for the UAE)")
        codes.add(int(code))
    return frozenset(codes)


def not_callable(phone: str, countries: frozenset[int] | None) -> str | None:
    """Why the office must not call ``phone`` (+digits) back, or None if it may."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return "not a phone number"
    if countries is not None and number.country_code not in countries:
        return (f"country +{number.country_code} is not called back "
                "(MIGRANTLINE_CALLBACK_COUNTRIES)")
    if not phonenumbers.is_valid_number(number):
        return "not a valid number"
    return _NEVER_CALLED.get(phonenumbers.number_type(number))


def mask(phone: str) -> str:
    """+977 98******01: enough for an operator to tell two callers apart, no more."""
    digits = normalise_phone(phone)
    if len(digits) <= 6:
        return "+" + "*" * len(digits)
    return "+" + digits[:3] + " " + digits[3:5] + "*" * (len(digits) - 7) + digits[-2:]


class Callbacks:
    """Missed calls in, outbound calls out: the rate limit, the opt-out, the worker."""

    def __init__(self, store: Store, sealer: Sealer, hasher: PhoneHasher,
                 config: settings.Config, provider: VoiceProvider | None | str = "config",
                 background: bool = True, backoff: float = 30.0, lease: float = 120.0,
                 batch: int = 20):
        self.store, self.sealer, self.hasher = store, sealer, hasher
        config = settings.of(config)  # a test's partial dict: the rest at their defaults
        self.provider: VoiceProvider | None = (make_voice_provider(config)
                                               if provider == "config" else provider)  # type: ignore[assignment]
        self.per_day = config.callback_per_day
        self.global_per_day = config.callback_global_per_day
        self.countries = allowed_countries(config.callback_countries,
                                           getattr(self.provider, "from_number", None))
        self.min_seconds = 60.0 * config.callback_min_minutes
        self.max_attempts = config.callback_max_attempts
        self.background, self.backoff, self.lease, self.batch = background, backoff, lease, batch
        self._periodic: jobs.Periodic | None = None
        self._purger: jobs.Periodic | None = None
        self._placing = threading.Lock()
        self._wanted = threading.Event()

    # ------------------------------------------------------------ missed calls in

    def request(self, phone: str, provider: str, key: str, now: float | None = None) -> bool:
        """A missed call from ``phone`` seen by ``provider``; True if a call-back is queued.

        ``key`` is the provider's id of the missed call (Twilio's CallSid, AT's
        sessionId): a webhook retried with it adds nothing and gets the same
        answer. Bad input is refused quietly (False), never an exception.
        """
        now = time.time() if now is None else now
        digits = normalise_phone(str(phone or ""))
        if str(phone or "").lstrip().startswith("00"):  # the international prefix, dialled
            digits = digits[2:]
        if not 6 <= len(digits) <= 15 or not key:
            log.info("call-back: not a number that can be called back (key %.40s)", key)
            return False
        phone = "+" + digits
        phone_key = self.hasher.key(phone)
        try:
            row, added = db.request_callback(
                self.store, str(key)[:200], self.sealer.seal(phone), phone_key,
                str(provider or "")[:40], now, self.per_day, self.min_seconds,
                opted_out=is_opted_out(self.store, phone_key),
                global_per_day=self.global_per_day, refused=not_callable(phone, self.countries))
        except DB_ERRORS:  # a webhook must still answer: no call-back, nothing half-done
            log.exception("call-back: could not store the request")
            return False
        if added:
            log.info("call-back %s %s%s", row["id"], row["status"],
                     f" ({row['error']})" if row["error"] else "")
        queued = row["status"] in ("queued", "calling", "placed")
        if added and row["status"] == "queued" and self.background and self.provider:
            jobs.once(self._nudge, "callback-place")
        return queued

    @property
    def enabled(self) -> bool:
        """Whether call-backs are placed (a provider is set), not only stored."""
        return self.provider is not None

    # ------------------------------------------------------------ calls out

    def place_due(self, now: float | None = None) -> int:
        """Place every due call-back (one batch after another); return how many were placed.

        With no provider (``none``) nothing is placed: call-backs stay queued.
        """
        if self.provider is None:
            return 0
        with self._placing:  # the periodic job, the CLI and requests' nudges take turns
            placed = self._place_all(now)
        if self._wanted.is_set():  # a request that came in meanwhile found the lock taken
            self._nudge()
        return placed

    def _nudge(self) -> None:
        """Place what is due unless a worker of this process is at it (it will see it).

        A missed-call webhook starts one of these per request: under a flood they
        must not queue up behind the lock, one thread each.
        """
        self._wanted.set()
        while self._wanted.is_set() and self._placing.acquire(blocking=False):
            try:
                self._wanted.clear()
                self._place_all(None)
            finally:
                self._placing.release()

    def _place_all(self, now: float | None) -> int:
        placed = 0
        at = time.time() if now is None else now
        db.expire_callbacks(self.store, at - STALE_SECONDS, at)
        placed += db.recover_callbacks(self.store, at)
        while True:
            at = time.time() if now is None else now  # each batch's leases from its own start
            claimed = db.claim_callbacks(self.store, at, self.lease, self.batch)
            if not claimed:
                return placed
            for row in claimed:
                status = self._place(row, time.time() if now is None else now)
                placed += status == "placed"

    def _place(self, row: dict[str, Any], now: float) -> str:
        assert self.provider is not None
        callback_id, attempts = int(row["id"]), int(row["attempts"])
        try:
            phone = self.sealer.open(row["phone_sealed"])
        except Exception:
            return self._finish(row, "dead", now, "cannot read the sealed number (secret key "
                                                  "changed?)")
        if is_opted_out(self.store, row["phone_key"]):  # STOP sent since it was queued
            return self._finish(row, "refused", now, "the number sent STOP")
        refused = not_callable(phone, self.countries)  # stored before this provider was set
        if refused:
            return self._finish(row, "refused", now, refused)
        try:
            call_id = self.provider.call(phone)
        except ProviderError as exc:
            if not exc.temporary:
                return self._finish(row, "failed", now, str(exc))
            if attempts >= self.max_attempts:
                return self._finish(row, "dead", now, f"{exc} (after {attempts} attempts)")
            delay = min(self.backoff * 2 ** (attempts - 1), MAX_BACKOFF)
            delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
            return self._finish(row, "queued", now, str(exc), next_attempt_at=now + delay)
        except Exception as exc:  # a bug in a provider must not lose the call-back
            log.exception("call-back %s: provider %s failed unexpectedly", callback_id,
                          self.provider.name)
            return self._finish(row, "queued", now, type(exc).__name__,
                                next_attempt_at=now + self.backoff)
        # First the call id (from here on nobody calls this row again), then the status.
        db.record_call_id(self.store, callback_id, attempts, self.provider.name, call_id, now)
        return self._finish(row, "placed", now, None)

    def _finish(self, row: dict[str, Any], status: str, now: float, error: str | None,
                next_attempt_at: float | None = None) -> str:
        assert self.provider is not None
        if not db.finish_callback(self.store, int(row["id"]), int(row["attempts"]), status, now,
                                  error=error, next_attempt_at=next_attempt_at,
                                  placed_via=self.provider.name):
            log.warning("call-back %s was taken by another worker", row["id"])
        if status in ("failed", "dead"):
            log.warning("call-back %s %s: %s", row["id"], status, error)
        else:
            log.info("call-back %s %s%s", row["id"], status, f" ({error})" if error else "")
        return status

    # ------------------------------------------------------------ the background worker

    def start(self, interval: float = 15.0) -> None:
        """Place due call-backs every ``interval`` seconds (retries come due this way), and
        forget finished ones after ``KEEP_SECONDS`` (stored numbers are kept no longer)."""
        if self._purger is None:  # one node at a time (cluster.py)
            self._purger = cluster.every(self.store, 3600, "callback-purge", self.purge)
        # background off (MIGRANTLINE_BACKGROUND): `callbacks place --forever` places them
        if self.provider is not None and self.background and self._periodic is None:
            # a process shutting down places no call
            self._periodic = jobs.every(interval, self.place_due, "callback-worker",
                                        run_at_stop=False)

    def stop(self) -> None:
        for job in (self._periodic, self._purger):
            if job is not None:
                job.stop()
        self._periodic = self._purger = None

    def purge(self, now: float | None = None) -> int:
        """Delete finished call-backs older than ``KEEP_SECONDS``; queued ones first expire."""
        at = time.time() if now is None else now
        db.expire_callbacks(self.store, at - STALE_SECONDS, at)
        return db.purge_callbacks(self.store, at - KEEP_SECONDS)

    # ------------------------------------------------------------ what an office sees

    def masked(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Call-backs, newest first, with the number masked (never in clear)."""
        shown = []
        for row in db.callbacks(self.store, status, limit):
            try:
                number = mask(self.sealer.open(row["phone_sealed"]))
            except Exception:
                number = "(unreadable)"
            shown.append({k: v for k, v in row.items() if k not in ("phone_sealed", "phone_key")}
                         | {"number": number})
        return shown


def make_callbacks(config: settings.Config, store: Store, secret: bytes,
                   background: bool = True) -> Callbacks:
    """The call-backs of one deployment (raises ValueError on missing provider settings)."""
    return Callbacks(store, Sealer(secret), PhoneHasher(secret), config, background=background)
