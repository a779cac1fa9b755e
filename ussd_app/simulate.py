"""A phone in the terminal: dial the local service's USSD code as a handset would.

It talks HTTP to a running service exactly as Africa's Talking does (same
form fields, cumulative ``text``), so what field staff see here is what a
phone gets. Typing ``:r`` redials (a new session), ``:q`` hangs up, and
closing the input ends the call.
"""

from __future__ import annotations

import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import click

from .engine.encoding import measure

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
    from . import settings
    from .engine.loader import ContentError, read_tree

    try:
        tree = read_tree(Path(str(settings.load()["MIGRANTLINE_CONTENT_DIR"])))
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
            if auto and not inputs and "\n" + auto + ". " in "\n" + body[4:]:
                inputs.append(auto)
                click.echo(f"> {auto}   (language {lang})")
                auto = None
                continue
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
    from . import store as db

    url = base.rstrip("/") + "/sms/africastalking"
    if token:
        url += "?" + urllib.parse.urlencode({"token": token})
    store = db.open_store(data_dir)
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
            show_sms(reply["body"], reply["encoding"], reply["segments"])


def show_sms(body: str, encoding: str, segments: int) -> None:
    draw(body, f"SMS · {len(body)} chars · {encoding} · {segments} part(s)")
