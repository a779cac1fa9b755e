"""``migrantline agencies``: bring an official list of agencies into the registry."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from ussd_app import settings
from ussd_app.engine.problems import Problem


@click.group(help="The agency registry (content/agencies.csv).")
def agencies() -> None:
    pass


@agencies.command("import", help="Compare an official list (CSV or XLSX) with the registry "
                  "and show what would change; --apply writes it into the content tree, "
                  "which the next content publish syncs to every field office. "
                  "Without --apply nothing is written (a dry run).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", required=True, help="who published the list, e.g. 'DoFE Nepal'")
@click.option("--date", "when", required=True, help="the list's date, YYYY-MM-DD")
@click.option("--config", "config_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML mapping the list's columns, statuses and date format "
                   "(default: the registry's own column names)")
@click.option("--content", "directory", default=None, type=click.Path(path_type=Path),
              help="content tree (default: MIGRANTLINE_CONTENT_DIR)")
@click.option("--apply", "apply", is_flag=True, help="write the result (default: dry run)")
@click.option("--all", "show_all", is_flag=True, help="list every change, not the first 20")
def import_list(file: Path, source: str, when: str, config_path: Path | None,
                directory: Path | None, apply: bool, show_all: bool) -> None:
    from ussd_app.agencies import importer  # lazy: CLI start-up
    from ussd_app.engine.loader import ERROR  # lazy: CLI start-up

    try:
        day = date.fromisoformat(when)
    except ValueError:
        raise click.BadParameter(f"'{when}' is not YYYY-MM-DD", param_hint="--date") from None
    directory = directory or settings.load().content_dir
    config, problems = importer.load_config(config_path)
    if config is None:
        _problems(problems)
        sys.exit(1)
    click.echo(f"reading {file} ...", err=True)
    result = importer.plan(directory, file, file.read_bytes(), config, source.strip(), day)
    _problems(result.problems)
    if not result.ok:
        errors = sum(p.severity == ERROR for p in result.problems)
        click.echo(f"{errors} error(s): nothing was changed; fix the list or the config "
                   "and run the import again", err=True)
        sys.exit(1)
    click.echo(f"{len(result.incoming)} agencies from {source} dated {day}")
    for line in importer.report(result.changes, limit=10**9 if show_all else 20):
        click.echo(line)
    if not apply:
        click.echo("dry run: nothing was written; add --apply to write it")
        return
    failed = importer.write_registry(directory, result.result)
    if failed:
        _problems(failed)
        click.echo("nothing was changed", err=True)
        sys.exit(1)
    click.echo(f"written: {directory / importer.AGENCY_FILE} ({len(result.result)} agencies); "
               "run `migrantline content check`, then publish the content to sync it")


def _problems(problems: list[Problem]) -> None:
    for p in problems:
        click.echo(str(p), err=True)
