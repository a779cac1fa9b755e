"""A complaint's history: one event row, written inside the caller's transaction.

Apart from ``complaints`` so that the tables that add to a complaint's history
(its voice recordings) need not import the complaints module, which imports
them to erase what they hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ussd_app.store.base import Conn


def insert_event(conn: Conn, complaint_id: int,
                 event: Mapping[str, Any]) -> None:
    conn.execute(
        "insert into complaint_events (complaint_id, at, actor, operator_id, kind, status, "
        "detail_sealed) values (?, ?, ?, ?, ?, ?, ?)",
        [complaint_id, event["at"], event["actor"], event.get("operator_id"), event["kind"],
         event.get("status"), event.get("detail_sealed")])
