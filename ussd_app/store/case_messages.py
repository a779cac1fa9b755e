"""Messages a migrant sent about an open case: the SQL of the case timeline.

An SMS from a phone with an open case (one that is no keyword) is attached
to the most recent open case of that phone, in the same transaction that
claims the inbound message (``sms.record_inbound``): a provider's retry of
the same message id attaches nothing more. The ``key`` (provider and
message id) is unique too, for any other way in.

The text arrives sealed (``body_sealed``, the complaints' text key); the
plain columns are when, how, and what the timeline says about it: cut to
the limit (``truncated``), how many other open cases the phone had
(``other_open``: the operator learns the message may be about another case,
the migrant learns nothing of the others). Erasing the case or the phone's
data empties the text and the pseudonym; the row stays, marked erased.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ussd_app.store.base import Conn, Db, Handle, dicts, rowcount

COLUMNS = ("key", "complaint_id", "phone_key", "at", "channel", "provider", "body_sealed",
           "truncated", "other_open")
_LISTED = "id, complaint_id, at, channel, provider, body_sealed, truncated, other_open, erased_at"


def m_case_messages_001(db: Db) -> None:
    """Messages a migrant sent about an open case (SMS), sealed, one row per message."""
    db.table("complaint_messages").create(
        {"id": int, "key": str, "complaint_id": int, "phone_key": str, "at": float,
         "channel": str, "provider": str, "body_sealed": str, "truncated": int,
         "other_open": int, "erased_at": float},
        pk="id", not_null={"key", "complaint_id", "at", "channel"},
        defaults={"truncated": 0, "other_open": 0},
        foreign_keys=[("complaint_id", "complaints", "id")])
    db.table("complaint_messages").create_index(["key"], unique=True)
    db.table("complaint_messages").create_index(["complaint_id", "at"])
    db.table("complaint_messages").create_index(["phone_key"])


def insert_message(conn: Conn, row: Mapping[str, Any]) -> bool:
    """Attach one message inside the caller's transaction (once per key); True if added.

    Nothing is attached to a case erased meanwhile: its text is not kept.
    """
    if conn.execute("select 1 from complaints where id = ? and erased_at is null",
                    [row["complaint_id"]]).fetchone() is None:
        return False
    cursor = conn.execute(
        f"insert into complaint_messages ({', '.join(COLUMNS)}) values "
        f"({', '.join('?' * len(COLUMNS))}) on conflict(key) do nothing",
        [row.get(c) for c in COLUMNS])
    return bool(cursor.rowcount)


def for_complaint(store: Handle, complaint_id: int) -> list[dict[str, Any]]:
    """A case's messages, oldest first."""
    return dicts(store.db().execute(
        f"select {_LISTED} from complaint_messages where complaint_id = ? order by at, id",
        [complaint_id]))


ERASE = ("update complaint_messages set body_sealed = null, phone_key = null, erased_at = ? "
         "where erased_at is null and ")


def erase_for_complaint(conn: Conn, complaint_id: int, at: float) -> None:
    """The case's messages lose their text and pseudonym; the rows say when they came."""
    conn.execute(ERASE + "complaint_id = ?", [at, complaint_id])


def erase_for_phone(conn: Conn, phone_key: str, at: float) -> int:
    """Every message this phone sent, whatever case it went to."""
    return rowcount(conn.execute(ERASE + "phone_key = ?", [at, phone_key]))
