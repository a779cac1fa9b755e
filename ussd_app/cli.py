"""The ``migrantline`` command: run, try and check the service.

Exit status: 0 success, 1 a problem the user must fix (the message says
which), 2 a usage error (click's own).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import settings


@click.group(help="MigrantLine: safe-migration information by USSD, SMS and voice.")
def main() -> None:
    pass


@main.command(help="Run the service under the production server (granian).")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="worker processes")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256),
              help="threads per worker")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    config = settings.load()
    problems = _check_content(Path(str(config["MIGRANTLINE_CONTENT_DIR"])), quiet=True)
    if problems:
        raise click.ClickException(
            "the content tree has errors and would not be served; run "
            "`migrantline content check` to see them, fix them, then start again")
    from .store import open_store

    open_store(Path(str(config["MIGRANTLINE_DATA_DIR"])).resolve())  # migrate once, up front
    settings.secret_key(config, Path(str(config["MIGRANTLINE_DATA_DIR"])).resolve())
    click.echo(f"MigrantLine on http://{host}:{port} ({workers} workers); Ctrl-C stops it")
    Granian("ussd_app.wsgi:app", address=host, port=port, workers=workers,
            blocking_threads=threads, interface=Interfaces.WSGI, log_access=False,
            working_dir=Path.cwd()).serve()


@main.group(help="Check, preview and publish content.")
def content() -> None:
    pass


def _check_content(directory: Path, quiet: bool = False) -> list[str]:
    """Print every problem; return the errors."""
    from . import ussd_limits
    from .channels.ussd import UssdLayout
    from .content import fit_problems
    from .engine.loader import ERROR, parse_tree, read_files
    from .i18n import default_catalogs

    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a folder; give the content tree's path")
    tree, problems = parse_tree(read_files(directory), root=str(directory))
    if tree is not None:
        layout = UssdLayout(ussd_limits(settings.load()))
        problems += fit_problems(tree, [layout], default_catalogs().gettext)
    errors = [str(p) for p in problems if p.severity == ERROR]
    if not quiet:
        for problem in problems:
            click.echo(_relative(directory, str(problem)))
        warnings = len(problems) - len(errors)
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
def content_check(directory: Path | None) -> None:
    directory = directory or Path(str(settings.load()["MIGRANTLINE_CONTENT_DIR"]))
    if _check_content(directory):
        sys.exit(1)


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
    from .simulate import run

    if channel != "ussd":
        raise click.ClickException(f"the {channel} channel is not built yet; use --channel ussd")
    base = url or str(settings.load()["MIGRANTLINE_BASE_URL"])
    token = os.environ.get("MIGRANTLINE_WEBHOOK_TOKEN")
    sys.exit(run(base, phone, lang, service_code, token, interactive=sys.stdin.isatty()))


if __name__ == "__main__":  # pragma: no cover
    main()
