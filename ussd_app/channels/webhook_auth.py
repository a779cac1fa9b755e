"""Who may call the providers' webhooks: one policy per channel, computed once from settings.

Why it is here and not in ``serve``: the webhooks carry victims' numbers,
drafts and case status, and a call-back costs the office money, so the app
itself refuses a request that is not authenticated, whatever WSGI server runs
it. ``serve`` only refuses to start when a channel would answer nobody, so a
misconfiguration is seen at once rather than as 403s in the providers' logs.

Per channel (see ``CHANNELS``):

- Twilio (``/sms/twilio*``, ``/voice/twilio*``): a valid ``X-Twilio-Signature``
  when ``TWILIO_AUTH_TOKEN`` is set; else the shared ``?token=`` when
  ``MIGRANTLINE_WEBHOOK_TOKEN`` is set.
- Africa's Talking (USSD, SMS, delivery reports, voice) and Kannel: the shared
  ``?token=``. Optionally also a source-address allow-list per provider
  (``MIGRANTLINE_AT_ALLOWED_IPS``, ``MIGRANTLINE_KANNEL_ALLOWED_IPS``): the
  direct peer's address, so behind a reverse proxy it is the proxy's.
- A channel with neither answers 403 with what to configure, unless the
  operator opted out: ``MIGRANTLINE_INSECURE_OPEN_WEBHOOKS=on`` (open to all),
  or ``MIGRANTLINE_DEMO=on`` (open to this machine only: loopback peers).

Secrets are compared in constant time (``hmac.compare_digest``; Twilio's own
validator does the same). What is particular to a provider (its channels, its
allow-list setting, Twilio's signature) is in its module, ``ussd_app.providers``;
this module is the policy over all of them, and ``refused`` is how a Flask view
applies it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from flask import Response, current_app, request

from ussd_app import settings
from ussd_app.providers import africastalking, kannel, twilio

log = logging.getLogger(__name__)

# channel -> provider. The channel names are what /healthz and `serve` show.
CHANNELS: dict[str, str] = {channel: provider.NAME
                             for provider in (africastalking, twilio, kannel)
                             for channel in provider.CHANNELS}
# Twilio publishes no fixed source addresses for webhooks (its signature is the check).
ALLOW_LISTS = {provider.NAME: provider.ALLOWED_IPS for provider in (africastalking, kannel)}
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEMO_BANNER = ("DEMO MODE: webhooks without authentication are answered for this machine "
               "(127.0.0.1) only. Never use demo mode with real callers: set "
               "MIGRANTLINE_WEBHOOK_TOKEN (and TWILIO_AUTH_TOKEN) instead.")
INSECURE_WARNING = ("MIGRANTLINE_INSECURE_OPEN_WEBHOOKS is on: webhooks without "
                    "authentication ({channels}) are open to anyone who can reach this "
                    "service; they can read callers' drafts and case status and queue "
                    "call-backs. Set MIGRANTLINE_WEBHOOK_TOKEN.")
WHAT_TO_SET = ("set MIGRANTLINE_WEBHOOK_TOKEN (every provider then sends ?token=<value>; "
               "Twilio is checked by X-Twilio-Signature once TWILIO_AUTH_TOKEN is set)")


def networks(value: object, name: str) -> tuple[Network, ...]:
    """``10.0.0.0/8, 192.0.2.7``: the networks of an allow-list setting (empty: none)."""
    found = []
    for part in str(value or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            found.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{name}: {part.strip()!r} is not an address or network "
                             "(e.g. 192.0.2.0/24)") from None
    return tuple(found)


def _peer_in(peer: object, nets: tuple[Network, ...]) -> bool:
    return _address_in(str(peer or ""), nets)


@lru_cache(maxsize=256)
def _address_in(peer: str, nets: tuple[Network, ...]) -> bool:
    """Memoised: requests come from a few addresses (the gateway, the proxy)."""
    try:
        address = ipaddress.ip_address(peer.split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in net for net in nets)


class WebhookAuth:
    """The authentication of every provider webhook, and the opt-outs."""

    def __init__(self, config: settings.Config):
        config = settings.of(config)
        self.token = config.webhook_token
        self.twilio_token = config.twilio_auth_token
        self.base_url = config.base_url.rstrip("/")
        self.insecure = config.insecure_open_webhooks
        self.demo = config.demo
        self.allowed = {provider: networks(config.named(name), name)
                        for provider, name in ALLOW_LISTS.items()}

    def method(self, channel: str) -> str | None:
        """``signature``, ``token``, or None: the channel has no authentication."""
        if CHANNELS[channel] == twilio.NAME and self.twilio_token:
            return "signature"
        return "token" if self.token else None

    def unauthenticated(self) -> list[str]:
        return [channel for channel in CHANNELS if self.method(channel) is None]

    def url_token(self, channel: str) -> str | None:
        """The token to put in URLs the service gives the provider (a voice call's next step)."""
        return self.token if self.method(channel) == "token" else None

    def check(self, channel: str, environ: Mapping[str, Any],
              form: Mapping[str, str] | None = None) -> str | None:
        """None if the request may go on; else the plain-text reason for its 403."""
        peer = environ.get("REMOTE_ADDR")
        nets = self.allowed.get(CHANNELS[channel])
        if nets and not _peer_in(peer, nets):
            return ("forbidden: this address may not call this webhook "
                    f"({ALLOW_LISTS[CHANNELS[channel]]})")
        method = self.method(channel)
        query = str(environ.get("QUERY_STRING") or "")
        if method == "signature":
            return None if self._signed(environ, query, form or {}) else \
                "forbidden: X-Twilio-Signature does not match"
        if method == "token":
            given = dict(parse_qsl(query)).get("token", "")
            assert self.token is not None
            ok = hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())
            return None if ok else "forbidden: wrong or missing token"
        if self.insecure:
            return None
        if self.demo:
            if _peer_in(peer, LOOPBACK):
                return None
            return ("forbidden: demo mode answers webhooks from this machine only; "
                    + WHAT_TO_SET)
        return f"forbidden: no authentication is configured for this webhook: {WHAT_TO_SET}"

    def _signed(self, environ: Mapping[str, Any], query: str, form: Mapping[str, str]) -> bool:
        signature = str(environ.get(twilio.SIGNATURE) or "")
        if not signature or self.twilio_token is None:
            return False
        path = str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or "")
        url = self.base_url + path + (f"?{query}" if query else "")
        return twilio.signed(self.twilio_token, url, form, signature)

    # ------------------------------------------------------------ what an admin sees

    def mode(self, channel: str) -> str:
        """How /healthz describes a channel: signature, token (+ip), or its opt-out."""
        method = self.method(channel)
        if method is None:
            method = "open" if self.insecure else "loopback-only (demo)" if self.demo \
                else "refused (no authentication configured)"
        return method + ("+ip" if self.allowed.get(CHANNELS[channel]) else "")

    def health(self) -> dict[str, Any]:
        return {"webhooks": {channel: self.mode(channel) for channel in CHANNELS},
                "insecure": self.insecure and bool(self.unauthenticated()),
                "demo": self.demo}

    def log_start(self) -> None:
        """Said at every start, in every worker's log: nobody misses an open service."""
        open_channels = self.unauthenticated()
        if self.demo:
            log.warning(DEMO_BANNER)
        if open_channels and self.insecure:
            log.warning(INSECURE_WARNING.format(channels=", ".join(open_channels)))
        elif open_channels and not self.demo:
            log.error("webhooks without authentication answer 403: %s; %s",
                      ", ".join(open_channels), WHAT_TO_SET)


def refused(channel: str) -> Response | None:
    """The 403 this Flask request gets, or None to go on.

    Checked before anything is read or applied: a forged callback changes nothing.
    Twilio signs the POST fields, so they are read (and only then) for its channels.
    """
    form = request.form if CHANNELS[channel] == twilio.NAME and \
        request.method == "POST" else None
    reason = current_app.extensions["webhook_auth"].check(channel, request.environ, form)
    return Response(reason, status=403, mimetype="text/plain") if reason else None


def refusal_to_start(auth: WebhookAuth) -> str | None:
    """Why ``serve`` must not start (a channel nobody could call, and no opt-out), or None."""
    missing = auth.unauthenticated()
    if not missing or auth.insecure or auth.demo:
        return None
    return ("these webhooks have no authentication: " + ", ".join(missing) + ". To serve "
            "them, " + WHAT_TO_SET + ". To try the service on this machine only, run "
            "`migrantline serve --demo` (or `make run`); to serve them open to anyone "
            "(not for real callers), --insecure-open-webhooks or "
            "MIGRANTLINE_INSECURE_OPEN_WEBHOOKS=on.")
