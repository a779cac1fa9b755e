"""The queue (filters, search, pages), the weekly chart and the CSV export.

Lists show no personal data: phone numbers masked, no free text. Search
looks at the reference and at the agency the complaint was matched to;
what a caller typed is encrypted, so it is not searched (the detail page
shows it, and that view is audited).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, current_app, g, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue

from ussd_app.complaints.service import CATEGORIES, STATUSES, mask_phone
from ussd_app.dashboard import chart
from ussd_app.dashboard.auth import audit, supervisor
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.export import csv_lines
from ussd_app.parsing import bounded_int
from ussd_app.store import centres as centres_db
from ussd_app.store import queue as db

PAGE_SIZE = 25
MAX_PAGE = 10**6  # a page past the end shows no rows; past this, page 1
MAX_DAYS = 100 * 366  # "older than N days": more than a century is no filter anyone means
FILTER_NAMES = ("status", "category", "country", "urgent", "older", "untouched", "assigned",
                "q")


def services() -> Any:
    return current_app.extensions["migrantline"]


def read_filter(args: Mapping[str, str]) -> tuple[db.QueueFilter, dict[str, str]]:
    """The queue filter from a query string, and the values to show back in the form."""
    form = {name: args.get(name, "").strip()[:80] for name in FILTER_NAMES}
    if "status" not in args:
        form["status"] = "open"
    status = form["status"] if form["status"] in (*STATUSES, "open") else ""
    older = bounded_int(form["older"], 0, MAX_DAYS)
    assigned = {"me": g.operator["id"], "nobody": 0}.get(form["assigned"])
    return db.QueueFilter(
        status=status, category=form["category"] if form["category"] in CATEGORIES else "",
        country=form["country"].upper(), urgent=form["urgent"], older_than_days=older,
        untouched=form["untouched"] == "1", assigned_to=assigned, search=form["q"]), form


def untouched(row: Mapping[str, Any], now: float) -> bool:
    """Open, and no operator has acted on it for 48 hours (highlighted in the queue)."""
    last = row.get("last_action_at") or row.get("created_at") or now
    return row.get("status") in db.OPEN and now - float(last) >= db.UNTOUCHED_SECONDS


def masked_phone(row: Mapping[str, Any]) -> str:
    sealed = row.get("phone_sealed")
    if not sealed:
        return "–"
    try:
        return mask_phone(services().complaints.phone_sealer.open(str(sealed)))
    except Exception:  # a changed secret key: the detail page says so
        return "?"


@bp.get("/")
def queue() -> ResponseReturnValue:
    f, form = read_filter(request.args)
    page = bounded_int(request.args.get("page", ""), 1, MAX_PAGE) or 1
    now = time.time()
    rows, total = db.queue(services().store, f, now, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    for row in rows:
        row["untouched"] = untouched(row, now)
        row["phone_masked"] = masked_phone(row)
    query = {k: v for k, v in form.items() if v}
    return render_template(
        "dashboard/queue.html", rows=rows, total=total, page=page, form=form, query=query,
        pages=max(1, -(-total // PAGE_SIZE)), now=now, statuses=STATUSES,
        categories=CATEGORIES, countries=db.countries(services().store),
        referred_from=centres_db.referred_from(services().store, [r["id"] for r in rows]))


@bp.get("/stats")
def stats() -> ResponseReturnValue:
    today = datetime.now(UTC).date()
    start = chart.first_monday(today, 12)
    since = datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()
    weeks = chart.weekly(db.daily_counts(services().store, since), today)
    bars, top = chart.bars(weeks, CATEGORIES)
    return render_template(
        "dashboard/stats.html", weeks=weeks, bars=bars, top=top, categories=CATEGORIES,
        palette=chart.PALETTE, geometry=chart, until=today + timedelta(days=6 - today.weekday()))


@bp.get("/export.csv")
@supervisor
def export() -> ResponseReturnValue:
    f, form = read_filter(request.args)
    complaints = services().complaints
    now = time.time()
    _, total = db.queue(services().store, f, now, 0, 0)
    summary = ", ".join(f"{k}={v}" for k, v in form.items() if v)
    audit("export_csv", detail=f"{total} complaints; {summary}")

    def shape(row: Mapping[str, Any]) -> dict[str, Any]:
        shown = complaints.reveal(row)
        return {**shown, "filed_at": _iso(row["created_at"]),
                "last_action_at": _iso(row.get("last_action_at")),
                "closed_at": _iso(row.get("closed_at")), "erased_at": _iso(row.get("erased_at")),
                "urgent": "yes" if row.get("urgent") else "no",
                "assigned_to": row.get("assigned_email") or ""}

    lines = csv_lines(db.export_rows(services().store, f, now), shape)
    name = f"complaints-{datetime.now(UTC).strftime('%Y%m%d-%H%M')}.csv"
    return Response(stream_with_context(lines), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _iso(at: Any) -> str:
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else ""
