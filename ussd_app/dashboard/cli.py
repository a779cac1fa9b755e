"""``migrantline operators``: the accounts of the dashboard, managed on the server.

Passwords are asked twice, hidden, on a terminal, or read as one line from
standard input when it is not one (``echo "$PW" | migrantline operators add
...``), so a script never puts a password on the command line.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from ussd_app import settings
from ussd_app.actor import cli_actor
from ussd_app.dashboard.accounts import ROLES, AccountError, Accounts
from ussd_app.store import operators as operators_db


def _accounts() -> Accounts:
    from ussd_app.store import open_store  # lazy: CLI start-up

    config = settings.load()
    return Accounts(open_store(config.data_dir), config)


def _audit(accounts: Accounts, action: str, operator: dict[str, Any], detail: str = "") -> None:
    """Every change made here is in the audit log too, as ``cli:<unix user>``: supervisors
    see accounts added, disabled or given a new password on the server as on the page."""
    text = f"operator {operator['id']} ({operator['email']})" + (f", {detail}" if detail else "")
    operators_db.audit(accounts.store, time.time(), None, action, None, text, "",
                       actor=cli_actor())


def _password() -> str:
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("no password on standard input: give it as one line")
    return line.rstrip("\r\n")


@click.group(help="Accounts of the operators' dashboard (/operator/).")
def operators() -> None:
    pass


@operators.command("add", help="Create an account; asks for its password twice, hidden "
                   "(or reads one line from standard input when it is not a terminal).")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="operator: queue and actions; supervisor: also export, audit log, "
                   "partners and accounts; partner: only the cases referred to its "
                   "organisation (needs --partner)")
@click.option("--name", default="", help="the name shown in histories (default: the email)")
@click.option("--partner", "partner_id", type=int, default=None,
              help="the partner organisation's id (`migrantline operators partners`)")
def add(email: str, role: str, name: str, partner_id: int | None) -> None:
    accounts = _accounts()
    try:
        operator_id = accounts.add(email, role, _password(), name, partner_id)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    _audit(accounts, "operator_add", {"id": operator_id, "email": email.strip().lower()},
           f"role {role}")
    click.echo(f"{role} {email.strip().lower()} added; sign in at "
               f"{settings.load().base_url.rstrip('/')}/operator/")


@operators.command("partners", help="The partner organisations, with their ids.")
def partners() -> None:
    rows = operators_db.partners(_accounts().store)
    if not rows:
        click.echo("no partner organisations yet: a supervisor adds them on the Partners page")
    for row in rows:
        state = "active" if row["active"] else "disabled"
        click.echo(f"{row['id']:>5} {row['name']:<40} {state}")


@operators.command("list", help="Every account, with its role and last sign-in.")
def list_() -> None:
    from ussd_app.dashboard.i18n import when  # lazy: CLI start-up

    rows = _accounts().all()
    if not rows:
        click.echo("no operators yet: add one with `migrantline operators add EMAIL --role "
                   "supervisor`")
    for row in rows:
        state = "active" if row["active"] else "disabled"
        click.echo(f"{row['email']:<36} {row['role']:<11} {state:<9} "
                   f"last sign-in {when(row['last_login_at'])}")


def _set_active(email: str, active: bool) -> None:
    accounts = _accounts()
    try:
        operator = accounts.get(email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    accounts.set_active(operator["id"], active)
    _audit(accounts, "operator_enable" if active else "operator_disable", operator)
    click.echo(f"{operator['email']} {'enabled' if active else 'disabled and signed out'}")


@operators.command("disable", help="Refuse the account's sign-in and end its sessions.")
@click.argument("email")
def disable(email: str) -> None:
    _set_active(email, False)


@operators.command("enable", help="Allow a disabled account to sign in again.")
@click.argument("email")
def enable(email: str) -> None:
    _set_active(email, True)


@operators.command("password", help="Set a new password (asked as for add); signs the "
                   "account out everywhere.")
@click.argument("email")
def password(email: str) -> None:
    accounts = _accounts()
    try:
        accounts.set_password(email, _password())
        operator = accounts.get(email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    _audit(accounts, "operator_password", operator, "signed out everywhere")
    click.echo(f"password of {email.strip().lower()} changed")
