"""Referrals to partner organisations: what is shared, and telling the partner.

A referral shares the reference and the fields the referring operator chose
(``SHAREABLE``; ``DEFAULT_SHARED`` when none is chosen: enough to act on,
nothing that could endanger the migrant). Each partner is told by e-mail
(``MIGRANTLINE_SMTP_*``) and/or an HTTPS webhook. Neither carries personal
data: the reference and a link to the partner's own page of the case.

The webhook is a POST of JSON ``{"event": "referral", "reference", "case_url",
"at"}`` with ``X-MigrantLine-Timestamp: <unix seconds>`` and
``X-MigrantLine-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<timestamp>.<raw body>`` with the partner's secret (docs/administrators.md
shows how to check it). No redirect is followed and at most ``BODY_LIMIT``
bytes of the answer are read. A 2xx is delivered; anything else (a timeout, a
500, a refused connection) is retried after ``backoff * 2**(attempt-1)``
seconds, and after the last attempt the notification is ``failed``: the case
page shows each state. The job runs once per cluster (``services``).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ussd_app import settings
from ussd_app.complaints.references import show_reference
from ussd_app.engine.messages import N_
from ussd_app.mail import send_mail
from ussd_app.privacy.protect import Sealer
from ussd_app.store import Store
from ussd_app.store import partners as db

log = logging.getLogger(__name__)

SHAREABLE = ("category", "country", "contact", "description", "phone")
DEFAULT_SHARED = ("category", "country", "contact")
SECRET_PURPOSE = "partner webhook secret v1"
BODY_LIMIT = 4096
LEASE_SECONDS = 600.0
BATCH = 20
INTERVAL = 10.0
LOCAL_HOSTS = ("127.0.0.1",)  # http only here: tests and the demo
EMAIL_SUBJECT = N_("MigrantLine: case {reference} was referred to {partner}")
EMAIL_BODY = N_("A case was referred to {partner}: reference {reference}.\n\n"
                "Open it (sign in first): {url}\n\n"
                "This e-mail holds no personal data; the case page shows what was shared.")


class BadWebhookUrl(ValueError):
    """A webhook URL that is not https (or http on 127.0.0.1), or has no host."""


def check_webhook_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if not parts.hostname or parts.username or parts.password:
        raise BadWebhookUrl(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS):
        return url.strip()
    raise BadWebhookUrl(url)


def shared_fields(wanted: list[str]) -> list[str]:
    chosen = [f for f in SHAREABLE if f in wanted]
    return chosen or list(DEFAULT_SHARED)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def case_url(config: settings.Settings, complaint_id: int) -> str:
    return f"{config.base_url.rstrip('/')}/operator/referred/{complaint_id}"


class DeliveryError(Exception):
    """One delivery failed; the message says how (kept on the case, no personal data)."""


class PartnerNotifier:
    """The job: deliver due notifications, retry with backoff, give up as ``failed``."""

    def __init__(self, store: Store, secret: bytes, config: settings.Settings,
                 t: Callable[[str, str], str], clock: Callable[[], float] = time.time):
        self.store, self.config, self.t, self.clock = store, config, t, clock
        self.sealer = Sealer(secret, SECRET_PURPOSE)

    def run(self) -> dict[str, int]:
        done = {"sent": 0, "retry": 0, "failed": 0}
        now = self.clock()
        for row in db.claim_notifications(self.store, now, LEASE_SECONDS, BATCH):
            done[self._deliver(row)] += 1
        return done

    def _deliver(self, row: dict[str, Any]) -> str:
        context = db.notification_context(self.store, row)
        attempts = int(row["attempts"])
        try:
            if context is None:
                raise DeliveryError("the referral is gone")
            if row["via"] == "email":
                self._email(context)
            else:
                self._webhook(context)
        except (DeliveryError, OSError, smtplib.SMTPException, http.client.HTTPException) as exc:
            error = str(exc)[:300] or type(exc).__name__
            if attempts >= self.config.partner_notify_max_attempts:
                db.finish_notification(self.store, row["id"], attempts, "failed",
                                       self.clock(), error)
                log.warning("partner notification %s failed for good: %s", row["id"], error)
                return "failed"
            wait = self.config.partner_notify_backoff_seconds * 2 ** (attempts - 1)
            db.finish_notification(self.store, row["id"], attempts, "queued", self.clock(),
                                   error, self.clock() + wait)
            return "retry"
        db.finish_notification(self.store, row["id"], attempts, "sent", self.clock())
        return "sent"

    def _email(self, context: dict[str, Any]) -> None:
        config = self.config
        if not config.smtp_host:
            raise DeliveryError("MIGRANTLINE_SMTP_HOST is not set")
        if not context["notify_email"]:
            raise DeliveryError("the partner has no e-mail address")
        values = {"reference": show_reference(str(context["reference"])),
                  "partner": context["name"],
                  "url": case_url(config, int(context["complaint_id"]))}
        send_mail(config, context["notify_email"], self.t("en", EMAIL_SUBJECT).format(**values),
                  self.t("en", EMAIL_BODY).format(**values),
                  config.partner_notify_timeout_seconds)

    def _webhook(self, context: dict[str, Any]) -> None:
        if not context["webhook_url"] or not context["webhook_secret_sealed"]:
            raise DeliveryError("the partner has no webhook")
        try:
            url = check_webhook_url(str(context["webhook_url"]))
        except BadWebhookUrl:
            raise DeliveryError("the webhook URL is not https") from None
        secret = self.sealer.open(str(context["webhook_secret_sealed"]))
        now = self.clock()
        body = json.dumps({"event": "referral", "reference": str(context["reference"]),
                           "case_url": case_url(self.config, int(context["complaint_id"])),
                           "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))},
                          separators=(",", ":")).encode()
        timestamp = str(int(now))
        status = post(url, body, {"Content-Type": "application/json",
                                  "User-Agent": "MigrantLine",
                                  "X-MigrantLine-Timestamp": timestamp,
                                  "X-MigrantLine-Signature": signature(secret, timestamp, body)},
                      self.config.partner_notify_timeout_seconds)
        if not 200 <= status < 300:
            raise DeliveryError(f"the webhook answered {status}")


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body``; the status. No redirect followed, at most BODY_LIMIT bytes read."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port,
                                                 timeout=timeout,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port,
                                                timeout=timeout)
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        response.read(BODY_LIMIT)
        return response.status
    finally:
        connection.close()
