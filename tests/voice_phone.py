"""A caller on the voice line, as Twilio or Africa's Talking sends their webhooks.

It keeps what the provider keeps between requests (the action URL of the
last Gather or Record), signs Twilio requests when the app has an auth
token, and reads the XML answers back into what the caller would hear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from flask.testing import FlaskClient

# The numbers and ids of tests.conftest's Phone: one counter, so no two test phones in a
# process share a number (each one's erasure would take the other's data).
from tests.conftest import _ids


@dataclass
class Heard:
    """One answer: what plays, what is said, and what the provider does next."""

    xml: str
    plays: list[str] = field(default_factory=list)
    says: list[str] = field(default_factory=list)
    action: str = ""  # where keys (or a recording) go next
    kind: str = ""  # gather, record, hangup, reject, redirect, none
    redirect: str = ""
    timeout: str = ""
    max_length: str = ""

    @property
    def ended(self) -> bool:
        return self.kind in ("hangup", "reject", "none")


def parse(xml: str, provider: str) -> Heard:
    root = ET.fromstring(xml)
    heard = Heard(xml)
    for element in root.iter():
        if element.tag == "Play":
            heard.plays.append(element.get("url") or (element.text or "").strip())
        elif element.tag == "Say":
            heard.says.append((element.text or "").strip())
    gather = root.find("Gather") if provider == "twilio" else root.find("GetDigits")
    record = root.find("Record")
    redirect = root.find("Redirect")
    if redirect is not None:
        heard.redirect = (redirect.text or "").strip()
    if gather is not None:
        heard.kind = "gather"
        heard.action = gather.get("action") or gather.get("callbackUrl") or ""
        heard.timeout = gather.get("timeout", "")
    elif record is not None:
        heard.kind = "record"
        heard.action = record.get("action") or record.get("callbackUrl") or ""
        heard.max_length = record.get("maxLength", "")
    elif root.find("Hangup") is not None:
        heard.kind = "hangup"
    elif root.find("Reject") is not None:
        heard.kind = "reject"
    elif redirect is not None:
        heard.kind = "redirect"
    else:
        heard.kind = "none"
    return heard


class VoiceCaller:
    def __init__(self, client: FlaskClient, provider: str = "twilio",
                 number: str | None = None, auth_token: str | None = None,
                 base_url: str = "http://127.0.0.1:5000", direction: str = "inbound",
                 token: str | None = None):
        n = next(_ids)
        self.client, self.provider, self.auth_token = client, provider, auth_token
        self.base_url, self.direction = base_url, direction
        self.number = number or f"+97798{n:08d}"
        self.call_id = (f"CA{n:032d}" if provider == "twilio" else f"ATVId_{n:08d}")
        self.last: Heard | None = None
        self.path = "/voice/twilio" if provider == "twilio" else "/voice/africastalking"
        if token:
            self.path += f"?token={token}"

    # ------------------------------------------------------------ requests

    def fields(self, **extra: str) -> dict[str, str]:
        if self.provider == "twilio":
            base = {"CallSid": self.call_id, "AccountSid": "AC" + "0" * 32,
                    "From": self.number, "To": "+15005550006", "CallStatus": "in-progress",
                    "Direction": self.direction, "ApiVersion": "2010-04-01"}
            if self.direction != "inbound":
                base.update({"From": "+15005550006", "To": self.number})
        else:
            base = {"isActive": "1", "sessionId": self.call_id, "direction": self.direction,
                    "callerNumber": self.number, "destinationNumber": "+254711082000",
                    "callSessionState": "Active"}
            if self.direction != "inbound":
                base.update({"callerNumber": "+254711082000", "destinationNumber": self.number})
        base.update(extra)
        return base

    def post(self, url: str, fields: dict[str, str], expect: int = 200) -> Heard:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {}
        if self.provider == "twilio" and self.auth_token:
            from twilio.request_validator import RequestValidator

            full = self.base_url.rstrip("/") + path
            headers["X-Twilio-Signature"] = RequestValidator(
                self.auth_token).compute_signature(full, fields)
        response = self.client.post(path, data=fields, headers=headers)
        assert response.status_code == expect, response.get_data(as_text=True)
        if expect != 200:
            return Heard(response.get_data(as_text=True))
        assert response.mimetype in ("text/xml", "application/xml")
        heard = parse(response.get_data(as_text=True), self.provider)
        self.last = heard
        return heard

    def dial(self) -> Heard:
        return self.post(self.path, self.fields())

    def press(self, digits: str) -> Heard:
        assert self.last is not None and self.last.kind == "gather", self.last
        key = "Digits" if self.provider == "twilio" else "dtmfDigits"
        return self.post(self.last.action, self.fields(**{key: digits}))

    def keys(self, *presses: str) -> Heard:
        heard = self.last
        for digits in presses:
            heard = self.press(digits)
        assert heard is not None
        return heard

    def silent(self) -> Heard:
        """Nothing pressed: the provider falls through to the Redirect after the Gather."""
        assert self.last is not None and self.last.redirect
        return self.post(self.last.redirect, self.fields())

    def wait_out(self, limit: int = 5) -> Heard:
        """Follow "one moment" redirects (a piece being rendered) as the provider would."""
        heard = self.last
        assert heard is not None
        for _ in range(limit):
            if heard.kind != "redirect":
                return heard
            heard = self.post(heard.redirect, self.fields())
        return heard

    def speak(self, recording_url: str, seconds: int = 12, hung_up: bool = False) -> Heard:
        """Answer a Record: the provider posts the recording's URL to the action."""
        assert self.last is not None and self.last.kind == "record", self.last
        if self.provider == "twilio":
            extra = {"RecordingUrl": recording_url, "RecordingDuration": str(seconds),
                     "RecordingSid": "RE" + "1" * 32, "Digits": "hangup" if hung_up else "#"}
            if hung_up:
                extra["CallStatus"] = "completed"
            return self.post(self.last.action, self.fields(**extra))
        if hung_up:
            return self.post(self.path, self.fields(isActive="0", recordingUrl=recording_url,
                                                    durationInSeconds="40"))
        return self.post(self.last.action, self.fields(recordingUrl=recording_url))

    def hang_up(self, duration: int = 30) -> None:
        if self.provider == "twilio":
            fields = self.fields(CallStatus="completed", CallDuration=str(duration))
            response = self.client.post("/voice/twilio/status", data=fields,
                                        headers=self._sign("/voice/twilio/status", fields))
        else:
            fields = self.fields(isActive="0", durationInSeconds=str(duration),
                                 currencyCode="KES", amount="0.5",
                                 callSessionState="Completed")
            response = self.client.post(self.path, data=fields)
        assert response.status_code == 200, response.get_data(as_text=True)

    def _sign(self, path: str, fields: dict[str, str]) -> dict[str, str]:
        if self.provider != "twilio" or not self.auth_token:
            return {}
        from twilio.request_validator import RequestValidator

        return {"X-Twilio-Signature": RequestValidator(self.auth_token).compute_signature(
            self.base_url.rstrip("/") + path, fields)}


def wav_info(data: bytes) -> dict[str, int]:
    """A WAV's fmt chunk and its audio length, read here independently of the app
    (Python's ``wave`` reads PCM only, and the prompts are u-law)."""
    import struct

    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:12]
    info: dict[str, int] = {}
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8:pos + 24])
            info.update(format=fmt, channels=channels, rate=rate, bits=bits)
        elif chunk == b"data":
            info["frames"] = min(size, len(data) - pos - 8) * 8 // max(info["bits"], 1)
            break
        pos += 8 + size + (size & 1)
    return info
