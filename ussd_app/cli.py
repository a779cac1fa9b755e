"""The ``migrantline`` command: run, try and check the service.

Exit status: 0 success, 1 a problem the user must fix (the message says
which), 2 a usage error (click's own).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from ussd_app import settings


class _Main(click.Group):
    """Turns a refused secret key or setting into a one-line error (exit 1), from any
    command."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (settings.SecretKeyError, settings.SettingError) as exc:
            raise click.ClickException(str(exc)) from None


WORKER_STOP_SECONDS = 8  # see serve


@click.group(cls=_Main, help="MigrantLine: safe-migration information by USSD, SMS and voice.")
def main() -> None:
    pass


@main.command(help="Run the service under the production server (granian).")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="worker processes")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256),
              help="threads per worker running the app (slow clients wait without one)")
@click.option("--demo", is_flag=True,
              help="try it on this machine: webhooks without authentication answer 127.0.0.1 "
                   "only (MIGRANTLINE_DEMO=on); refused with another --host")
@click.option("--insecure-open-webhooks", is_flag=True,
              help="serve webhooks that have no authentication configured open to anyone "
                   "(MIGRANTLINE_INSECURE_OPEN_WEBHOOKS=on); not for real callers")
def serve(host: str, port: int, workers: int, threads: int, demo: bool,
          insecure_open_webhooks: bool) -> None:
    from granian import Granian  # lazy: CLI start-up (the server only for `serve`)
    from granian.constants import HTTPModes, Interfaces  # lazy: CLI start-up

    from ussd_app.server import THREADS_ENV  # lazy: CLI start-up

    # The workers read the settings from the environment: the flags go there.
    if demo:
        os.environ["MIGRANTLINE_DEMO"] = "on"
    if insecure_open_webhooks:
        os.environ["MIGRANTLINE_INSECURE_OPEN_WEBHOOKS"] = "on"
    config = settings.load()
    auth, http1 = _refusals_before_start(config, host)
    _open_data(config)
    _say_how_it_runs(auth)
    click.echo(f"MigrantLine on http://{host}:{port} ({workers} workers); Ctrl-C stops it")
    # RSGI through ussd_app/server.py: bodies are read on the event loop under a timeout,
    # and only complete requests take one of the --threads threads (see that module).
    # HTTP/1 only: the header timeout is HTTP/1's, and providers and proxies speak it.
    os.environ[THREADS_ENV] = str(threads)  # the workers are forked: they inherit it
    Granian("ussd_app.server:app", address=host, port=port, workers=workers,
            blocking_threads=1, interface=Interfaces.RSGI, http=HTTPModes.http1,
            http1_settings=http1, websockets=False, log_access=False,
            # A worker that does not stop within this (its exit flushes buffered session
            # progress in milliseconds) is killed: a stop never hangs on one stuck thread.
            workers_kill_timeout=WORKER_STOP_SECONDS,
            working_dir=Path.cwd()).serve()


def _refusals_before_start(config: settings.Settings, host: str) -> tuple[Any, Any]:
    """Everything that stops a start, checked before anything is written: the webhooks'
    policy and the server settings (returned), then the content to serve."""
    from ussd_app.channels.webhook_auth import refusal_to_start  # lazy: CLI start-up
    from ussd_app.content.sync import served_content_dir  # lazy: CLI start-up
    from ussd_app.server import http1_settings, trusted_proxies  # lazy: CLI start-up

    auth = _webhook_auth(config, host)
    try:  # refuse a bad proxy address here, not in each worker (timeouts: settings.load)
        http1 = http1_settings(config)
        trusted_proxies(config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    served = served_content_dir(config)  # the synced mirror once MIGRANTLINE_CENTRAL_URL is set
    if config.central_url and not served.is_dir():
        raise click.ClickException(f"no content has been synced into {served.parent} yet: run "
                                   "`migrantline content sync` first")
    if _check_content(served, quiet=True):
        raise click.ClickException(
            "the content tree has errors and would not be served; run "
            "`migrantline content check` to see them, fix them, then start again")
    refusal = refusal_to_start(auth)
    if refusal:
        raise click.ClickException(refusal)
    return auth, http1


def _open_data(config: settings.Settings) -> None:
    """The data folder, owner-only, migrated once up front, and sealed with this key."""
    from ussd_app.privacy.rekey import check_fingerprint  # lazy: CLI start-up
    from ussd_app.store import open_store  # lazy: CLI start-up

    os.umask(0o077)  # what the workers create (audio, the database's WAL) is owner-only
    from ussd_app.store.core import PendingMigrations  # lazy: CLI start-up

    data_dir = config.data_dir
    if config.database_url and not config.secret_key:
        raise click.ClickException(
            "MIGRANTLINE_SECRET_KEY is required with PostgreSQL: every node must hash and seal "
            "with the same key (make one with `migrantline keys generate`, set it on every node)")
    secret = settings.secret_key(config, data_dir)  # a weak key: refused before anything
    settings.secure_data_dir(data_dir)
    try:  # SQLite: migrate once, up front; PostgreSQL: refuse if `db upgrade` was not run
        store = open_store(data_dir, url=config.database_url or "")
    except PendingMigrations as exc:
        raise click.ClickException(str(exc)) from exc
    if not check_fingerprint(store, secret):
        raise click.ClickException(
            f"MIGRANTLINE_SECRET_KEY is not the key the data in {data_dir} was sealed with "
            "(was it rotated with `migrantline keys rotate`? set the new key)")
    warning = settings.key_warning(config, data_dir)
    if warning:
        click.echo(f"warning: {warning}", err=True)


def _say_how_it_runs(auth: Any) -> None:
    from ussd_app.channels.webhook_auth import DEMO_BANNER  # lazy: CLI start-up

    if auth.demo:
        click.echo(DEMO_BANNER, err=True)
    elif auth.insecure and auth.unauthenticated():
        click.echo("WARNING: webhooks open to anyone (insecure): "
                   + ", ".join(auth.unauthenticated()), err=True)


def _webhook_auth(config: settings.Settings, host: str) -> Any:
    """The webhooks' policy ``serve`` starts with; a demo bound beyond this machine refused."""
    from ussd_app.channels.webhook_auth import WebhookAuth  # lazy: CLI start-up

    try:
        auth = WebhookAuth(config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if auth.demo and host != "127.0.0.1":
        raise click.ClickException(
            f"demo mode serves this machine only: it binds 127.0.0.1, not {host}. Drop "
            "--host, or configure authentication (MIGRANTLINE_WEBHOOK_TOKEN) and drop "
            "--demo / MIGRANTLINE_DEMO")
    return auth


@main.group(help="Check, preview and publish content.")
def content() -> None:
    pass


def _check_content(directory: Path, quiet: bool = False, verbose: bool = False) -> list[str]:
    """Print every problem (and, verbose, the SMS size of articles); return the errors."""
    from ussd_app.content.check import check_content  # lazy: CLI start-up
    from ussd_app.content.layouts import content_layouts  # lazy: CLI start-up
    from ussd_app.engine.checks import coverage  # lazy: CLI start-up
    from ussd_app.engine.loader import WARNING  # lazy: CLI start-up

    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a folder; give the content tree's path")
    checked = check_content(directory, content_layouts(settings.load()), verbose=verbose)
    tree, problems, errors = checked.tree, checked.problems, checked.errors
    if not quiet:
        for problem in problems:
            click.echo(_relative(directory, str(problem)))
        if tree is not None:
            for line in coverage(tree):  # beside the summary: stderr when there are errors
                click.echo(str(line), err=bool(errors))
        warnings = sum(1 for p in problems if p.severity == WARNING)
        summary = f"{len(errors)} error(s), {warnings} warning(s)"
        if tree is not None and not errors:
            summary += f"; version {tree.version}, {len(tree.nodes)} nodes, languages " \
                       + ", ".join(tree.language_codes)
        click.echo(summary, err=bool(errors))
    return errors


def _relative(directory: Path, line: str) -> str:
    return f"{directory}/{line}" if not line.startswith("/") else line


@content.command("check", help="Validate a content tree (default: MIGRANTLINE_CONTENT_DIR).")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--verbose", "-v", is_flag=True,
              help="also print each article's SMS segments and encoding per language")
def content_check(directory: Path | None, verbose: bool) -> None:
    directory = directory or settings.load().content_dir
    if _check_content(directory, verbose=verbose):
        sys.exit(1)


@content.command("preview", help="Write OUT.html: every screen of every language as a phone "
                 "shows it, with character counts, encoding and SMS segments.")
@click.argument("out", metavar="OUT.html", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--lang", default=None, help="only this language code (default: all)")
@click.option("--content", "directory", default=None, type=click.Path(path_type=Path),
              help="content tree (default: MIGRANTLINE_CONTENT_DIR)")
def content_preview(out: Path, lang: str | None, directory: Path | None) -> None:
    from ussd_app.channels.ussd.layout import UssdLayout  # lazy: CLI start-up
    from ussd_app.content.layouts import ussd_limits  # lazy: CLI start-up
    from ussd_app.content.preview import load, render  # lazy: CLI start-up
    from ussd_app.engine.loader import ERROR  # lazy: CLI start-up
    from ussd_app.i18n import default_catalogs  # lazy: CLI start-up

    config = settings.load()
    directory = directory or config.content_dir
    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a folder; give the content tree's path")
    layout = UssdLayout(ussd_limits(config))
    t = default_catalogs().gettext
    click.echo(f"preview: checking {directory}", err=True)
    tree, problems = load(directory, layout, t)
    if tree is None:
        errors = [p for p in problems if p.severity == ERROR]
        for problem in errors:
            click.echo(_relative(directory, str(problem)), err=True)
        raise click.ClickException(
            f"the content tree has {len(errors)} error(s), so there is nothing to preview; "
            "fix them (`migrantline content check` lists them too), then run preview again")
    if lang is not None and lang not in tree.language_codes:
        raise click.BadParameter(f"'{lang}' is not a language of this tree; it has "
                                 + ", ".join(tree.language_codes), param_hint="--lang")
    page = render(tree, layout, t, [lang] if lang else None,
                  progress=lambda line: click.echo(line, err=True))
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out} (version {tree.version}, "
               f"{'language ' + lang if lang else 'all languages'})")


@main.command(help="An interactive phone in the terminal, against the local service.")
@click.option("--channel", type=click.Choice(["ussd", "sms", "voice"]), default="ussd",
              show_default=True)
@click.option("--phone", default="+9779800000001", show_default=True,
              help="the phone number the service sees")
@click.option("--lang", default=None, help="language code to pick automatically")
@click.option("--url", default=None,
              help="service base URL (default: MIGRANTLINE_BASE_URL, http://127.0.0.1:5000)")
@click.option("--service-code", default="*384*1234#", show_default=True)
def simulate(channel: str, phone: str, lang: str | None, url: str | None,
             service_code: str) -> None:
    from ussd_app.simulate import run, run_sms, run_voice  # lazy: CLI start-up

    config = settings.load()
    base = url or config.base_url
    token = config.webhook_token
    if channel == "voice":  # as Twilio calls: signed when TWILIO_AUTH_TOKEN is set
        sys.exit(run_voice(base, phone, config.twilio_auth_token,
                           interactive=sys.stdin.isatty(),
                           public=config.base_url, token=token))
    if channel == "sms":
        sys.exit(run_sms(base, phone, token, config.data_dir, interactive=sys.stdin.isatty()))
    sys.exit(run(base, phone, lang, service_code, token, interactive=sys.stdin.isatty()))


def _add_outbox() -> None:  # the SMS outbox commands live beside the worker
    from sms_flows.outbox_cli import outbox  # lazy: CLI start-up

    main.add_command(outbox)


_add_outbox()


def _add_keys() -> None:  # generate, rotate
    from ussd_app.privacy.keys_cli import keys  # lazy: CLI start-up

    main.add_command(keys)


_add_keys()


def _add_retention() -> None:
    from ussd_app.privacy.retention_cli import retention  # lazy: CLI start-up

    main.add_command(retention)


_add_retention()


def _add_sync_commands() -> None:
    from ussd_app.content.sync_cli import (
        COMMANDS,  # lazy: CLI start-up (keygen, publish, sync, rollback)
    )

    for command in COMMANDS:
        content.add_command(command)


_add_sync_commands()


def _add_translations() -> None:  # export/import a language as a PO file
    from ussd_app.content.translate_cli import translations  # lazy: CLI start-up

    content.add_command(translations)


_add_translations()


def _add_operators() -> None:  # the dashboard's accounts live beside the dashboard
    from ussd_app.dashboard.cli import operators  # lazy: CLI start-up

    main.add_command(operators)


_add_operators()


def _add_prompts() -> None:  # the voice prompts' commands live beside the library
    from voice_prompts.cli import prompts  # lazy: CLI start-up

    main.add_command(prompts)


_add_prompts()


def _add_callbacks() -> None:  # missed-call call-backs (voice)
    from ussd_app.channels.voice.callbacks_cli import callbacks  # lazy: CLI start-up

    main.add_command(callbacks)


_add_callbacks()


def _add_db() -> None:  # the schema as a deploy step (PostgreSQL)
    from ussd_app.db_cli import db  # lazy: CLI start-up

    main.add_command(db)


_add_db()


def _add_agencies() -> None:  # official lists into the registry
    from ussd_app.agencies.cli import agencies  # lazy: CLI start-up

    main.add_command(agencies)


_add_agencies()


def _add_partners() -> None:  # partner centres abroad: cards, links
    from ussd_app.centres.cli import partners  # lazy: CLI start-up

    main.add_command(partners)


_add_partners()


if __name__ == "__main__":  # pragma: no cover
    main()
