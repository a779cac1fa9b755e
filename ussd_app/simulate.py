"""A phone in the terminal: dial the local service's USSD code as a handset would.

It talks HTTP to a running service exactly as Africa's Talking does (same
form fields, cumulative ``text``), so what field staff see here is what a
phone gets. Typing ``:r`` redials (a new session), ``:q`` hangs up, and
closing the input ends the call.
"""

from __future__ import annotations

import re
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

import click
from twilio.request_validator import RequestValidator

from ussd_app import settings
from ussd_app import store as db
from ussd_app.channels.voice.ui_messages import VOICE_UI_MESSAGES
from ussd_app.engine.encoding import measure
from ussd_app.engine.loader import ContentError, read_tree
from ussd_app.i18n import default_catalogs
from ussd_app.privacy.protect import Sealer, open_text
from voice_prompts import build_manifest
from voice_prompts.manifest import text_sha256

HELP = "Type a reply and press Enter. :r redial  :q hang up"


def post(url: str, fields: dict[str, str], timeout: float = 10) -> tuple[int, str]:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


PHONE_WIDTH = 28  # characters a basic handset shows on one line


def draw(text: str, caption: str) -> None:
    """Text about as narrow as a basic phone shows it, boxed, with a caption under it."""
    lines = [wrapped for line in text.splitlines() or [""]
             for wrapped in textwrap.wrap(line, PHONE_WIDTH) or [""]]
    width = max([len(line) for line in lines] + [PHONE_WIDTH])
    click.echo("+" + "-" * (width + 2) + "+")
    for line in lines:
        click.echo("| " + line.ljust(width) + " |")
    click.echo("+" + "-" * (width + 2) + "+")
    click.echo("  " + caption)


def show(body: str) -> None:
    """A USSD screen with its size and encoding."""
    kind, _, screen = body.partition(" ")
    encoding, length = measure(screen)
    draw(screen, f"{kind} · {length} chars · {encoding.value}")


def send(url: str, base: str, fields: dict[str, str]) -> str | None:
    """POST as the provider does; None (and a message saying what to do) on failure."""
    try:
        status, body = post(url, fields)
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"cannot reach the service at {base} ({exc}). Start it with "
                   "`migrantline serve` (or `make run`), or pass --url.", err=True)
        return None
    if status != 200:
        click.echo(f"the service answered HTTP {status}: {body[:200]}", err=True)
        return None
    return body


def language_number(lang: str) -> str | None:
    """The picker's number for a language code, read from the local content tree."""
    try:
        tree = read_tree(settings.load().content_dir)
    except ContentError:
        return None
    codes = list(tree.language_codes)
    return str(codes.index(lang) + 1) if lang in codes else None


def run(base: str, phone: str, lang: str | None, service_code: str, token: str | None,
        interactive: bool) -> int:
    url = base.rstrip("/") + "/ussd/africastalking"
    if token:
        url += "?" + urllib.parse.urlencode({"token": token})
    auto = language_number(lang) if lang else None
    if lang and auto is None:
        click.echo(f"language '{lang}' is not offered by the content; ignoring --lang", err=True)
    if interactive:
        click.echo(f"Dialling {service_code} from {phone} at {base}. {HELP}")
    while True:
        session = "SIM-" + uuid.uuid4().hex[:16]
        inputs: list[str] = []
        while True:
            fields = {"sessionId": session, "serviceCode": service_code, "phoneNumber": phone,
                      "networkCode": "99999", "text": "*".join(inputs)}
            answer = send(url, base, fields)
            if answer is None:
                return 1
            body = answer
            show(body)
            if body.startswith("END"):
                break
            if auto and all(i == "98" for i in inputs):
                key = _pick_language(body[4:], auto)
                if key is None:
                    click.echo(f"language '{lang}' is not on the language screen", err=True)
                else:
                    inputs.append(key)
                    click.echo(f"> {key}   (" + (f"language {lang})" if key == auto
                                                 else "more languages)"))
                    auto = None if key == auto else auto
                    continue
                auto = None
            line = sys.stdin.readline() if not interactive else _prompt()
            if line is None or (not interactive and line == ""):
                return 0
            reply = line.rstrip("\n")
            if reply == ":q":
                return 0
            if reply == ":r":
                break
            if not interactive:
                click.echo(f"> {reply}")
            inputs.append(reply)
        if not interactive and not sys.stdin.readable():
            return 0
        if body.startswith("END") and not interactive:
            return 0


def _pick_language(screen: str, number: str) -> str | None:
    """What to press on a page of the language list: the language's number when this page
    lists it, else 98 for the next page; None when neither is there."""
    if re.search(rf"(?m)^\u200f?{number}[.\-]? ", screen):
        return number
    if re.search(r"(?m)(^|\s)98[.\-]? ", screen):
        return "98"
    return None


def _prompt() -> str | None:
    try:
        return input("> ")
    except EOFError:
        return None


def run_sms(base: str, phone: str, token: str | None, data_dir: Path,
            interactive: bool) -> int:
    """Text the service as Africa's Talking delivers an SMS; show what the outbox will send.

    SMS replies are not in the HTTP answer: they go through the outbox, so the
    simulator reads the outbox of the same data folder (the local service's).
    """
    url = base.rstrip("/") + "/sms/africastalking"
    if token:
        url += "?" + urllib.parse.urlencode({"token": token})
    store = db.open_store(data_dir)
    # Bodies are sealed at rest: the simulator opens them with the service's key.
    sealer = Sealer(settings.secret_key(settings.load(), data_dir))
    if interactive:
        click.echo(f"Texting {base} from {phone}. Type a message (try 'help'); :q to stop.")
    while True:
        line = _prompt() if interactive else sys.stdin.readline()
        if line is None or (not interactive and line == ""):
            return 0
        text = line.rstrip("\n")
        if text == ":q":
            return 0
        if not interactive:
            click.echo(f"> {text}")
        message_id = "SIM-" + uuid.uuid4().hex[:16]
        fields = {"from": phone, "to": "5555", "text": text, "id": message_id,
                  "date": "2026-01-01 00:00:00"}
        if send(url, base, fields) is None:
            return 1
        replies = [r for r in store.outbox_by_key_prefix("sms-")
                   if r["key"].endswith(":africastalking:" + message_id)]
        if not replies:
            click.echo("  (no reply: rate limit, a repeated text, or the service uses another "
                       "data folder than MIGRANTLINE_DATA_DIR)")
        for reply in replies:
            show_sms(open_text(sealer, reply["body"]), reply["encoding"], reply["segments"])


def show_sms(body: str, encoding: str, segments: int) -> None:
    draw(body, f"SMS · {len(body)} chars · {encoding} · {segments} part(s)")


def _prompt_texts() -> dict[str, str]:
    """What each audio file says, from the local content: generated files are named by
    their text's hash, recordings by their prompt id."""
    try:
        tree = read_tree(settings.load().content_dir)
    except ContentError:
        return {}
    texts: dict[str, str] = {}
    for prompt in build_manifest(tree, default_catalogs().gettext, VOICE_UI_MESSAGES).all():
        texts[text_sha256(prompt.text)] = prompt.text
        texts[f"{prompt.lang}/{prompt.id}"] = prompt.text
    return texts


def _heard(xml: str, texts: dict[str, str]) -> tuple[str, str, str]:
    """Print what the caller hears; (what happens next, its URL, the silence URL)."""
    root = ET.fromstring(xml)
    for element in root.iter():
        if element.tag == "Play":
            url = (element.text or "").strip()
            path = urllib.parse.urlsplit(url).path
            name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            rel = path.split("/audio/", 1)[-1].split("/", 1)[-1].rsplit(".", 1)[0]
            click.echo(f"  ♪ {texts.get(name) or texts.get(rel) or path}")
        elif element.tag == "Say":
            click.echo(f"  🗣 {(element.text or '').strip()}   (provider's voice)")
    redirect = root.find("Redirect")
    silence = (redirect.text or "").strip() if redirect is not None else ""
    for tag, kind in (("Gather", "keys"), ("Record", "record"), ("Hangup", "end"),
                      ("Reject", "end")):
        found = root.find(tag)
        if found is not None:
            return kind, found.get("action", ""), silence
    return ("redirect", silence, "") if silence else ("end", "", "")


def _twilio_requests(base: str, auth_token: str | None
                     ) -> Callable[[str, dict[str, str]], urllib.request.Request]:
    """Requests as Twilio makes them: signed for the public ``url``, sent to ``base``."""

    def request_for(url: str, form: dict[str, str]) -> urllib.request.Request:
        headers = {}
        if auth_token:
            headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(
                url, form)
        parts = urllib.parse.urlsplit(url)
        target = base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        return urllib.request.Request(target, data=urllib.parse.urlencode(form).encode(),
                                      headers=headers, method="POST")

    return request_for


def _fetch_twiml(request: urllib.request.Request, base: str) -> str | None:
    """The service's answer to one webhook, or None (said why) when there is none."""
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return str(response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        click.echo(f"the service answered HTTP {exc.code}: {exc.read()[:200]!r}", err=True)
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"cannot reach the service at {base} ({exc}). Start it with "
                   "`migrantline serve` (or `make run`), or pass --url.", err=True)
    return None


def _hang_up(request: urllib.request.Request) -> None:
    """The status callback, authenticated as Twilio's would be."""
    try:
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310
    except (urllib.error.URLError, OSError):
        pass  # the call is over either way


def run_voice(base: str, phone: str, auth_token: str | None, interactive: bool,
              public: str | None = None, token: str | None = None) -> int:
    """Call the service as Twilio does: each answer is read out as the caller hears it.

    Keys are typed and sent with Enter (an empty line is a caller who presses
    nothing); at a recording, type what you would say (only a placeholder
    recording URL is sent: the service will not find audio behind it). Without
    ``auth_token`` but with the shared ``token``, the requests carry ``?token=`` as the
    service then expects of Twilio.
    """
    texts = _prompt_texts()
    sid = "CASIM" + uuid.uuid4().hex[:29]
    fields = {"CallSid": sid, "From": phone, "To": "+15005550006", "Direction": "inbound",
              "CallStatus": "in-progress", "AccountSid": "AC" + "0" * 32}
    # The service's links carry its public address (MIGRANTLINE_BASE_URL); Twilio signs what
    # it requests, so sign that, but send it to the service this terminal talks to.
    query = "?" + urllib.parse.urlencode({"token": token}) if token and not auth_token else ""
    url = (public or base).rstrip("/") + "/voice/twilio" + query
    if interactive:
        click.echo(f"Calling {base} from {phone}. Type keys then Enter; Enter alone is "
                   "silence; :q hangs up.")
    extra: dict[str, str] = {}
    request_for = _twilio_requests(base, auth_token)
    while True:
        xml = _fetch_twiml(request_for(url, {**fields, **extra}), base)
        if xml is None:
            return 1
        kind, action, silence = _heard(xml, texts)
        extra = {}
        if kind == "end":
            click.echo("  (the call ends)")
            return 0
        if kind == "redirect":
            url = action
            continue
        line = _prompt() if interactive else sys.stdin.readline()
        if line is None or (not interactive and line == "") or line.strip() == ":q":
            status = {**fields, "CallStatus": "completed", "CallDuration": "30"}
            _hang_up(request_for((public or base).rstrip("/") + "/voice/twilio/status" + query,
                                 status))
            return 0
        keys = line.strip()
        if not interactive:
            click.echo(f"> {keys}")
        if kind == "record" and keys:
            url, extra = action, {"RecordingUrl": "https://api.twilio.com/simulated/" + sid,
                                  "RecordingDuration": str(max(1, len(keys) // 12))}
        elif keys:
            url, extra = action, {"Digits": keys}
        else:
            url = silence
