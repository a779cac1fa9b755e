"""Complaint recordings, expected and fetched: the SQL of ``ussd_app.voice_recordings``.

A provider tells us a recording exists (its URL) before we have its audio:
the row is written first (``expect``, once per idempotency ``key``), then a
worker claims it for a lease, downloads it and stores the audio. The row is
the queue and the archive at once, so nothing is lost between the two.

The URL and the audio arrive here already encrypted (``url_sealed``,
``audio_sealed``); the plain columns are what operators see and what the
worker schedules on. ``audio_sealed`` is the last column: listing queries
name their columns and never read it, so a row's audio (up to megabytes in
overflow pages) is only read by ``audio``.

Statuses: ``pending`` (not tried yet), ``fetching`` (claimed by a worker
until its lease runs out), ``failed`` (the last attempt failed, another is
scheduled), ``stored``, ``dead`` (given up, kept so operators know a message
was left), ``erased`` (the complaint's personal data was erased).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ussd_app.store.base import Conn, Db, Handle, dicts, one, skip_locked, write_transaction
from ussd_app.store.complaint_events import insert_event

STATUSES = ("pending", "fetching", "failed", "stored", "dead", "erased")
DUE = ("pending", "fetching", "failed")  # "fetching" only once its lease ran out
LISTED = ("id", "complaint_id", "reference", "provider", "status", "attempts", "duration",
          "bytes", "mimetype", "error", "created_at", "updated_at", "stored_at")
_LISTED_SQL = ", ".join(LISTED)


def m_voice_recordings_001(db: Db) -> None:
    db.table("voice_recordings").create(
        {"id": int, "key": str, "complaint_id": int, "reference": str, "provider": str,
         "url_sealed": str, "status": str, "attempts": int, "next_attempt_at": float,
         "lease": str, "duration": int, "bytes": int, "mimetype": str, "error": str,
         "created_at": float, "updated_at": float, "stored_at": float, "erased_at": float,
         "audio_sealed": bytes},
        pk="id", not_null={"key", "complaint_id", "reference", "provider", "status",
                           "attempts", "created_at", "updated_at"},
        defaults={"status": "pending", "attempts": 0},
        foreign_keys=[("complaint_id", "complaints", "id")])
    db.table("voice_recordings").create_index(["key"], unique=True)
    db.table("voice_recordings").create_index(["complaint_id"])
    db.table("voice_recordings").create_index(["status", "next_attempt_at"])


def m_voice_recordings_002_audio_key(db: Db) -> None:
    """Where a recording's sealed audio lives when it is in the shared bucket
    (``MIGRANTLINE_AUDIO_STORE=s3``): a random object key, never the reference."""
    db.table("voice_recordings").add_column("audio_key", str)


def insert(store: Handle, row: Mapping[str, Any]) -> bool:
    """Store an expected recording once per key; True if this call added it.

    Nothing is added for an unknown or erased complaint: audio arriving after
    the caller asked to be forgotten is not kept.
    """
    conn = store.db().conn
    with write_transaction(conn):
        found = conn.execute("select id from complaints where id = ? and erased_at is null",
                             [row["complaint_id"]]).fetchone()
        if found is None:
            return False
        cursor = conn.execute(
            "insert into voice_recordings (key, complaint_id, reference, provider, url_sealed, "
            "status, attempts, next_attempt_at, duration, created_at, updated_at) "
            "values (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?) on conflict(key) do nothing",
            [row["key"], row["complaint_id"], row["reference"], row["provider"],
             row["url_sealed"], row["created_at"], row.get("duration"), row["created_at"],
             row["created_at"]])
        return bool(cursor.rowcount)


def claim(store: Handle, now: float, lease: float, token: str,
          limit: int) -> list[dict[str, Any]]:
    """Atomically take up to ``limit`` due recordings for ``lease`` seconds.

    A worker that dies mid-download leaves its rows ``fetching``; once the
    lease is over (``next_attempt_at``) another worker takes them again.
    On PostgreSQL rows held by another claimer are skipped (``SKIP LOCKED``).
    """
    db = store.db()
    cursor = db.execute(
        "update voice_recordings set status = 'fetching', attempts = attempts + 1, lease = ?, "
        "updated_at = ?, next_attempt_at = ? where id in (select id from voice_recordings "
        f"where status in ({', '.join('?' * len(DUE))}) and next_attempt_at <= ? "
        f"order by next_attempt_at, id limit ?{skip_locked(db)}) "
        "returning id, key, complaint_id, reference, provider, url_sealed, attempts, duration",
        [token, now, now + lease, *DUE, now, limit])
    return dicts(cursor)


def finish(store: Handle, recording_id: int, token: str, fields: Mapping[str, Any],
           event: Mapping[str, Any] | None = None) -> bool:
    """Record what became of a claimed recording (and a history event), all or nothing.

    Only while this worker's lease holds: if the lease ran out and another
    worker took the row, or the complaint was erased meanwhile, nothing changes.
    """
    allowed = {"status", "error", "next_attempt_at", "duration", "bytes", "mimetype",
               "stored_at", "audio_sealed", "audio_key", "updated_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not recording columns: {sorted(unknown)}")
    conn = store.db().conn
    with write_transaction(conn):
        cursor = conn.execute(
            f"update voice_recordings set {', '.join(f'{c} = ?' for c in fields)}, "
            "lease = null where id = ? and lease = ? and status = 'fetching'",
            [*fields.values(), recording_id, token])
        if not cursor.rowcount:
            return False
        if event is not None:
            complaint_id = conn.execute("select complaint_id from voice_recordings "
                                        "where id = ?", [recording_id]).fetchone()[0]
            insert_event(conn, int(complaint_id), event)
        return True


def for_complaint(store: Handle, complaint_id: int) -> list[dict[str, Any]]:
    cursor = store.db().execute(
        f"select {_LISTED_SQL} from voice_recordings where complaint_id = ? "
        "order by created_at, id", [complaint_id])
    return dicts(cursor)


def by_id(store: Handle, recording_id: int) -> dict[str, Any] | None:
    return one(store.db().execute(
        f"select {_LISTED_SQL} from voice_recordings where id = ?", [recording_id]))


def sealed_audio(store: Handle, recording_id: int) -> tuple[str, bytes | str, str] | None:
    """(key, sealed audio or its object key in the audio store, mimetype) of a stored
    recording, else None."""
    row = store.db().execute(
        "select key, audio_sealed, mimetype, audio_key from voice_recordings where id = ? "
        "and status = 'stored' and (audio_sealed is not null or audio_key is not null)",
        [recording_id]).fetchone()
    if row is None:
        return None
    audio = bytes(row[1]) if row[1] is not None else str(row[3])
    return str(row[0]), audio, str(row[2] or "")


def erased_objects(store: Handle, limit: int = 100) -> list[tuple[int, str]]:
    """(id, object key) of erased recordings whose audio is still in the audio store."""
    return [(int(r[0]), str(r[1])) for r in store.db().execute(
        "select id, audio_key from voice_recordings where status = 'erased' "
        "and audio_key is not null order by id limit ?", [limit]).fetchall()]


def object_gone(store: Handle, recording_id: int) -> None:
    store.db().execute("update voice_recordings set audio_key = null where id = ? "
                       "and status = 'erased'", [recording_id])


def objects_held(store: Handle) -> int:
    """How many recordings have their audio in the audio store (not in the database)."""
    return int(store.db().execute("select count(*) from voice_recordings "
                                  "where audio_key is not null").fetchone()[0])


def counts(store: Handle) -> dict[str, int]:
    return dict(store.db().execute(
        "select status, count(*) from voice_recordings group by status").fetchall())


def erase_for_complaint(conn: Conn, complaint_id: int, at: float) -> None:
    """The audio and its URL go; the row stays (as ``erased``) so that a provider's late
    retry of the same callback, or a worker holding a lease, cannot bring it back. Audio
    in the shared bucket: ``audio_key`` stays until ``VoiceRecordings.delete_erased``
    has deleted the object (it retries while the bucket is down)."""
    conn.execute(
        "update voice_recordings set status = 'erased', audio_sealed = null, url_sealed = null, "
        "lease = null, error = null, erased_at = ?, updated_at = ? "
        "where complaint_id = ? and status != 'erased'", [at, at, complaint_id])

