"""Flags a supervisor raises on an agency (``agencies/flags.py``): the SQL.

A flag names the agency by its normalised licence number when it has one
(``licence_key``, empty for an agency missing from the registry) and always
by name, so a flag on an agency that later leaves the registry still shows
by name. A flag is lifted, never deleted: the audit log and the flag itself
keep who raised and who lifted it.
"""

from __future__ import annotations

from typing import Any

from ussd_app.store.base import Db, Handle, dicts, rowcount

FLAG_COLUMNS = ("id", "licence_key", "licence", "name", "name_key", "reason", "source",
                "flagged_on", "created_at", "created_by", "lifted_at", "lifted_by")
_SQL = ", ".join(FLAG_COLUMNS)


def m_agency_flags_001(db: Db) -> None:
    db.table("agency_flags").create(
        {"id": int, "licence_key": str, "licence": str, "name": str, "name_key": str,
         "reason": str, "source": str, "flagged_on": str, "created_at": float,
         "created_by": int, "lifted_at": float, "lifted_by": int},
        pk="id", not_null={"licence_key", "licence", "name", "name_key", "reason", "source",
                           "flagged_on", "created_at"})
    db.table("agency_flags").create_index(["licence_key"])
    db.table("agency_flags").create_index(["lifted_at"])


def add_flag(store: Handle, licence_key: str, licence: str, name: str, name_key: str,
             reason: str, source: str, flagged_on: str, at: float, by: int | None) -> int:
    cursor = store.db().execute(
        "insert into agency_flags (licence_key, licence, name, name_key, reason, source, "
        "flagged_on, created_at, created_by) values (?, ?, ?, ?, ?, ?, ?, ?, ?) returning id",
        [licence_key, licence, name, name_key, reason, source, flagged_on, at, by])
    return int(cursor.fetchone()[0])


def lift_flag(store: Handle, flag_id: int, at: float, by: int | None) -> bool:
    return rowcount(store.db().execute(
        "update agency_flags set lifted_at = ?, lifted_by = ? where id = ? and lifted_at "
        "is null", [at, by, flag_id])) == 1


def active_flags(store: Handle) -> list[dict[str, Any]]:
    """Every flag not lifted, newest first (the dashboard, and the check's name matching)."""
    return dicts(store.db().execute(
        f"select {_SQL} from agency_flags where lifted_at is null "
        "order by flagged_on desc, id desc"))


def flag_by_id(store: Handle, flag_id: int) -> dict[str, Any] | None:
    rows = dicts(store.db().execute(f"select {_SQL} from agency_flags where id = ?",
                                    [flag_id]))
    return rows[0] if rows else None


def flags_stamp(store: Handle) -> tuple[int, int, float]:
    """Changes whenever a flag is raised or lifted: the check's texts are cached by it."""
    row = store.db().execute(
        "select count(*), coalesce(max(id), 0), coalesce(max(lifted_at), 0) "
        "from agency_flags").fetchone()
    return int(row[0]), int(row[1]), float(row[2])


def complaints_by_agency(store: Handle, since: float, limit: int) -> list[dict[str, Any]]:
    """Agencies with the most complaints since ``since``: by the registry licence the
    complaint flow matched (chosen, or typed and found by the agency search), erased
    complaints left out. For supervisors deciding on a flag; callers read a count only
    from the threshold a deployment sets (``licence_counts``)."""
    return dicts(store.db().execute(
        "select agency_licence as licence, max(agency_name) as name, count(*) as complaints "
        "from complaints where agency_licence is not null and agency_licence <> '' "
        "and erased_at is null and created_at >= ? group by agency_licence "
        "order by count(*) desc, agency_licence limit ?", [since, limit]))


def unlisted_agencies(store: Handle, since: float, limit: int) -> list[dict[str, Any]]:
    """Agency names the registry lacks, by how many complaints named them since ``since``
    (grouped by the keyed hash of the folded name), with the newest complaint's id: the
    dashboard opens that one to show the name as typed."""
    return dicts(store.db().execute(
        "select agency_name_key as name_key, count(*) as complaints, max(id) as latest_id "
        "from complaints where agency_name_key is not null and erased_at is null "
        "and created_at >= ? group by agency_name_key "
        "order by count(*) desc, max(id) desc limit ?", [since, limit]))


def licence_counts(store: Handle, since: float, at_least: int) -> dict[str, int]:
    """Complaints per registry licence since ``since``, for licences with ``at_least``."""
    rows = store.db().execute(
        "select agency_licence, count(*) from complaints where agency_licence is not null "
        "and agency_licence <> '' and erased_at is null and created_at >= ? "
        "group by agency_licence having count(*) >= ?", [since, at_least]).fetchall()
    return {str(licence): int(n) for licence, n in rows}
