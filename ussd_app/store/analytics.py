"""Supervisors' figures: case outcomes, the cases of a period, menu usage per node.

A case's outcome is four plain columns of ``complaints`` (what, amount as
exact decimal text, ISO 4217 currency, when), set with its history event in
one transaction by ``complaints.update``. The period's cases come back one row
each, with the times of their first operator action, first SMS from the
dashboard and first "Show number" (the step before a call): the medians and
90th percentiles are computed by the caller, the same on both engines.

Menu usage is counted without keeping who: ``menu_counts`` holds, per UTC day
(of a session's start), channel and content node, how many sessions reached
the node and how many ended on it. A USSD session row carries the nodes it
reached (``path``) and its last one (``node``), written in the hop's own
progress write; ``fold_sessions`` adds rows to the counts in the same
transaction that deletes them (the purge), so each session is counted once and
no session id or phone key outlives its row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ussd_app.store.base import Conn, Db, Handle, dicts

OUTCOME_COLUMNS = ("outcome", "outcome_amount", "outcome_currency", "outcome_at")
MAX_PATH = 64  # nodes kept per session: a walk reaches tens; past this, no more are added


def m_complaints_002_outcome(db: Db) -> None:
    """A closed case's outcome: resolved, referred, compensation (amount, currency), ..."""
    table = db.table("complaints")
    for column, kind in (("outcome", str), ("outcome_amount", str),
                         ("outcome_currency", str), ("outcome_at", float)):
        table.add_column(column, kind)


def m_menu_counts_001(db: Db) -> None:
    """Sessions per day and node (no ids), and the nodes a live USSD session reached."""
    db.table("menu_counts").create(
        {"day": str, "channel": str, "node": str, "reached": int, "ended": int},
        pk=("day", "channel", "node"), not_null={"reached", "ended"},
        defaults={"reached": 0, "ended": 0})
    db.table("ussd_sessions").add_column("path", str)
    db.table("ussd_sessions").add_column("node", str)


def cases(store: Handle, since: float, until: float) -> list[dict[str, Any]]:
    """Every case filed in [since, until): its plain columns, outcome and first times."""
    return dicts(store.db().execute(
        "select c.id, c.created_at, c.channel, c.lang, c.urgent, c.status, c.category, "
        "c.country, c.agency_licence, c.agency_name, c.closed_at, c.outcome, "
        "c.outcome_amount, c.outcome_currency, "
        "(select min(e.at) from complaint_events e where e.complaint_id = c.id "
        " and e.actor = 'operator') as first_response, "
        "(select min(e.at) from complaint_events e where e.complaint_id = c.id "
        " and e.kind = 'message') as first_sms, "
        "(select min(a.at) from audit_log a where a.complaint_id = c.id "
        " and a.action = 'reveal_phone') as first_call "
        "from complaints c where c.created_at >= ? and c.created_at < ? order by c.created_at",
        [since, until]))


def cases_bare(store: Handle, since: float, until: float) -> list[tuple[Any, ...]]:
    """The same complaints' rows, no subqueries: the benchmark's baseline."""
    return list(store.db().execute(
        "select id, created_at, channel, lang, urgent, status, category, country, "
        "agency_licence, agency_name, closed_at, outcome, outcome_amount, outcome_currency "
        "from complaints where created_at >= ? and created_at < ?", [since, until]))


def menu_usage(store: Handle, first_day: str, last_day: str,
               channel: str = "ussd") -> list[tuple[str, int, int]]:
    """(node, sessions that reached it, sessions that ended on it) for those days, the most
    reached first."""
    return [(str(r[0]), int(r[1]), int(r[2])) for r in store.db().execute(
        "select node, sum(reached), sum(ended) from menu_counts where channel = ? "
        "and day >= ? and day <= ? group by node order by 2 desc, node",
        [channel, first_day, last_day])]


def fold_sessions(conn: Conn, rows: Sequence[Sequence[Any]], channel: str = "ussd") -> int:
    """Add sessions (started_at, path, node) to the counts; inside the caller's
    transaction, the one that deletes them. Returns how many were counted."""
    reached: Counter[tuple[str, str]] = Counter()
    ended: Counter[tuple[str, str]] = Counter()
    counted = 0
    for started_at, path, node in rows:
        if not path:
            continue  # a row from before the counts: nothing known of its walk
        day = datetime.fromtimestamp(float(started_at), UTC).date().isoformat()
        for name in dict.fromkeys(str(path).split()):
            reached[(day, name)] += 1
        if node:
            ended[(day, str(node))] += 1
        counted += 1
    keys = sorted(set(reached) | set(ended))
    if keys:
        conn.executemany(
            "insert into menu_counts (day, channel, node, reached, ended) values (?, ?, ?, ?, ?) "
            "on conflict(day, channel, node) do update set "
            "reached = menu_counts.reached + excluded.reached, "
            "ended = menu_counts.ended + excluded.ended",
            [(day, channel, node, reached[(day, node)], ended[(day, node)])
             for day, node in keys])
    return counted

