"""``migrantline content translations export | import``: a language's texts as a PO file.

Added to the ``content`` group by ``cli.py``. A translator works in the tools
translators use (Poedit, Weblate); the import writes the texts back into the
YAML files line by line (see ``content/translate.py``).
"""

from __future__ import annotations

from pathlib import Path

import click

from ussd_app import settings


@click.group("translations", help="Export a language's texts to a PO file for a "
               "translator, and import the translated file back into the tree.")
def translations() -> None:
    pass


@translations.command("export", help="Write LANG's texts as a PO file (every text of "
                              "the tree, with the source language as the id and the others as "
                              "comments); texts already translated come filled in.")
@click.argument("lang")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="where to write (default: content-LANG.po in the current folder)")
@click.option("--source", default="en", show_default=True,
              help="the language the translator works from")
@click.option("--content", "directory", default=None, type=click.Path(path_type=Path),
              help="content tree (default: MIGRANTLINE_CONTENT_DIR)")
def content_translations_export(lang: str, out: Path | None, source: str,
                                directory: Path | None) -> None:
    from babel.messages.pofile import write_po  # lazy: CLI start-up

    from ussd_app.content.translate import export  # lazy: CLI start-up

    directory = directory or settings.load().content_dir
    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a folder; give the content tree's path")
    catalog = export(directory, lang, source)
    out = out or Path(f"content-{lang}.po")
    with out.open("wb") as handle:
        write_po(handle, catalog, width=76)
    todo = sum(1 for message in catalog if message.id and not message.string)
    click.echo(f"wrote {out}: {len(catalog)} texts, {todo} still to translate into {lang}")


@translations.command("import", help="Write the translations of a PO file into the "
                              "tree: new texts are added after the others, changed ones "
                              "replaced; fuzzy and empty entries are skipped.")
@click.argument("po_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lang", default=None, help="the file's language (default: from its header)")
@click.option("--dry-run", is_flag=True, help="say what would change, write nothing")
@click.option("--content", "directory", default=None, type=click.Path(path_type=Path),
              help="content tree (default: MIGRANTLINE_CONTENT_DIR)")
def content_translations_import(po_file: Path, lang: str | None, dry_run: bool,
                                directory: Path | None) -> None:
    from babel.messages.pofile import read_po  # lazy: CLI start-up

    from ussd_app.content.translate import import_catalog  # lazy: CLI start-up

    directory = directory or settings.load().content_dir
    try:
        with po_file.open("rb") as handle:
            catalog = read_po(handle)
    except Exception as error:  # babel raises several kinds on a broken file
        raise click.ClickException(f"{po_file} is not a readable PO file ({error}); "
                                   "open it in Poedit to see where") from error
    lang = lang or catalog.language_team or (str(catalog.locale) if catalog.locale else None)
    if not lang:
        raise click.ClickException(f"{po_file} does not say its language: give --lang")
    try:
        result = import_catalog(directory, catalog, lang, dry_run=dry_run)
    except (ValueError, KeyError) as error:
        raise click.ClickException(f"{error}; nothing was written") from error
    for context in result.unknown or []:
        click.echo(f"skipped {context}: no such text in {directory} (renamed or removed?)",
                   err=True)
    verb = "would change" if dry_run else "changed"
    click.echo(f"{lang}: {result.added} added, {result.changed} changed, "
               f"{result.unchanged} unchanged; {verb} {result.files} file(s)")
    if not dry_run and result.files:
        click.echo("now run `migrantline content check` to see every screen fits")
