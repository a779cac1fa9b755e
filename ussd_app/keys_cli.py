"""``migrantline keys``: make a strong secret key, and rotate the one in use.

The secret key derives every key that protects the data at rest (sealed
columns, phone pseudonyms, recordings, the dashboard's cookies). ``rotate``
re-seals everything with a new key in one transaction (see ``rekey.py``).
"""

from __future__ import annotations

import secrets

import click


@click.group(help="The secret key that protects stored personal data.")
def keys() -> None:
    pass


@keys.command("generate", help="Print a new random secret key (256 bits), to set in "
              "MIGRANTLINE_SECRET_KEY.")
def generate() -> None:
    click.echo(secrets.token_urlsafe(32))
