"""A closed case's outcome (any operator, on its page) and the supervisors' analytics.

The analytics page and its CSV count cases, times, outcomes and menu usage;
they show no phone number, no reference and nothing a caller typed, and menu
counts under five show as "<5". The CSV export is audited like the queue's.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Response, g, render_template, request
from flask.typing import ResponseReturnValue

from ussd_app.complaints.outcomes import OUTCOMES, BadOutcome, parse_outcome
from ussd_app.dashboard import chart
from ussd_app.dashboard.analytics import Summary, summarise, week_labels
from ussd_app.dashboard.analytics import csv_rows as summary_rows
from ussd_app.dashboard.auth import audit, supervisor
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.centre_case import tell_origin
from ussd_app.dashboard.detail_views import action
from ussd_app.dashboard.export import cell
from ussd_app.dashboard.i18n import OUTCOME_NAMES, _, label
from ussd_app.dashboard.queue_views import services
from ussd_app.parsing import bounded_int
from ussd_app.store import analytics as db

DEFAULT_WEEKS, MAX_WEEKS = 12, 104


def refused(reason: str) -> str:
    return {
        "open": _("An outcome can only be recorded on a closed case. Close it first."),
        "outcome": _("Choose an outcome."),
        "currency": _("Choose the currency by its ISO 4217 code, for example NPR or QAR."),
        "amount": _("Give the amount recovered: a number from 0 to 100,000,000, with no "
                    "more decimals than the currency has."),
    }.get(reason, _("Choose an outcome."))


@action("outcome")
def outcome(cid: int, row: dict[str, Any]) -> str:
    form = request.form
    try:
        checked = parse_outcome(form.get("outcome", ""), form.get("amount", "")[:40],
                                form.get("currency", "")[:8])
        services().complaints.record_outcome(cid, checked, g.operator["id"], "operator")
    except BadOutcome as exc:
        return refused(exc.reason)
    audit("outcome", cid, " ".join(filter(None, (checked.outcome, checked.currency))))
    told = tell_origin(cid, outcome={"outcome": checked.outcome,
                                                  "amount": checked.amount,
                                                  "currency": checked.currency})
    return " ".join(filter(None, (_("Outcome recorded: %(outcome)s.",
                                    outcome=label(OUTCOME_NAMES, checked.outcome)), told)))


def period(weeks: int) -> tuple[float, float, list[str], datetime, date]:
    """[since, until) of the last ``weeks`` ISO weeks (this one last), their labels, the
    end and the first Monday."""
    today = datetime.now(UTC).date()
    first = chart.first_monday(today, weeks)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    until = since + timedelta(weeks=weeks)
    return since.timestamp(), until.timestamp(), week_labels(first, weeks), until, first


def figures() -> tuple[Summary, int, datetime]:
    weeks = bounded_int(request.args.get("weeks", ""), 1, MAX_WEEKS) or DEFAULT_WEEKS
    since, until, labels, end, first = period(weeks)
    store = services().store
    first_day = datetime.fromtimestamp(since, UTC).date().isoformat()
    last_day = (end - timedelta(days=1)).date().isoformat()
    return (summarise(db.cases(store, since, until), labels, first,
                      db.menu_usage(store, first_day, last_day)), weeks, end)


@bp.get("/analytics")
@supervisor
def analytics() -> ResponseReturnValue:
    summary, weeks, end = figures()
    bars_in = [chart.Week(datetime.strptime(w + "-1", "%G-W%V-%u").date(), {"cases": n})
               for w, n in summary.weeks]
    bars, top = chart.bars(bars_in, ["cases"])
    return render_template("dashboard/analytics.html", s=summary, weeks=weeks,
                           until=(end - timedelta(days=1)).date(), bars=bars, top=top,
                           geometry=chart, week_rows=bars_in, outcomes=OUTCOMES,
                           max_weeks=MAX_WEEKS)


@bp.get("/analytics.csv")
@supervisor
def analytics_csv() -> ResponseReturnValue:
    summary, weeks, _end = figures()
    audit("export_analytics", detail=f"{summary.cases} complaints; weeks={weeks}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("section", "key", "measure", "value"))
    for row in summary_rows(summary):
        writer.writerow([cell(v) for v in row])
    name = f"analytics-{datetime.now(UTC).strftime('%Y%m%d-%H%M')}.csv"
    return Response("\ufeff" + buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
