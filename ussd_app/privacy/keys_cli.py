"""``migrantline keys``: make a strong secret key, and rotate the one in use.

The secret key derives every key that protects the data at rest (sealed
columns, phone pseudonyms, recordings, the dashboard's cookies). ``rotate``
re-seals everything with a new key in one transaction (see ``rekey.py``).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

import click

from ussd_app import settings


@click.group(help="The secret key that protects stored personal data.")
def keys() -> None:
    pass


@keys.command("generate", help="Print a new random secret key (256 bits), to set in "
              "MIGRANTLINE_SECRET_KEY.")
def generate() -> None:
    click.echo(secrets.token_urlsafe(32))


@keys.command("rotate", help="Re-seal every stored secret with a new key, in one "
              "transaction; stop the service first. Prints the new key (unless given on "
              "standard input with --new-key-stdin): set it in MIGRANTLINE_SECRET_KEY.")
@click.option("--new-key-stdin", is_flag=True,
              help="read the new key from standard input (default: make one)")
@click.option("--yes", is_flag=True, help="do not ask whether the service is stopped")
def rotate(new_key_stdin: bool, yes: bool) -> None:
    from ussd_app.actor import cli_actor  # lazy: CLI start-up
    from ussd_app.privacy import rekey  # lazy: CLI start-up
    from ussd_app.store import open_store  # lazy: CLI start-up
    from ussd_app.store import operators as operators_db  # lazy: CLI start-up

    config = settings.load()
    data_dir = config.data_dir
    from_file = not config.secret_key
    old = settings.secret_key(config, data_dir, check=False)  # a weak old key: rotate it away
    if new_key_stdin:
        new = sys.stdin.readline().strip()
        settings.check_key(new, "the new key")
    else:
        new = secrets.token_urlsafe(32)
    if new.encode() == old:
        raise click.ClickException("the new key is the key in use: give another one")
    store = open_store(data_dir)
    if not rekey.check_fingerprint(store, old):
        raise click.ClickException(
            f"MIGRANTLINE_SECRET_KEY is not the key the data in {data_dir} was sealed with; "
            "set the key in use, then rotate")
    if not yes:
        click.confirm("Every MigrantLine process using this data folder (serve, outbox "
                      "workers) must be stopped first: they still hold the old key. "
                      "Stopped, and rotate now?", abort=True)
    # The new key is kept before the data depends on it: printed (or, for a key kept in the
    # data folder, written beside the old one) first, so no crash can leave data sealed
    # with a key nobody has.
    pending = settings.key_file(data_dir).with_suffix(".new")
    if from_file:
        _write_key_file(pending, new)
    if not new_key_stdin:
        click.echo("New key (set MIGRANTLINE_SECRET_KEY to it, in place of the old one, "
                   "before starting the service again):")
        click.echo(new)
    started = time.monotonic()
    try:
        counts = rekey.rotate(store, old, new.encode(), progress=click.echo)
    except rekey.Unreadable as exc:
        pending.unlink(missing_ok=True)
        raise click.ClickException(f"{exc}; nothing was changed, the old key stays in use"
                                   ) from None
    if from_file:
        os.replace(pending, settings.key_file(data_dir))
    operators_db.audit(store, time.time(), None, "keys_rotate", None,
                       f"{sum(counts.values())} values re-sealed or re-keyed", "",
                       actor=cli_actor())
    store.close()
    click.echo(f"done in {time.monotonic() - started:.1f} s: the old key opens nothing "
               "stored any more")
    if from_file:
        click.echo(f"The new key is in {settings.key_file(data_dir)}, where the old one was. "
                   "Better: set MIGRANTLINE_SECRET_KEY to it in the service's environment and "
                   "delete that file, so a copy of the data folder cannot be read.")
    else:
        click.echo("Set MIGRANTLINE_SECRET_KEY to the new key before starting the service; "
                   "started with the old one, it refuses to start.")


def _write_key_file(path: Path, key: str) -> None:
    """Replace the key file atomically (owner-only): a crash leaves the old or the new."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
