"""``migrantline prompts``: what to record, what is recorded, and rendering the rest.

Exit status: 0 done, 1 a problem to fix (the message says what to do next).
"""

from __future__ import annotations

import csv
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import click

from ussd_app import settings
from voice_prompts import tts
from voice_prompts.tts import TtsError

WORKERS = 3  # espeak-ng is a subprocess: a few at once use the 2 cores without thrashing


def _load() -> tuple[Any, Any, Any]:
    """(library, tree, translate) for the served content, as the service builds them."""
    from ussd_app.channels.voice.prompts import prompt_library  # lazy: CLI start-up
    from ussd_app.content.sync import served_content_dir  # lazy: CLI start-up
    from ussd_app.engine.loader import ContentError, read_tree  # lazy: CLI start-up
    from ussd_app.i18n import default_catalogs  # lazy: CLI start-up

    config = settings.load()
    directory = served_content_dir(config)
    try:
        tree = read_tree(directory)
    except ContentError as exc:
        raise click.ClickException(
            f"the content tree in {directory} has errors ({len(exc.problems)}); run "
            "`migrantline content check`, fix them, then run this again") from None
    return prompt_library(config), tree, default_catalogs().gettext


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 1_000_000 else f"{n / 1000:.0f} kB"


@click.group(help="Voice prompts: what to record, what is recorded, generating the rest.")
def prompts() -> None:
    pass


@prompts.command("status", help="Per language: prompts recorded, stale (re-record), "
                 "generated, missing, their audio bytes, and where its voice comes from "
                 "(recording, espeak-ng, gTTS, provider or none).")
def status() -> None:
    library, tree, t = _load()
    matrix = library.status(tree, t)
    from ussd_app.channels.voice.reply import at_says, twilio_says  # lazy: CLI start-up

    def says(code: str) -> bool:
        return twilio_says(code) or at_says(code)

    click.echo(f"content version {tree.version}")
    click.echo(f"{'lang':<6}{'recorded':>9}{'stale':>7}{'generated':>10}{'missing':>9}"
               f"{'total':>7}{'audio':>10}  voice")
    totals = dict.fromkeys(("recorded", "stale", "generated", "missing", "total", "bytes"), 0)
    voiceless = []
    for lang, row in matrix.items():
        source = library.voice_source(tree, t, lang, says)
        if source == "none":
            voiceless.append(lang)
        click.echo(f"{lang:<6}{row['recorded']:>9}{row['stale']:>7}{row['generated']:>10}"
                   f"{row['missing']:>9}{row['total']:>7}{_size(row['bytes']):>10}  {source}")
        for key in totals:
            totals[key] += row[key]
    click.echo(f"{'all':<6}{totals['recorded']:>9}{totals['stale']:>7}{totals['generated']:>10}"
               f"{totals['missing']:>9}{totals['total']:>7}{_size(totals['bytes']):>10}")
    if totals["missing"]:
        click.echo("missing prompts are spoken by the provider's voice or in the fallback "
                   "language: run `migrantline prompts render`")
    if voiceless:
        click.echo(f"no voice of any kind for {', '.join(voiceless)}: its callers hear "
                   "\"sorry, there is no voice yet\" and the nearest language's key; record "
                   "its prompts (`migrantline prompts record`, docs/voice-prompts.md) or "
                   "run `migrantline prompts render` online with gTTS")
    if totals["stale"]:
        click.echo("stale recordings are of an older text and are not played: "
                   "`migrantline prompts manifest OUT.csv` lists them; re-record them")


@prompts.command("render", help="Generate audio (espeak-ng, or gTTS when online) for every "
                 "prompt that has no current recording and no generated file yet.")
@click.option("--lang", default=None, help="only this language code (default: all)")
def render(lang: str | None) -> None:
    missing = tts.missing_tools()
    converter = tts.missing_converter(settings.load().audio_format)
    if converter:
        missing.append(converter)
    if missing:
        raise click.ClickException(
            f"{' and '.join(missing)} not installed: run `apt-get install espeak-ng sox "
            "libsox-fmt-mp3 ffmpeg`, then `migrantline prompts render` again")
    library, tree, t = _load()
    manifest = library.manifest(tree, t)
    if lang is not None and lang not in manifest.prompts:
        raise click.BadParameter(f"'{lang}' is not a language of this tree; it has "
                                 + ", ".join(manifest.languages), param_hint="--lang")
    todo, seen = [], set()
    wanted = f".{library.audio_format}"
    for prompt in manifest.all(lang):  # one render per distinct text (a title is often a label)
        state = library.state(prompt)
        # a recording is converted for its own id; generated audio is one per text
        once = (prompt.lang, prompt.id if state.status == "recorded" else prompt.sha256)
        if once in seen or (state.path is not None and state.path.suffix == wanted):
            continue
        seen.add(once)
        todo.append(prompt)
    done: dict[str, list[float]] = {}
    failed: list[str] = []
    start = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool, click.progressbar(
            length=len(todo), label="rendering", file=sys.stderr) as bar:
        futures = {pool.submit(_timed, _render, library, p): p for p in todo}
        for future in as_completed(futures):
            prompt = futures[future]
            try:
                seconds = future.result()
                done.setdefault(prompt.lang, []).append(seconds)
            except tts.TtsError as exc:
                failed.append(f"{prompt.lang} {prompt.id}: {exc}")
            bar.update(1)
    elapsed = time.monotonic() - start
    matrix = library.status(tree, t)
    for code, row in matrix.items():
        if lang is None or code == lang:
            click.echo(f"{code}: {len(done.get(code, []))} rendered now, {row['generated']} "
                       f"generated, {row['recorded']} recorded, {row['missing']} missing; "
                       f"audio {_size(row['bytes'])}")
    click.echo(f"rendered {sum(len(v) for v in done.values())} prompt(s) in {elapsed:.1f} s")
    for line in failed[:20]:
        click.echo(f"failed: {line}", err=True)
    if failed:
        raise click.ClickException(f"{len(failed)} prompt(s) could not be rendered (above); "
                                   "record them or check the espeak-ng voice")


def _render(library: Any, prompt: Any) -> None:
    """A recording kept in the other format is converted; else the generated audio is made
    (or converted from the other format)."""
    if library.convert_recording(prompt) is None and library.state(prompt).status != "recorded":
        library.render_prompt(prompt)


def _timed(fn: Any, *args: Any) -> float:
    start = time.monotonic()
    fn(*args)
    return time.monotonic() - start


@prompts.command("record", help="Import a field recording of one prompt (any audio format "
                 "ffmpeg reads): converted to 8 kHz mono, kept with the text it was made for.")
@click.argument("lang")
@click.argument("prompt_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "recorded_by", required=True, help="who recorded it (kept in the sidecar)")
@click.option("--content", "into_content", is_flag=True,
              help="keep it in the content tree's audio/ folder, so `content publish` carries "
              "it to every server (default: MIGRANTLINE_RECORDINGS_DIR, this server only)")
def record(lang: str, prompt_id: str, file: Path, recorded_by: str, into_content: bool) -> None:
    from ussd_app.content.sync import configured  # lazy: CLI start-up

    if into_content and configured(settings.load()):
        raise click.ClickException(
            "this server mirrors its content from MIGRANTLINE_CENTRAL_URL: record with "
            "--content on the central content tree, then publish it")
    library, tree, t = _load()
    manifest = library.manifest(tree, t)
    if manifest.get(lang, prompt_id) is None:
        raise click.ClickException(
            f"no prompt {prompt_id} in language '{lang}': `migrantline prompts manifest` "
            "lists every id")
    try:
        into = library.recordings_dirs[0] if into_content else None
        out = library.import_recording(tree, t, lang, prompt_id, file, recorded_by, into)
    except TtsError as exc:
        raise click.ClickException(f"{file} could not be converted: {exc}") from None
    spoken = library.prompt(tree, t, lang, prompt_id, lambda _lang: False)
    click.echo(f"recorded {lang} {prompt_id} -> {out}")
    if spoken is not None:
        click.echo(f"callers now hear {spoken.url} ({spoken.source})")


@prompts.command("manifest", help="Write what to record as CSV (id, lang, text, status) to "
                 "OUT.csv, or to the terminal.")
@click.argument("out", metavar="[OUT.csv]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--lang", default=None, help="only this language code (default: all)")
def manifest_command(out: Path | None, lang: str | None) -> None:
    library, tree, t = _load()
    rows = [(p.id, p.lang, p.text, library.state(p).status)
            for p in library.manifest(tree, t).all(lang)]
    try:
        fh = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    writer = csv.writer(fh)
    writer.writerow(("id", "lang", "text", "status"))
    writer.writerows(rows)
    if out:
        fh.close()
        click.echo(f"wrote {out}: {len(rows)} prompts")
