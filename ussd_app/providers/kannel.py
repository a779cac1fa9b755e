"""Kannel (a local SMS gateway with a GSM modem): its get-url and DLR callbacks in, sendsms out.

In: the shared token, optionally ``MIGRANTLINE_KANNEL_ALLOWED_IPS``, and the
fields our ``sms-service`` get-url and ``dlr-url`` put in the query
(``../shared/protocols.md`` section 10). Out: ``GET /cgi-bin/sendsms`` with
the sendsms user, UTF-8 text (``coding=2`` for UCS-2), and a ``dlr-url``
that brings delivery reports back with our own id.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from ussd_app.errors import ProviderError, TransportError
from ussd_app.providers import transport as http
from ussd_app.providers.inbound import DeliveryReport, SmsIn
from ussd_app.providers.transport import Request, Transport

NAME = "kannel"
CHANNELS = ("sms_kannel",)
ALLOWED_IPS = "MIGRANTLINE_KANNEL_ALLOWED_IPS"

# ------------------------------------------------------------------ webhooks in

SMS_FIELDS = ("from", "text", "id")  # %p, %a, %I in the get-url
DLR_STATUS = {"1": "delivered", "2": "failed", "16": "failed", "4": "sent", "8": "sent"}


def sms(fields: Mapping[str, str]) -> SmsIn:
    return SmsIn((fields.get("id") or "").strip(), (fields.get("from") or "").strip()[:64],
                 fields.get("text") or "")


def delivery_report(fields: Mapping[str, str]) -> DeliveryReport:
    return DeliveryReport(fields.get("id", ""), DLR_STATUS.get(fields.get("type", "")))


# ------------------------------------------------------------------ sendsms out


class KannelSms:
    """Send one SMS through smsbox; the id returned (``kannel-<outbox id>``) comes back
    in the delivery report's ``id``."""

    name = NAME

    def __init__(self, sendsms_url: str, username: str, password: str,
                 sender: str | None = None, dlr_url: str | None = None,
                 timeout: tuple[float, float] | None = None,
                 transport: Transport | None = None):
        self.url, self.username, self.password = sendsms_url, username, password
        self.timeout = timeout or http.TIMEOUT
        self.sender, self.dlr_url = sender, dlr_url
        self.transport = transport or http.default_transport()

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str:
        provider_id = f"kannel-{message_id}"
        params = {"username": self.username, "password": self.password,
                  "to": "+" + to.lstrip("+"), "text": body, "charset": "UTF-8"}
        if encoding == "UCS-2":
            params["coding"] = "2"
        if self.sender:
            params["from"] = self.sender
        if self.dlr_url:  # %d: Kannel's delivery type (1 delivered, 2 failed, 8 to the SMSC)
            params["dlr-mask"] = "11"
            params["dlr-url"] = self.dlr_url + ("&" if "?" in self.dlr_url else "?") + \
                urlencode({"id": provider_id}) + "&type=%d"
        url = self.url + ("&" if "?" in self.url else "?") + urlencode(params)
        try:
            answer = self.transport(Request("GET", url, timeout=self.timeout))
        except TransportError as exc:
            raise ProviderError(f"Kannel unreachable: {exc.reason}") from None
        if answer.status in (200, 202):
            return provider_id
        temporary = answer.status >= 500 or answer.status in (403, 429)
        raise ProviderError(f"Kannel {answer.status}: {answer.text[:200]}", temporary)
