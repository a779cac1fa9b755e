"""Job-offer records at the centre: find one, read it, add its scans, erase it.

A record holds what a migrant was promised and, once field staff add them,
scans of their contract and passport: personal data as much as a case. Every
opening of a record and every view of a scan is an audit row (``record <id>``
in its detail; a record is no complaint), and so is each upload, refused or
kept, and the erasure. A scan is checked by its content (PDF, JPEG, PNG), not
by its name, sealed before it is stored, and served with ``no-store``.

On a complaint's page the record it is held against is shown beside what the
complaint reports (``job_records.compare``); staff may link one by its
reference and note the wage paid as the migrant reports it.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from ussd_app.dashboard.auth import audit
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.detail_views import action
from ussd_app.dashboard.i18n import _
from ussd_app.dashboard.queue_views import services
from ussd_app.job_records.model import SCAN_KINDS
from ussd_app.job_records.scans import EMPTY, MAX_SCAN_BYTES, NOT_A_SCAN, TOO_LARGE
from ussd_app.job_records.service import JobRecords, ScanRefused

WAGE_LIMIT = 40


def _records() -> JobRecords:
    records = services().records
    if records is None:
        abort(404)
    return records


def _record(rid: int) -> dict[str, Any]:
    row = _records().get(rid)
    if row is None:
        abort(404)
    return row


@bp.get("/records")
def records_list() -> ResponseReturnValue:
    """The latest records, and the search by reference that field staff use at the desk."""
    typed = request.args.get("reference", "").strip()
    if typed:
        found = _records().by_reference(typed)
        audit("find_record", None, "found" if found else "not found")
        if found is not None:
            return redirect(url_for("dashboard.record", rid=found["id"]), 303)
        flash(_("No job-offer record has this reference (it starts with 0)."), "error")
    return render_template("dashboard/records.html",
                           rows=_records().recent(), typed=typed)


@bp.get("/records/<int:rid>")
def record(rid: int) -> ResponseReturnValue:
    row = _record(rid)
    audit("view_record", None, f"record {rid}")
    records = _records()
    return render_template("dashboard/record.html", r=records.reveal(row),
                           scans=records.scans(rid), kinds=SCAN_KINDS,
                           max_mb=MAX_SCAN_BYTES // (1024 * 1024))


@bp.post("/records/<int:rid>/scans")
def upload_scan(rid: int) -> ResponseReturnValue:
    """One scan: refused with the reason (and an audit row) unless it is what it says."""
    row = _record(rid)
    if row.get("erased_at"):
        abort(404)
    try:
        upload = request.files.get("scan")
        kind = request.form.get("kind", "other")
        data = upload.read(MAX_SCAN_BYTES + 1) if upload is not None else b""
        scan_id = _records().add_scan(rid, kind, data, g.operator["id"])
    except RequestEntityTooLarge:  # far over the limit: not read at all
        return _refused(rid, "too_large")
    except ScanRefused as refused:
        return _refused(rid, str(refused.args[0]))
    if scan_id is None:
        abort(404)
    audit("scan_upload", None, f"record {rid}: scan {scan_id} ({kind})")
    flash(_("Scan kept, sealed."), "info")
    return redirect(url_for("dashboard.record", rid=rid), 303)


def _refused(rid: int, reason: str) -> ResponseReturnValue:
    """An upload refused: the reason shown to the staff member, and an audit row."""
    audit("scan_refused", None, f"record {rid}: {reason}")
    message = {"empty": _(EMPTY), "too_large": _(TOO_LARGE,
                                                 limit=MAX_SCAN_BYTES // (1024 * 1024))
               }.get(reason, _(NOT_A_SCAN))
    flash(message, "error")
    return redirect(url_for("dashboard.record", rid=rid), 303)


@bp.get("/records/<int:rid>/scans/<int:sid>")
def view_scan(rid: int, sid: int) -> ResponseReturnValue:
    _record(rid)
    found = _records().scan(rid, sid)
    if found is None:
        abort(404)
    data, mimetype = found
    audit("view_scan", None, f"record {rid}: scan {sid}")
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.post("/records/<int:rid>/erase")
def erase_record(rid: int) -> ResponseReturnValue:
    _record(rid)
    if request.form.get("confirm") != "yes":
        flash(_("Tick the box to confirm the erasure."), "error")
        return redirect(url_for("dashboard.record", rid=rid), 303)
    _records().erase(rid, "asked at the centre")
    audit("erase_record", None, f"record {rid}")
    flash(_("The record and its scans were erased."), "info")
    return redirect(url_for("dashboard.record", rid=rid), 303)


# ---------------------------------------------------------------- on a complaint's page


@action("link_record")
def link_record(cid: int, row: dict[str, Any]) -> str:
    found = _records().by_reference(request.form.get("reference", ""))
    if found is None or found.get("erased_at"):
        audit("link_record_refused", cid)
        return _("No job-offer record has this reference (it starts with 0).")
    services().complaints.act(cid, "note", g.operator["id"], "operator",
                              detail=_("Linked to job-offer record %(reference)s.",
                                       reference=found["reference"]),
                              fields={"job_record_id": int(found["id"])})
    audit("link_record", cid, f"record {found['id']}")
    return _("Linked to the job-offer record.")


@action("wage_paid")
def wage_paid(cid: int, row: dict[str, Any]) -> str:
    text = " ".join(request.form.get("wage_paid", "").split())[:WAGE_LIMIT]
    if not text:
        return _("Write the wage paid first.")
    complaints = services().complaints
    complaints.act(cid, "note", g.operator["id"], "operator",
                   detail=_("Wage paid, as reported: %(wage)s", wage=text),
                   fields={"wage_paid_sealed": complaints.text_sealer.seal(text)})
    audit("wage_paid", cid)
    return _("Wage paid noted.")
