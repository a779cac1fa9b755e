"""Supervisors' agency flags: raise one, lift one, see which agencies draw complaints.

A flag is raised by a supervisor, with a reason from the fixed list
(``agencies.flags.REASONS``), a source and a date, and is audited; nothing
here raises one from a count. The complaint counts are for deciding, never
shown to callers.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import UTC, date, datetime
from pathlib import Path

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ussd_app.agencies import importer
from ussd_app.agencies.agency import fold, licence_key
from ussd_app.agencies.flags import MAX_SOURCE, REASONS
from ussd_app.dashboard.auth import audit, supervisor
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.i18n import _
from ussd_app.dashboard.queue_views import services
from ussd_app.parsing import MAX_ID, bounded_int
from ussd_app.store import agency_flags as db

TOP_AGENCIES = 20
MAX_NAME = 200


def quarter_start(now: datetime) -> datetime:
    return datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=UTC)


def _registry():  # type: ignore[no-untyped-def]
    return services().ussd.services.get("agency_search")


@bp.get("/agencies/flags")
@supervisor
def agency_flags() -> ResponseReturnValue:
    registry = _registry()
    rows = []
    for flag in db.active_flags(services().store):
        listed = registry.lookup(flag["licence"]) if registry and flag["licence_key"] else None
        rows.append({**flag, "orphaned": bool(flag["licence_key"]) and listed is None})
    since = quarter_start(datetime.now(UTC))
    top = db.complaints_by_agency(services().store, since.timestamp(), TOP_AGENCIES)
    unlisted = _unlisted(since.timestamp())
    audit("agency_flags_viewed")
    return render_template("dashboard/agency_flags.html", flags=rows, top=top,
                           unlisted=unlisted, reasons=REASONS, since=since.date().isoformat(),
                           today=date.today().isoformat(),
                           public_from=services().config.agency_reports_public_from)


def _unlisted(since: float) -> list[dict[str, object]]:
    """Names the registry lacks, by complaints naming them: the name as the newest
    complaint typed it (only that field is decrypted), and that complaint's id."""
    complaints = services().complaints
    out: list[dict[str, object]] = []
    for row in db.unlisted_agencies(services().store, since, TOP_AGENCIES):
        case = complaints.get(int(row["latest_id"]))
        sealed = case.get("against_sealed")
        try:
            name = complaints.text_sealer.open(str(sealed)) if sealed else ""
        except Exception:  # a key change: say so rather than fail the page
            name = _("(cannot be decrypted with the current secret key)")
        out.append({"name": name, "complaints": row["complaints"], "latest_id": case["id"]})
    return out


@bp.post("/agencies/flags")
@supervisor
def add_agency_flag() -> ResponseReturnValue:
    form = {k: request.form.get(k, "").strip() for k in
            ("licence", "name", "reason", "source", "flagged_on")}
    registry = _registry()
    listed = registry.lookup(form["licence"]) if registry and form["licence"] else None
    name = str(listed["name"]) if listed else form["name"]
    error = None
    if form["reason"] not in REASONS:
        error = _("Choose a reason from the list.")
    elif not name or len(name) > MAX_NAME or len(form["licence"]) > 60:
        error = _("Give the agency's name (it is not in the registry), or a licence "
                  "number the registry holds.")
    elif not form["source"] or len(form["source"]) > MAX_SOURCE:
        error = _("Say who reported it (the source), in at most %(n)d characters.",
                  n=MAX_SOURCE)
    else:
        try:
            day = date.fromisoformat(form["flagged_on"])
        except ValueError:
            day = None
        if day is None or day > date.today():
            error = _("The date must be YYYY-MM-DD, and not in the future.")
    if error:
        flash(error, "error")
        return redirect(url_for("dashboard.agency_flags"))
    licence = str(listed["licence"]) if listed else form["licence"]
    flag_id = db.add_flag(services().store, licence_key(licence), licence, name, fold(name),
                          form["reason"], form["source"], form["flagged_on"], time.time(),
                          _operator_id())
    _expire_flags()
    audit("agency_flag_raised", detail=f"flag {flag_id}: {licence or name}: {form['reason']}")
    flash(_("Flag raised: callers checking this agency now see the warning."), "info")
    return redirect(url_for("dashboard.agency_flags"))


@bp.post("/agencies/flags/<flag_id>/lift")
@supervisor
def lift_agency_flag(flag_id: str) -> ResponseReturnValue:
    number = bounded_int(flag_id, 1, MAX_ID)
    if number is None or not db.lift_flag(services().store, number, time.time(),
                                          _operator_id()):
        flash(_("That flag is not raised."), "error")
        return redirect(url_for("dashboard.agency_flags"))
    _expire_flags()
    audit("agency_flag_lifted", detail=f"flag {number}")
    flash(_("Flag lifted."), "info")
    return redirect(url_for("dashboard.agency_flags"))


def _expire_flags() -> None:
    registry = _registry()
    if registry is not None:
        registry.flags.expire()


def _operator_id() -> int | None:
    return int(g.operator["id"]) if g.get("operator") else None


# ---------------------------------------------------------------- official lists in

MAX_UPLOAD = 20_000_000
MAX_MAPPING = 4000
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


def _imports_dir() -> Path:
    """Uploads waiting to be applied; those left for a day are removed."""
    folder = Path(services().config.data_dir) / "agency-imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.stat().st_mtime < time.time() - 86400:
            old.unlink(missing_ok=True)
    return folder


def _plan(folder: Path, token: str) -> tuple[importer.Plan, dict[str, str]]:
    """The saved upload compared again with the registry as it is now."""
    meta = json.loads((folder / f"{token}.json").read_text(encoding="utf-8"))
    path = folder / f"{token}{meta['suffix']}"
    mapping = folder / f"{token}.yaml"
    config, problems = importer.load_config(mapping if mapping.exists() else None)
    if config is None:
        return importer.Plan([], [], [], problems), meta
    result = importer.plan(Path(services().config.content_dir), Path(meta["file"]),
                           path.read_bytes(), config, meta["source"],
                           date.fromisoformat(meta["date"]))
    return result, meta


@bp.get("/agencies/import")
@supervisor
def agency_import() -> ResponseReturnValue:
    return render_template("dashboard/agency_import.html", today=date.today().isoformat(),
                           plan=None, token="", meta={})


@bp.post("/agencies/import")
@supervisor
def agency_import_upload() -> ResponseReturnValue:
    upload = request.files.get("list")
    source = request.form.get("source", "").strip()
    when = request.form.get("date", "").strip()
    mapping = request.form.get("mapping", "")
    name = Path(upload.filename or "").name if upload else ""
    suffix = Path(name).suffix.lower()
    error = None
    if upload is None or suffix not in (".csv", ".xlsx"):
        error = _("Choose the list: a .csv or .xlsx file.")
    elif not source or len(source) > 120:
        error = _("Name the source of the list, in at most 120 characters.")
    elif len(mapping) > MAX_MAPPING:
        error = _("The column mapping is too long.")
    else:
        try:
            date.fromisoformat(when)
        except ValueError:
            error = _("The date must be YYYY-MM-DD, and not in the future.")
    if error or upload is None:
        flash(error or "", "error")
        return redirect(url_for("dashboard.agency_import"))
    data = upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        flash(_("The file is larger than 20 MB."), "error")
        return redirect(url_for("dashboard.agency_import"))
    folder = _imports_dir()
    token = secrets.token_urlsafe(24)
    (folder / f"{token}{suffix}").write_bytes(data)
    if mapping.strip():
        (folder / f"{token}.yaml").write_text(mapping, encoding="utf-8")
    (folder / f"{token}.json").write_text(json.dumps(
        {"file": name, "suffix": suffix, "source": source, "date": when}), encoding="utf-8")
    result, meta = _plan(folder, token)
    if not result.ok:  # nothing to apply: the upload is not kept
        for leftover in folder.glob(f"{token}.*"):
            leftover.unlink(missing_ok=True)
    audit("agency_import_compared", detail=f"{name}: {source} {when}")
    return render_template("dashboard/agency_import.html", today=date.today().isoformat(),
                           plan=result, report=importer.report(result.changes),
                           token=token, meta=meta)


@bp.post("/agencies/import/<token>/apply")
@supervisor
def agency_import_apply(token: str) -> ResponseReturnValue:
    folder = _imports_dir()
    if not TOKEN.fullmatch(token) or not (folder / f"{token}.json").exists():
        flash(_("That import is no longer waiting: upload the list again."), "error")
        return redirect(url_for("dashboard.agency_import"))
    result, meta = _plan(folder, token)
    failed = (result.problems if not result.ok else
              importer.write_registry(Path(services().config.content_dir), result.result))
    for leftover in folder.glob(f"{token}.*"):
        leftover.unlink(missing_ok=True)
    if failed:
        flash(_("Nothing was changed: the list has errors. Upload it again to see them."),
              "error")
        return redirect(url_for("dashboard.agency_import"))
    audit("agency_import_applied", detail=f"{meta['file']}: {meta['source']} {meta['date']}: "
                                          f"{len(result.changes)} changes")
    flash(_("Imported. Check and publish the content to send it to the field offices."),
          "info")
    return redirect(url_for("dashboard.agency_import"))
