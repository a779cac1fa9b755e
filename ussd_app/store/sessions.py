"""USSD sessions and language choices, written in the hop that decides them.

Any hop of a session may land on any worker of any node, so nothing a later
hop needs may stay in one process's memory:

* **The start** (language, resume offer, content version) is the one input
  not in the provider's resent ``text``. Hop 1 computes it and commits it
  before answering with ``insert ... on conflict(id) do nothing returning``;
  a worker whose insert loses reads the winner's row and uses *its* start, so
  every worker replays the same start (first writer wins). On PostgreSQL the
  read of the phone (its language, its latest session) and that insert are
  one statement, unless the latest session may be resumed (``begin_session``,
  ``session_rows``).
* **Progress** (``last_text``, ``resumable``, ``ended``) is written in its hop,
  ordered by ``inputs``, the number of inputs in the resent text: a hop
  written late never undoes a newer one, whatever the hosts' clocks say, and
  ``ended`` is never unset. ``updated_at`` only dates a row for purges and
  resume windows.
* **A language choice** is written in its hop: the next session, on any node,
  starts in it.

On PostgreSQL, progress is committed with ``synchronous_commit = off``: the
hop does not wait for the WAL flush. What that risks: a crash of the database
server (not of a node) loses the last few hundred milliseconds of progress, so
a caller who redials at that moment is offered a resume from one screen
earlier. The start, language choices and complaints are committed durably.

Phone numbers are never stored here: sessions and language choices are keyed
by a keyed hash of the number (see ``privacy.py``). A phone whose data was
erased (``erased_phones``) gets nothing written back by a hop computed
before the erasure; the process that erased it writes nothing more of it for
``FORGET_SECONDS``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ussd_app import jobs
from ussd_app.store.analytics import fold_sessions
from ussd_app.store.base import (
    DB_ERRORS,
    Connections,
    Db,
    PgConnection,
    PgDb,
    connect_postgres,
    greatest,
    rowcount,
    write_transaction,
)
from ussd_app.store.prepared import run_prepared
from ussd_app.store.session_rows import (
    BEGIN_SQL,
    COLUMNS_SQL,
    INSERT_START,
    NOT_ERASED,
    PHONE_START_SQL,
    VALUES_SQL,
    FreshStarts,
    SessionRow,
    not_erased,
    split_begun,
)

log = logging.getLogger(__name__)

# What hop 1 gives: the start committed (or None: a session to replay first), the phone's
# language and its latest other session.
Begun = tuple[SessionRow | None, str | None, SessionRow | None]
FORGET_SECONDS = 900.0  # a session erased mid-call is not written back for this long


def m001_sessions(db: Db) -> None:
    db.table("phones").create({"key": str, "lang": str, "updated_at": float}, pk="key")
    db.table("ussd_sessions").create(
        {"id": str, "phone_key": str, "started_at": float, "updated_at": float,
         "version": str, "start": str, "last_text": str, "resumable": int, "ended": int},
        pk="id",
    )
    db.table("ussd_sessions").create_index(["phone_key", "updated_at"])


def m_sessions_002_inputs(db: Db) -> None:
    """How many inputs a session's stored progress holds: what orders its writes."""
    db.table("ussd_sessions").add_column("inputs", int)


def m_sessions_003_hot_updates(db: Db) -> None:
    """Progress no longer rewrites an index at every hop: ``updated_at`` (changed by
    every hop) is no longer indexed. Indexed instead: ``phone_key`` (a new session's
    resume lookup orders a phone's few rows itself) and ``started_at``, never changed
    (the purge bounds ``updated_at`` by it: a row's ``updated_at`` is never below its
    ``started_at``). On PostgreSQL pages keep a fifth free, so a hop's new row version
    fits beside the old one and touches no index (a HOT update; measured: 23 % less
    server CPU per progress write, README).
    """
    db.execute("drop index if exists idx_ussd_sessions_phone_key_updated_at")
    db.table("ussd_sessions").create_index(["phone_key"])
    db.table("ussd_sessions").create_index(["started_at"])
    if isinstance(db, PgDb):
        db.execute("alter table ussd_sessions set (fillfactor = 80)")


@lru_cache(maxsize=4)
def _upsert_progress(max_: str) -> str:
    """Progress, ordered by the number of inputs (never by a host's clock); ``ended`` is
    never unset; a row of another phone under the same id is left alone."""
    return (
        f"insert into ussd_sessions ({COLUMNS_SQL}) select {VALUES_SQL} {NOT_ERASED}"
        "on conflict(id) do update set "
        f"updated_at = {max_}(ussd_sessions.updated_at, excluded.updated_at), "
        "last_text = excluded.last_text, resumable = excluded.resumable, "
        f"ended = {max_}(ussd_sessions.ended, excluded.ended), inputs = excluded.inputs, "
        "path = excluded.path, node = excluded.node "
        "where excluded.inputs >= coalesce(ussd_sessions.inputs, 0) "
        "and ussd_sessions.phone_key = excluded.phone_key")


@lru_cache(maxsize=4)
def _upsert_phone(key: str, lang: str, at: str) -> str:
    """A phone's language unless it was erased after ``at`` (each argument a placeholder)."""
    return (f"insert into phones (key, lang, updated_at) select {key}, {lang}, {at} "
            f"where {not_erased(key, at)} on conflict(key) do update set lang = excluded.lang, "
            "updated_at = excluded.updated_at")


@lru_cache(maxsize=4)
def _update_progress(max_: str, with_language: bool) -> str:
    """Progress as an update of the started row (see ``save_session``), with the same
    order and ``ended`` rules as the upsert; with the phone's language (PostgreSQL: a
    data-modifying ``with``, run whatever the update finds) when ``with_language``.
    Parameters: id, phone key, time, last_text, resumable, ended, inputs, path, node
    (and the language, ?10)."""
    phone = f"with phone as ({_upsert_phone('?2', '?10', '?3')}) " if with_language else ""
    return (f"{phone}update ussd_sessions set updated_at = {max_}(updated_at, ?3), "
            f"last_text = ?4, resumable = ?5, ended = {max_}(ended, ?6), inputs = ?7, "
            "path = ?8, node = ?9 where id = ?1 and phone_key = ?2 "
            "and coalesce(inputs, 0) <= ?7 returning 1")


class Sessions(Connections):
    """USSD sessions and language choices: written in their hop, read by any worker."""

    def __init__(self, path: Path | str, flush_ms: int = 100, url: str | None = None) -> None:
        super().__init__(path, url)
        del flush_ms  # MIGRANTLINE_SESSION_FLUSH_MS: nothing is written behind any more
        # Phones whose data this process erased, and when: the erasing hop (and the rest of
        # its session) leaves nothing behind for FORGET_SECONDS.
        self._forgotten: dict[str, float] = {}
        self._writers = threading.local()
        self._checkpointer: jobs.Periodic | None = None
        self._pid = os.getpid()

    def _write(self, sql: str, params: Any) -> list[Any]:
        """One statement of a hop, committed before the hop is answered.

        SQLite: on a connection of its own that does not sleep on a busy database. The
        default busy handler sleeps 1, 2, 5... ms when another worker holds the write
        lock, which it does for tens of microseconds per hop: hops of two workers would
        keep waking late (measured: half the throughput). This one retries after 50 us,
        doubling to 2 ms, for at most the usual 10 s.
        """
        if self.postgres:
            return run_prepared(self._pg(), sql, params)
        conn: sqlite3.Connection | None = getattr(self._writers, "conn", None)
        if conn is None or getattr(self._writers, "pid", None) != os.getpid():
            conn = self._sqlite().conn
            conn.execute("PRAGMA busy_timeout = 0")
            # Its commits never fold the WAL into the database (an fsync of tens of ms
            # inside a hop, every few hundred hops): a background job does (checkpoint).
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._writers.conn, self._writers.pid = conn, os.getpid()
            self._ensure_checkpointer()
        wait, give_up = 0.00005, time.monotonic() + 10
        while True:
            try:
                # fetchall: an unfinished RETURNING statement keeps its transaction open.
                return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > give_up:
                    raise
            time.sleep(wait)
            wait = min(wait * 2, 0.002)

    def _pg(self) -> PgConnection:
        conn = self.db().conn
        assert isinstance(conn, PgConnection)
        return conn

    def _read(self, sql: str, params: Any) -> tuple[Any, ...] | None:
        """A hop's read: its first row, or None."""
        if self.postgres:
            rows = run_prepared(self._pg(), sql, params)
            return tuple(rows[0]) if rows else None
        row = self.db().execute(sql, params).fetchone()
        return tuple(row) if row else None

    def _write_progress(self, sql: str, params: Any) -> list[Any]:
        """A progress statement: on PostgreSQL on the ``synchronous_commit = off``
        connection (``_progress_connection``), on SQLite as any hop write."""
        if self.postgres:
            return run_prepared(self._progress_connection(), sql, params)
        return self._write(sql, params)

    def _progress_connection(self) -> PgConnection:
        """PostgreSQL: this thread's connection for progress, ``synchronous_commit = off``
        for its whole session (one round trip a hop instead of begin, set local, upsert,
        commit). Not waiting for the WAL flush: a crash of the database server may lose
        the last few hundred ms of progress (an older resume offer), never a complaint."""
        conn: PgConnection | None = getattr(self._writers, "pg", None)
        if conn is None or not conn.usable or getattr(self._writers, "pg_pid", None) != os.getpid():
            assert self.url is not None
            conn = connect_postgres(self.url)
            conn.execute("set synchronous_commit = off")
            self._writers.pg, self._writers.pg_pid = conn, os.getpid()
        return conn

    def _ensure_checkpointer(self) -> None:
        with self._lock:
            if self._checkpointer is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._checkpointer = jobs.every(1.0, self.checkpoint_wal, "wal-checkpoint",
                                                owner=str(self.path.parent))

    def checkpoint_wal(self) -> None:
        """Fold the WAL into the database without blocking writers (what a hop's own
        commit would otherwise do now and then, fsync included)."""
        self.db().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def flush(self) -> int:
        """Nothing to write: every hop commits its own writes (kept for callers that
        made sure buffered progress was in before reading the tables)."""
        return 0

    def close(self) -> None:
        """Nothing buffered to write at exit; the checkpoint job stops."""
        if self._checkpointer is not None:
            self._checkpointer.stop()

    # ------------------------------------------------------------ phones

    def phone_language(self, phone_key: str) -> str | None:
        row = self.db().execute("select lang from phones where key = ?", [phone_key]).fetchone()
        return str(row[0]) if row and row[0] is not None else None

    def set_phone_language(self, phone_key: str, lang: str, at: float | None = None) -> None:
        """Committed in the hop that chose it: the next session, on any node, starts in it."""
        if self.forgotten(phone_key):
            return
        at = time.time() if at is None else at
        self._write(_upsert_phone("?1", "?2", "?3"), [phone_key, lang, at])

    # ------------------------------------------------------------ USSD sessions

    def session(self, session_id: str) -> SessionRow | None:
        row = self._read(f"select {COLUMNS_SQL} from ussd_sessions where id = ?", [session_id])
        return SessionRow.from_tuple(row) if row else None

    def start_session(self, row: SessionRow) -> SessionRow:
        """Commit a session's start unless another worker did first; the start to use.

        The first writer wins: a worker whose insert finds the id taken reads the
        winner's row and replays its start. A row of another phone under the same id
        (a provider reusing ids) is not this caller's: theirs is used, not stored.
        """
        if self.forgotten(row.phone_key):
            return row
        won = self._write(INSERT_START, row.as_tuple())
        if won:
            return SessionRow.from_tuple(tuple(won[0]))
        return self._winner(row)

    def _winner(self, row: SessionRow) -> SessionRow:
        """After ``row``'s insert found its id taken: the stored start, another worker's
        that was first; ``row`` itself (stored nowhere) when the phone was erased just now
        or the id is another phone's."""
        winner = self.session(row.id)
        if winner is None or winner.phone_key != row.phone_key:
            return row
        return winner

    def save_session(self, row: SessionRow, lang: str | None = None) -> None:
        """Write a hop's progress (after the start is in: ``start_session``) and the
        phone's language when the hop chose one (``set_phone_language``'s write).

        Progress is an update of the row the start inserted: cheaper than the upsert
        (no conflict check, no erasure check: an erased phone's row is gone, so nothing
        is updated), which runs only when the update found nothing to change. On
        PostgreSQL a language goes in the same statement, committed durably; on SQLite
        it is its own statement (no round trip to save). A progress write that fails is
        logged (the screen is computed from the resent text); a language one raises.
        """
        if self.forgotten(row.phone_key):  # the hop that erased this phone's data
            return
        conn = self.db().conn
        max_ = greatest(conn)
        params = (row.id, row.phone_key, row.updated_at, row.last_text, int(row.resumable),
                  int(row.ended), row.inputs, row.path, row.node)
        # PostgreSQL, a language chosen: on this thread's durable connection (its commit).
        durable = conn if lang is not None and isinstance(conn, PgConnection) else None
        merged = durable is not None
        try:
            if durable is not None:
                done = run_prepared(durable, _update_progress(max_, True), (*params, lang))
            else:
                done = self._write_progress(_update_progress(max_, False), params)
            if not done:  # no row (purged, or never written) or an older hop's write
                self._write_progress(_upsert_progress(max_), row.as_tuple())
        except DB_ERRORS:
            if merged:
                raise
            # The screen is computed from the resent text: the hop is still answered.
            log.exception("could not write session progress")
        if lang is not None and not merged:
            self.set_phone_language(row.phone_key, lang, row.updated_at)

    def phone_start(self, phone_key: str, since: float,
                    exclude: str) -> tuple[str | None, SessionRow | None]:
        """What a new session starts from, in one round trip: the phone's language and its
        most recent other session updated after ``since`` (what it may resume)."""
        row = self._read(PHONE_START_SQL, [phone_key, since, exclude])
        assert row is not None  # a left join on one row: always one row
        lang = str(row[0]) if row[0] is not None else None
        return lang, (SessionRow.from_tuple(tuple(row[1:])) if row[1] is not None else None)

    def begin_session(self, starts: FreshStarts, session_id: str, phone_key: str, at: float,
                      version: str, since: float) -> Begun:
        """Hop 1: the start committed (``start_session``'s), unless the phone's latest
        session may be resumed: then None, the phone's language and that session, for
        the caller to replay it and commit the start it decides.

        PostgreSQL: one round trip (``session_rows.BEGIN_SQL``) instead of a read and an
        insert; SQLite: the two, which cost no round trip.
        """
        if not self.postgres or self.forgotten(phone_key):
            lang, latest = self.phone_start(phone_key, since, session_id)
            if latest is not None and latest.may_resume:
                return None, lang, latest
            return self.start_session(starts.row(session_id, phone_key, at, version, lang)), \
                lang, latest
        row = self._read(BEGIN_SQL, [session_id, phone_key, at, version, since,
                                     starts.by_lang_json, starts.default_json])
        assert row is not None  # left joins on one row: always one row
        lang, latest, inserted = split_begun(row)
        if inserted is not None:
            return inserted, lang, latest
        if latest is not None and latest.may_resume:
            return None, lang, latest
        # Not inserted, and not for a resume: the id was taken, or the phone just erased.
        return self._winner(starts.row(session_id, phone_key, at, version, lang)), lang, latest

    def forget_phones(self, phone_keys: Iterable[str]) -> None:
        """This process erased these phones' data: the rest of the erasing session (its
        hops answered here) writes nothing of theirs back for FORGET_SECONDS. Hops on
        other workers are stopped by ``erased_phones`` (see store/privacy.py)."""
        keys = set(phone_keys)
        if not keys:
            return
        with self._lock:
            now = time.time()
            if len(self._forgotten) > 10_000:
                self._forgotten = {k: at for k, at in self._forgotten.items()
                                   if at > now - FORGET_SECONDS}
            for key in keys:
                self._forgotten[key] = now

    def forgotten(self, phone_key: str) -> bool:
        """Whether this process erased the phone's data a moment ago (see forget_phones)."""
        with self._lock:
            at = self._forgotten.get(phone_key)
        return at is not None and at > time.time() - FORGET_SECONDS

    def purge_sessions(self, older_than: float, drafts_older_than: float | None = None) -> int:
        """Forget sessions nobody can resume any more; drafts (sealed text) sooner. Each
        is added to the menu counts (``menu_counts``: day, node, no id) in the
        transaction that deletes it, so it is counted once."""
        # started_at is indexed and never above updated_at (m_sessions_003_hot_updates)
        where = "(started_at < ? and updated_at < ?)"
        params: list[Any] = [older_than, older_than]
        if drafts_older_than is not None:
            where += " or (started_at < ? and updated_at < ? and last_text like 'sealed:%')"
            params += [drafts_older_than, drafts_older_than]
        conn = self.db().conn
        with write_transaction(conn, lock="ussd-sessions-purge"):
            fold_sessions(conn, conn.execute(
                f"select started_at, path, node from ussd_sessions where {where}",
                params).fetchall())
            return rowcount(conn.execute(f"delete from ussd_sessions where {where}", params))
