"""``migrantline partners``: pair with centres in other countries by exchanging cards.

Two offices pair without a shared server: each runs ``partners export`` and hands
the file to the other (e-mail, a USB stick), each runs ``partners import`` on the
other's file, and the two administrators read each other the fingerprint on the
phone before the first referral. Every change is audited as ``cli:<unix user>``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ussd_app import settings
from ussd_app.actor import cli_actor


def _centres() -> Any:
    from ussd_app.centres.service import Centres  # lazy: CLI start-up
    from ussd_app.complaints.service import Complaints  # lazy: CLI start-up
    from ussd_app.i18n import default_catalogs  # lazy: CLI start-up
    from ussd_app.services import _open_store  # lazy: CLI start-up

    config = settings.load()
    store, secret = _open_store(config)
    t = default_catalogs().gettext
    return Centres(store, secret, config, Complaints(store, secret, t), t)


def _when(at: Any) -> str:
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "-"


@click.group(help="Partner centres in other countries: pairing by signed cards, and the "
                  "state of each link.")
def partners() -> None:
    pass


@partners.command("export", help="Write this centre's signed card (name, country, languages, "
                  "URL, public keys) to FILE, or to standard output with '-'. The keys are "
                  "made the first time, once per deployment.")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
def export(file: Path) -> None:
    centres = _centres()
    data = centres.card_bytes()
    if str(file) == "-":
        sys.stdout.write(data.decode())
    else:
        file.write_bytes(data)
        click.echo(f"wrote {file}", err=True)
    click.echo(f"fingerprint: {centres.fingerprint()} (read it to the partner centre)",
               err=True)
    centres.audit("centre_export", "card exported", cli_actor())


@partners.command("import", help="Add (or refresh) a partner centre from its card FILE. "
                  "Check the fingerprint it prints with the partner before referring.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_card(file: Path) -> None:
    from ussd_app.centres.crypto import BadCard  # lazy: CLI start-up

    centres = _centres()
    try:
        centre, new = centres.import_card(file.read_bytes(), cli_actor())
    except BadCard as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    click.echo(f"{'added' if new else 'refreshed'} centre {centre['id']}: {centre['name']} "
               f"({centre['country']}) {centre['url']}")
    click.echo(f"fingerprint: {centre['fingerprint']}")


@partners.command("list", help="Every partner centre, with its link: last delivery, "
                  "messages waiting, the oldest waiting.")
def list_centres() -> None:
    centres = _centres()
    click.echo(f"this centre: {centres.config.centre_name} ({centres.config.centre_country}) "
               f"fingerprint {centres.fingerprint()}")
    rows = centres.links()
    if not rows:
        click.echo("no partner centre yet: `migrantline partners import CARD`")
    for row in rows:
        state = f"revoked {_when(row['revoked_at'])}" if row["revoked_at"] else "active"
        click.echo(f"{row['id']:>4}  {row['name']} ({row['country']})  {row['url']}  {state}")
        click.echo(f"      last delivery {_when(row['last_delivery'])}; waiting "
                   f"{row['queued']}; oldest waiting {_when(row['oldest_undelivered'])}; "
                   f"refused {row['refused']}"
                   + (f"; last error: {row['last_error']}" if row["last_error"] else ""))


@partners.command("revoke", help="Refuse every message signed by this centre's key from now "
                  "on, and send it nothing more. A revoked key cannot be imported again.")
@click.argument("centre_id", type=int)
def revoke(centre_id: int) -> None:
    centres = _centres()
    if not centres.revoke(centre_id, cli_actor()):
        raise click.ClickException(f"no active partner centre {centre_id} "
                                   "(`migrantline partners list`)")
    click.echo(f"revoked centre {centre_id}")
