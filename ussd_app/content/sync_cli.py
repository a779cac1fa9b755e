"""``migrantline content keygen | publish | sync | rollback``: the central store and its mirrors.

Added to the ``content`` group by ``cli.py``. Exit status: 0 done (or already
up to date), 1 a problem to fix (the message says which), 2 a usage error
(a setting or argument missing).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from ussd_app import settings
from ussd_app.content.bundle import BundleError, load_private_key, scan
from ussd_app.content.bundle import keygen as make_keys
from ussd_app.content.bundle import publish as write_bundle
from ussd_app.content.progress import Meter, human_bytes


@click.command("keygen", help="Write a new Ed25519 key pair, signing.key and signing.pub, into "
               "DIR. The private key stays on the publishing machine; signing.pub goes to "
               "every deployment.")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def keygen(directory: Path) -> None:
    try:
        private, public = make_keys(directory)
    except BundleError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write into {directory}: {exc.strerror}") from None
    click.echo(f"wrote {private}: the private key. Keep it on the publishing machine only, "
               f"with MIGRANTLINE_SIGNING_KEY={private.resolve()}")
    click.echo(f"wrote {public}: the public key. Copy it to every deployment and set "
               "MIGRANTLINE_CENTRAL_PUBKEY to its path there")


@click.command("publish", help="Check DIR, then add a signed version of it (content, "
               "agencies.csv, audio: every file but hidden ones) to OUT, the folder the "
               "central store serves. Older versions stay.")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.argument("out", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@click.option("--key", "key_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="private key (default: MIGRANTLINE_SIGNING_KEY)")
def publish(directory: Path, out: Path, key_path: Path | None) -> None:
    from ussd_app.content.check import check_tree  # lazy: CLI start-up (engine, i18n)

    config = settings.load()
    key_path = key_path or config.signing_key
    if key_path is None:
        raise click.UsageError("publish signs what it writes and needs the private key: set "
                               "MIGRANTLINE_SIGNING_KEY or give --key (make a key pair with "
                               "`migrantline content keygen DIR`)")
    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a folder; give the content tree's path")
    if out.resolve().is_relative_to(directory.resolve()):
        raise click.UsageError(f"OUT ({out}) is inside DIR ({directory}): publish would "
                               "publish its own output; choose a folder outside the tree")
    try:
        key = load_private_key(key_path)
    except BundleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"publish: checking {directory}", err=True)
    tree, errors = check_tree(directory, config)
    if errors:
        for error in errors:
            click.echo(f"{directory}/{error}", err=True)
        raise click.ClickException(
            f"the content tree has {len(errors)} error(s) and was not published; fix them "
            "(`migrantline content check` lists them with the warnings) and publish again")
    try:
        entries = scan(directory)
        if config.audio_format == "mp3":
            entries = _compressed(entries, out)
        done = write_bundle(directory, out, key, tree.version, entries=entries)
    except BundleError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename or out}: {exc.strerror}; "
                                   "latest.json was not changed") from None
    if done.unchanged:
        click.echo(f"nothing changed since version {done.version}: {out} was left as it was")
        return
    click.echo(f"published version {done.version} (content {tree.version}) to {out}: "
               f"{done.files} files, {done.bytes / 1e6:.2f} MB; {done.new_files} new "
               f"({done.new_bytes / 1e6:.2f} MB)")


def _compressed(entries: list[Any], out: Path) -> list[Any]:
    """The tree's WAV recordings as MP3 (converted once, kept in OUT/.converted)."""
    from ussd_app.content.compress import compress_audio  # lazy: CLI start-up
    from voice_prompts.tts import missing_converter  # lazy: CLI start-up

    wavs = sum(1 for e, _ in entries
               if e.path.startswith("audio/") and e.path.lower().endswith(".wav"))
    if not wavs:
        return entries
    if missing_converter("mp3"):
        raise click.ClickException(
            f"the tree has {wavs} WAV recording(s) and MIGRANTLINE_AUDIO_FORMAT=mp3, but "
            "ffmpeg is not installed: apt-get install ffmpeg (or publish with "
            "MIGRANTLINE_AUDIO_FORMAT=wav); nothing was published")

    def said(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            click.echo(f"publish: {done}/{total} WAV recordings as MP3", err=True)

    return compress_audio(entries, out, said)


class _Line:
    """The progress line on standard error: rewritten in place on a terminal, else one
    line every half minute (a log, a cron mail)."""

    def __init__(self) -> None:
        self.meter: Any = None
        self.tty = sys.stderr.isatty()
        self.shown = 0.0

    def start(self, total_bytes: int, files: int) -> None:
        if not files:
            return
        click.echo(f"downloading {files} new file(s): {human_bytes(total_bytes)}", err=True)
        self.meter = Meter(total_bytes)
        self.shown = time.monotonic()

    def advance(self, done: int) -> None:
        if self.meter is None:
            return
        self.meter.add(done)
        now = time.monotonic()
        if now - self.shown >= (0.5 if self.tty else 30.0):
            self.shown = now
            click.echo(("\r" + self.meter.line() + "   ") if self.tty else self.meter.line(),
                       err=True, nl=not self.tty)

    def finish(self) -> None:
        if self.meter is not None and self.tty:
            click.echo("", err=True)
        self.meter = None


@click.command("sync", help="Mirror the newest signed version from MIGRANTLINE_CENTRAL_URL "
               "into the data dir and switch to it at once, after checking its signature, "
               "every file's hash and the content. On any failure the version served stays.")
@click.option("--quiet", "-q", is_flag=True, help="no progress; print only the outcome")
@click.option("--dry-run", is_flag=True, help="only say how many megabytes (and requests) a "
              "sync would download now; change nothing")
def sync_command(quiet: bool, dry_run: bool) -> None:
    from ussd_app.content.sync import sync  # lazy: CLI start-up

    result = sync(settings.load(), None if quiet or dry_run else _Line(), dry_run=dry_run)
    if result.ok and result.status == "current" and dry_run:
        click.echo(result.message + ": a sync would download nothing")
        return
    if result.ok and dry_run:
        click.echo(result.message)
        return
    if result.ok:
        figures = (f" ({result.requests} request(s), {result.bytes / 1e3:.1f} kB, "
                   f"{result.files} file(s) downloaded, {result.seconds:.1f} s)")
        click.echo(result.message + figures)
        return
    served = f"still serving version {result.version}" if result.version else \
        "no version synced yet"
    if result.code == 2:
        click.echo(f"Error: {result.message}", err=True)
        sys.exit(2)
    click.echo(f"sync {'skipped' if result.status == 'busy' else 'failed'}: {result.message}",
               err=True)
    click.echo(served, err=True)
    sys.exit(result.exit_code)


@click.command("rollback", help="Serve the previous synced version again. Sync then leaves "
               "it until a newer version is published centrally.")
def rollback_command() -> None:
    from ussd_app.content.rollback import rollback  # lazy: CLI start-up

    result = rollback(settings.load())
    if not result.ok:
        click.echo(f"rollback failed: {result.message}", err=True)
        sys.exit(result.exit_code)
    click.echo(result.message)


COMMANDS = (keygen, publish, sync_command, rollback_command)
