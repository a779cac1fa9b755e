"""Partner centres in other countries, the referrals exchanged with them: the SQL.

* ``centre_identity``: this deployment's own key pairs (one row, sealed at rest);
* ``centres``: the partner directory, from imported cards (``revoked_at`` set: refused);
* ``centre_referrals``: one row per case referred out (``direction = 'out'``) or in
  (``'in'``), keyed by the referral's id that both sides share, with the last
  status, outcome and message the other side sent;
* ``centre_outbox``: the envelopes to deliver, claimed with a lease like the other
  queues (``SKIP LOCKED`` on PostgreSQL), retried with backoff until ``sent``
  (or ``refused`` by the partner: a 4xx, kept to be seen);
* ``centre_inbox``: every message id received, so a replay stores nothing twice.

A received message's effects (the inbox row, the case or the update, its history
event and the migrant's SMS) commit in one transaction: the inbox row's unique id
is what makes a replay, or two deliveries racing, store nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ussd_app.store.base import (
    INTEGRITY_ERRORS,
    Db,
    Handle,
    dicts,
    one,
    skip_locked,
    write_transaction,
)
from ussd_app.store.complaint_events import insert_event
from ussd_app.store.complaints import COLUMNS as COMPLAINT_COLUMNS
from ussd_app.store.outbox import OutboxItem, insert_outbox

OUTBOX_STATUSES = ("queued", "sending", "sent", "refused")


def m_centres_001(db: Db) -> None:
    """Partner centres, this centre's keys, referrals across centres, their queue and the
    ids already received; and the migrant's consent to share a case with another centre."""
    db.table("centre_identity").create(
        {"id": int, "keys_sealed": str, "created_at": float}, pk="id",
        not_null={"keys_sealed", "created_at"})
    db.table("centres").create(
        {"id": int, "name": str, "country": str, "languages": str, "url": str,
         "sign_key": str, "box_key": str, "fingerprint": str, "card": str,
         "imported_at": float, "revoked_at": float}, pk="id",
        not_null={"name", "country", "url", "sign_key", "box_key", "card", "imported_at"})
    db.table("centres").create_index(["sign_key"], unique=True)
    db.table("centre_referrals").create(
        {"id": int, "uid": str, "direction": str, "centre_id": int, "complaint_id": int,
         "fields": str, "created_at": float, "updated_at": float, "remote_reference": str,
         "remote_status": str, "remote_outcome": str, "remote_amount": str,
         "remote_currency": str, "remote_message_sealed": str, "remote_at": float},
        pk="id", not_null={"uid", "direction", "centre_id", "complaint_id", "created_at"})
    db.table("centre_referrals").create_index(["uid", "direction"], unique=True)
    db.table("centre_referrals").create_index(["complaint_id"])
    db.table("centre_outbox").create(
        {"id": int, "msg_id": str, "centre_id": int, "referral_uid": str, "kind": str,
         "envelope": str, "status": str, "attempts": int, "next_attempt_at": float,
         "lease_until": float, "error": str, "created_at": float, "updated_at": float,
         "sent_at": float}, pk="id",
        not_null={"msg_id", "centre_id", "kind", "envelope", "status", "attempts",
                  "created_at"},
        defaults={"status": "queued", "attempts": 0})
    db.table("centre_outbox").create_index(["msg_id"], unique=True)
    db.table("centre_outbox").create_index(["status", "next_attempt_at"])
    db.table("centre_outbox").create_index(["centre_id", "status"])
    db.table("centre_inbox").create(
        {"msg_id": str, "centre_id": int, "kind": str, "referral_uid": str,
         "received_at": float}, pk="msg_id", not_null={"centre_id", "kind", "received_at"})
    db.table("complaints").add_column("share_consent", str)


# ---------------------------------------------------------------- this centre's keys


def identity(store: Handle) -> dict[str, Any] | None:
    return one(store.db().execute("select * from centre_identity where id = 1"))


def create_identity(store: Handle, keys_sealed: str, now: float) -> dict[str, Any]:
    """The keys made once per deployment: the first made wins (two nodes starting at once)."""
    store.db().execute("insert into centre_identity (id, keys_sealed, created_at) "
                       "values (1, ?, ?) on conflict (id) do nothing", [keys_sealed, now])
    found = identity(store)
    assert found is not None
    return found


# ---------------------------------------------------------------- the directory


def add_centre(store: Handle, card: Mapping[str, Any], card_json: str, fingerprint: str,
               now: float) -> tuple[int, bool]:
    """(id, True if new). A card with a known signing key refreshes that centre's name,
    URL and languages, unless the key was revoked (then nothing changes)."""
    found = centre_by_sign_key(store, str(card["sign_key"]))
    values = [card["name"], card["country"], ",".join(card["languages"]), card["url"],
              card["box_key"], card_json]
    if found is not None:
        store.db().execute(
            "update centres set name = ?, country = ?, languages = ?, url = ?, box_key = ?, "
            "card = ? where id = ? and revoked_at is null", [*values, found["id"]])
        return int(found["id"]), False
    cursor = store.db().execute(
        "insert into centres (name, country, languages, url, box_key, card, sign_key, "
        "fingerprint, imported_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?) returning id",
        [*values, card["sign_key"], fingerprint, now])
    return int(cursor.fetchone()[0]), True


def centres(store: Handle, active_only: bool = False) -> list[dict[str, Any]]:
    where = "where revoked_at is null " if active_only else ""
    return dicts(store.db().execute(f"select * from centres {where}order by name, id"))


def centre(store: Handle, centre_id: int) -> dict[str, Any] | None:
    return one(store.db().execute("select * from centres where id = ?", [centre_id]))


def centre_by_sign_key(store: Handle, sign_key: str) -> dict[str, Any] | None:
    return one(store.db().execute("select * from centres where sign_key = ?", [sign_key]))


def revoke(store: Handle, centre_id: int, now: float) -> bool:
    cursor = store.db().execute(
        "update centres set revoked_at = ? where id = ? and revoked_at is null",
        [now, centre_id])
    return bool(cursor.rowcount)


# ---------------------------------------------------------------- referrals


def queue_message(store: Handle, msg_id: str, centre_id: int, referral_uid: str, kind: str,
                  envelope: str, now: float,
                  referral: Mapping[str, Any] | None = None,
                  event: tuple[int, Mapping[str, Any]] | None = None) -> None:
    """An envelope into the outbox; with the referral row it starts (an ``out`` one) and
    the case's history event, in the same transaction."""
    conn = store.db().conn
    with write_transaction(conn, lock=None):
        if referral is not None:
            names = list(referral)
            conn.execute(f"insert into centre_referrals ({', '.join(names)}) values "
                         f"({', '.join('?' * len(names))})", [referral[n] for n in names])
        if event is not None:
            insert_event(conn, event[0], event[1])
        conn.execute(
            "insert into centre_outbox (msg_id, centre_id, referral_uid, kind, envelope, "
            "status, attempts, next_attempt_at, created_at, updated_at) "
            "values (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)",
            [msg_id, centre_id, referral_uid, kind, envelope, now, now, now])


def referrals_of(store: Handle, complaint_id: int) -> list[dict[str, Any]]:
    """A case's referrals across centres (both ways), oldest first, with the centre's name
    and what their messages became."""
    conn = store.db().conn
    rows = dicts(conn.execute(
        "select r.*, c.name as centre_name, c.country as centre_country, "
        "c.revoked_at as centre_revoked_at from centre_referrals r "
        "join centres c on c.id = r.centre_id where r.complaint_id = ? "
        "order by r.created_at, r.id", [complaint_id]))
    for row in rows:
        row["messages"] = dicts(conn.execute(
            "select kind, status, attempts, error, created_at, sent_at, next_attempt_at "
            "from centre_outbox where referral_uid = ? and centre_id = ? order by id",
            [row["uid"], row["centre_id"]]))
    return rows


def referral(store: Handle, uid: str, direction: str) -> dict[str, Any] | None:
    return one(store.db().execute(
        "select * from centre_referrals where uid = ? and direction = ?", [uid, direction]))


def incoming_for(store: Handle, complaint_id: int) -> dict[str, Any] | None:
    """The referral that brought this case here from another centre, or None."""
    return one(store.db().execute(
        "select r.*, c.name as centre_name, c.box_key, c.revoked_at as centre_revoked_at "
        "from centre_referrals r join centres c on c.id = r.centre_id "
        "where r.complaint_id = ? and r.direction = 'in' order by r.id desc limit 1",
        [complaint_id]))


def referred_from(store: Handle, complaint_ids: Sequence[int]) -> dict[int, str]:
    """complaint id -> the name of the centre that referred it here (for the queue)."""
    if not complaint_ids:
        return {}
    rows = store.db().execute(
        "select r.complaint_id, c.name from centre_referrals r join centres c on "
        f"c.id = r.centre_id where r.direction = 'in' and r.complaint_id in "
        f"({', '.join('?' * len(complaint_ids))})", list(complaint_ids))
    return {int(r[0]): str(r[1]) for r in rows}


# ---------------------------------------------------------------- receiving


def seen(store: Handle, msg_id: str) -> bool:
    return store.db().execute("select 1 from centre_inbox where msg_id = ?",
                              [msg_id]).fetchone() is not None


class Replayed(Exception):
    """This message id was received already: nothing was stored again."""


def _inbox(conn: Any, msg_id: str, centre_id: int, kind: str, uid: str, now: float) -> None:
    try:
        conn.execute("insert into centre_inbox (msg_id, centre_id, kind, referral_uid, "
                     "received_at) values (?, ?, ?, ?, ?)", [msg_id, centre_id, kind, uid, now])
    except INTEGRITY_ERRORS:
        raise Replayed(msg_id) from None


def receive_referral(store: Handle, msg_id: str, centre_id: int, uid: str,
                     complaint: Mapping[str, Any], event: Mapping[str, Any],
                     referral: Mapping[str, Any], now: float) -> int:
    """The referred case stored here, with its ``in`` referral; ``Replayed`` if the message
    or the referral was received already (nothing stored). Returns the case's id."""
    conn = store.db().conn
    with write_transaction(conn):
        _inbox(conn, msg_id, centre_id, "referral", uid, now)
        if conn.execute("select 1 from centre_referrals where uid = ? and direction = 'in'",
                        [uid]).fetchone() is not None:
            raise Replayed(uid)  # the same referral under a new message id: still once
        names = [c for c in COMPLAINT_COLUMNS if c in complaint]
        complaint_id = int(conn.execute(
            f"insert into complaints ({', '.join(names)}) values "
            f"({', '.join('?' * len(names))}) returning id",
            [complaint[c] for c in names]).fetchone()[0])
        insert_event(conn, complaint_id, event)
        row = {**referral, "complaint_id": complaint_id}
        conn.execute(f"insert into centre_referrals ({', '.join(row)}) values "
                     f"({', '.join('?' * len(row))})", list(row.values()))
    return complaint_id


def receive_update(store: Handle, msg_id: str, centre_id: int, uid: str,
                   remote: Mapping[str, Any], event: Mapping[str, Any] | None,
                   complaint_fields: Mapping[str, Any], messages: Sequence[OutboxItem],
                   now: float) -> int | None:
    """An update from the centre a case was referred to: the referral's remote columns,
    the case's history and the migrant's SMS at once. The case's id; None when no such
    referral went to that centre; ``Replayed`` when the message was received already."""
    conn = store.db().conn
    with write_transaction(conn):
        found = one(conn.execute(
            "select id, complaint_id from centre_referrals where uid = ? and direction = 'out' "
            "and centre_id = ?", [uid, centre_id]))
        if found is None:
            return None
        _inbox(conn, msg_id, centre_id, "update", uid, now)
        if remote:
            conn.execute(f"update centre_referrals set {', '.join(f'{k} = ?' for k in remote)}"
                         ", updated_at = ? where id = ?",
                         [*remote.values(), now, found["id"]])
        complaint_id = int(found["complaint_id"])
        if complaint_fields:
            conn.execute(f"update complaints set "
                         f"{', '.join(f'{k} = ?' for k in complaint_fields)} where id = ?",
                         [*complaint_fields.values(), complaint_id])
        if event is not None:
            insert_event(conn, complaint_id, event)
        for item in messages:
            insert_outbox(conn, item, now)
    return complaint_id


# ---------------------------------------------------------------- the delivery queue


def claim(store: Handle, now: float, lease: float, limit: int,
          since: float | None = None) -> list[dict[str, Any]]:
    """Atomically take up to ``limit`` due envelopes for ``lease`` seconds (queued and due,
    or sending with a lease run out: its worker died), oldest first; with ``since``, none
    touched at or after it (tried already in this run)."""
    db = store.db()
    return dicts(db.execute(
        "update centre_outbox set status = 'sending', attempts = attempts + 1, "
        "updated_at = ?, lease_until = ? where id in (select id from centre_outbox "
        "where ((status = 'queued' and next_attempt_at <= ?) or "
        "(status = 'sending' and lease_until <= ?)) and updated_at < ? "
        f"order by next_attempt_at, id limit ?{skip_locked(db)}) returning *",
        [now, now + lease, now, now, now if since is None else since, limit]))


def finish(store: Handle, row_id: int, attempts: int, status: str, now: float,
           error: str | None = None, next_attempt_at: float | None = None) -> bool:
    """What became of a claimed envelope, unless another worker has taken it since."""
    cursor = store.db().execute(
        "update centre_outbox set status = ?, error = ?, updated_at = ?, lease_until = null, "
        "next_attempt_at = coalesce(?, next_attempt_at), "
        "sent_at = case when ? = 'sent' then ? else sent_at end "
        "where id = ? and attempts = ? and status = 'sending'",
        [status, error, now, next_attempt_at, status, now, row_id, attempts])
    return bool(cursor.rowcount)


def retry_now(store: Handle, centre_id: int, now: float) -> int:
    """Every waiting or refused envelope to this centre due now (an admin's "retry"), but
    not one emptied by an erasure."""
    cursor = store.db().execute(
        "update centre_outbox set status = 'queued', next_attempt_at = ?, updated_at = ? "
        "where centre_id = ? and status in ('queued', 'refused') "
        "and coalesce(error, '') != 'erased'", [now, now, centre_id])
    return int(cursor.rowcount or 0)


def links(store: Handle) -> list[dict[str, Any]]:
    """Each partner's link: last delivery, envelopes waiting, the oldest waiting, refused."""
    return dicts(store.db().execute(
        "select c.id, c.name, c.country, c.url, c.revoked_at, "
        "(select max(sent_at) from centre_outbox o where o.centre_id = c.id) as last_delivery, "
        "(select count(*) from centre_outbox o where o.centre_id = c.id and "
        " o.status in ('queued', 'sending')) as queued, "
        "(select min(created_at) from centre_outbox o where o.centre_id = c.id and "
        " o.status in ('queued', 'sending')) as oldest_undelivered, "
        "(select count(*) from centre_outbox o where o.centre_id = c.id and "
        " o.status = 'refused') as refused, "
        "(select o.error from centre_outbox o where o.centre_id = c.id and "
        " o.error is not null order by o.updated_at desc limit 1) as last_error "
        "from centres c order by c.name, c.id"))


def counts(store: Handle) -> dict[str, int]:
    """Envelopes by status (the bench checks none is sent twice)."""
    return {str(r[0]): int(r[1]) for r in store.db().execute(
        "select status, count(*) from centre_outbox group by status")}
