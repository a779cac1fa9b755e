"""The operators' queue: filtered and paged complaints, counts by week, export, SMS sent.

Only the plain columns of ``complaints`` can be filtered in SQL (status,
category, country, urgency, dates, the matched agency, the reference): free
text is sealed, so a search never looks inside what a caller said. The same
filter serves the queue page, its CSV export and the counts, so what a
supervisor exports is what the queue showed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ussd_app.store.base import Handle, dicts, utc_day
from ussd_app.store.complaints import COLUMNS

OPEN = ("new", "in_progress", "referred")  # a complaint still waiting on someone
UNTOUCHED_SECONDS = 48 * 3600
_LIST_COLUMNS = ", ".join(f"c.{c}" for c in COLUMNS)


@dataclass(frozen=True)
class QueueFilter:
    """What an operator asked the queue for; empty fields filter nothing."""

    status: str = "open"  # one status, "open" (not resolved or closed) or "" (any)
    category: str = ""
    country: str = ""
    urgent: str = ""  # "yes", "no" or ""
    older_than_days: int | None = None
    untouched: bool = False  # open and without an operator's action for 48 h
    assigned_to: int | None = None  # an operator's id; 0: nobody
    search: str = ""  # reference digits, or part of an agency's licence or name


def _where(f: QueueFilter, now: float) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if f.status == "open":
        where.append(f"c.status in ({', '.join('?' * len(OPEN))})")
        params += OPEN
    elif f.status:
        where.append("c.status = ?")
        params.append(f.status)
    for column in ("category", "country"):
        value = getattr(f, column)
        if value:
            where.append(f"c.{column} = ?")
            params.append(value)
    if f.urgent in ("yes", "no"):
        where.append("c.urgent = ?")
        params.append(int(f.urgent == "yes"))
    if f.older_than_days is not None:
        where.append("c.created_at < ?")
        params.append(now - f.older_than_days * 86400)
    if f.untouched:
        where.append(f"c.status in ({', '.join('?' * len(OPEN))}) "
                     "and coalesce(c.last_action_at, c.created_at) < ?")
        params += [*OPEN, now - UNTOUCHED_SECONDS]
    if f.assigned_to == 0:
        where.append("c.assigned_to is null")
    elif f.assigned_to is not None:
        where.append("c.assigned_to = ?")
        params.append(f.assigned_to)
    search = f.search.strip()
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # lower() on both sides: SQLite's like ignores ASCII case, PostgreSQL's does not.
        parts = ["lower(c.agency_name) like lower(?) escape '\\'",
                 "lower(c.agency_licence) like lower(?) escape '\\'"]
        params += [like, like]
        if digits and len(digits) >= 4 and all(ch.isdigit() or ch in " -" for ch in search):
            parts.append("c.reference like ?")
            params.append(digits + "%")
        where.append(f"({' or '.join(parts)})")
    return (f"where {' and '.join(where)}" if where else ""), params


def queue(store: Handle, f: QueueFilter, now: float, limit: int,
          offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the queue (urgent first, then the oldest) and how many match in all."""
    clause, params = _where(f, now)
    conn = store.db().conn
    total = conn.execute(f"select count(*) from complaints c {clause}", params).fetchone()[0]
    rows = dicts(conn.execute(
        f"select {_LIST_COLUMNS}, o.email as assigned_email from complaints c "
        f"left join operators o on o.id = c.assigned_to {clause} "
        "order by c.urgent desc, c.created_at asc, c.id asc limit ? offset ?",
        [*params, limit, offset]))
    return rows, int(total)


def export_rows(store: Handle, f: QueueFilter, now: float,
                batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every complaint the filter matches, in queue order, read a batch at a time."""
    offset = 0
    while True:
        rows, _ = queue(store, f, now, batch, offset)
        yield from rows
        if len(rows) < batch:
            return
        offset += batch


def countries(store: Handle) -> list[str]:
    return [r[0] for r in store.db().execute(
        "select distinct country from complaints where country is not null order by country")]


def daily_counts(store: Handle, since: float) -> list[tuple[str, str, int]]:
    """(day as YYYY-MM-DD in UTC, category, complaints filed) since then."""
    db = store.db()
    return [(r[0], r[1] or "other", int(r[2])) for r in db.execute(
        f"select {utc_day(db, 'created_at')}, category, count(*) from complaints "
        "where created_at >= ? group by 1, 2 order by 1", [since])]


def outbox_for(store: Handle, keys: Sequence[str],
               prefixes: Sequence[str]) -> list[dict[str, Any]]:
    """SMS in the outbox under these keys or key prefixes (what one complaint caused).

    The number (sealed) is left out: the dashboard shows what was sent and
    what became of it, not to whom.
    """
    parts = [f"key in ({', '.join('?' * len(keys))})"] if keys else []
    params: list[Any] = list(keys)
    for prefix in prefixes:
        parts.append("(key >= ? and key < ?)")
        params += [prefix, prefix + "\uffff"]
    if not parts:
        return []
    return dicts(store.db().execute(
        "select id, key, lang, body, encoding, segments, status, attempts, created_at, "
        f"updated_at, error, next_attempt_at, safe_window, time_zone from outbox "
        f"where {' or '.join(parts)} order by id", params))
