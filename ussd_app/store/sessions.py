"""USSD sessions and language choices, written behind the USSD hot path.

SQLite in WAL mode is the embedded default. It takes one writer at a time,
so the USSD hot path never writes inline: session progress and language
choices go into a per-process buffer that a background job flushes in one
short transaction every ``flush_ms``. A hop is recomputed from the ``text``
the provider resends, so the buffer only has to carry what a *redial* needs
(resume, language), and losing its last ~100 ms in a crash costs a caller at
most the offer to resume from one screen earlier. What must never be lost (a
complaint) is written synchronously by its own functions.

Phone numbers are never stored here: sessions and language choices are keyed
by a keyed hash of the number (see ``privacy.py``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ussd_app import jobs
from ussd_app.store.base import Connections, Db, rowcount, write_transaction

log = logging.getLogger(__name__)

FORGET_SECONDS = 900.0  # a session erased mid-call is not written back for this long


def m001_sessions(db: Db) -> None:
    db.table("phones").create({"key": str, "lang": str, "updated_at": float}, pk="key")
    db.table("ussd_sessions").create(
        {"id": str, "phone_key": str, "started_at": float, "updated_at": float,
         "version": str, "start": str, "last_text": str, "resumable": int, "ended": int},
        pk="id",
    )
    db.table("ussd_sessions").create_index(["phone_key", "updated_at"])


@dataclass(frozen=True)
class SessionRow:
    """One USSD session: how it started (JSON, written once) and its inputs so far.

    The state itself is not stored: it is the start replayed through
    ``last_text``, which is how every hop computes it anyway.
    """

    id: str
    phone_key: str
    started_at: float
    updated_at: float
    version: str
    start: str
    last_text: str = ""
    resumable: bool = False
    ended: bool = False

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.id, self.phone_key, self.started_at, self.updated_at, self.version,
                self.start, self.last_text, int(self.resumable), int(self.ended))

    @classmethod
    def from_tuple(cls, row: tuple[Any, ...]) -> SessionRow:
        (id_, phone_key, started_at, updated_at, version, start, last_text, resumable,
         ended) = row
        return cls(id_, phone_key, started_at, updated_at, version, start, last_text or "",
                   bool(resumable), bool(ended))


_SESSION_COLUMNS = ("id", "phone_key", "started_at", "updated_at", "version", "start",
                    "last_text", "resumable", "ended")
_COLUMNS_SQL = ", ".join(_SESSION_COLUMNS)
# A row buffered before its phone's data was erased (by this or another process) is not
# written: ?2 is its phone key, ?4 the time of its hop (see store/privacy.py).
_UPSERT_SESSION = (
    f"insert into ussd_sessions ({_COLUMNS_SQL}) "
    f"select {', '.join(f'?{i}' for i in range(1, 10))} where not exists "
    "(select 1 from erased_phones where phone_key = ?2 and at >= ?4) "
    "on conflict(id) do update set updated_at = excluded.updated_at, "
    "last_text = excluded.last_text, resumable = excluded.resumable, ended = excluded.ended "
    # Workers flush their own buffers: an older hop flushed late never undoes a newer one.
    "where excluded.updated_at >= ussd_sessions.updated_at")
_UPSERT_PHONE = ("insert into phones (key, lang, updated_at) select ?1, ?2, ?3 where not exists "
                 "(select 1 from erased_phones where phone_key = ?1 and at >= ?3) "
                 "on conflict(key) do update set lang = excluded.lang, "
                 "updated_at = excluded.updated_at where excluded.updated_at >= phones.updated_at")


class Sessions(Connections):
    """The write-behind buffer of USSD sessions and language choices, and their reads."""

    def __init__(self, path: Path | str, flush_ms: int = 100, url: str | None = None) -> None:
        super().__init__(path, url)
        self.flush_interval = max(flush_ms, 1) / 1000
        self._sessions: dict[str, SessionRow] = {}
        self._latest: dict[str, SessionRow] = {}  # phone key -> its newest buffered session
        self._languages: dict[str, tuple[str, float]] = {}
        # What a flush is writing stays readable until it is committed: a hop (or a redial
        # looking for its dropped session) in between must not find it in neither place.
        self._flushing: dict[str, tuple[str, float]] = {}  # languages being written
        self._flushing_sessions: dict[str, SessionRow] = {}
        self._flushing_latest: dict[str, SessionRow] = {}
        # Phones whose data this process erased, and when: the erasing hop (and the rest of
        # its session) leaves nothing behind for FORGET_SECONDS.
        self._forgotten: dict[str, float] = {}
        self._flusher: jobs.Periodic | None = None
        self._pid = os.getpid()

    # ------------------------------------------------------------ write-behind

    def _ensure_flusher(self) -> None:
        if self._flusher is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._flusher is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._flusher = jobs.every(self.flush_interval, self.flush, "session-flush",
                                           owner=str(self.path.parent))

    def flush(self) -> int:
        """Write buffered session progress and language choices; return rows written."""
        with self._lock:
            sessions, self._sessions = self._sessions, {}
            languages, self._languages = self._languages, {}
            latest, self._latest = self._latest, {}
            # Read until committed: a caller's language, a session or a dropped session's
            # resume offer must not vanish between the buffer and the table.
            self._flushing = languages
            self._flushing_sessions, self._flushing_latest = dict(sessions), latest
        if not sessions and not languages:
            return 0
        try:
            conn = self.db().conn
            with write_transaction(conn):  # one short transaction for the whole batch
                conn.executemany(_UPSERT_SESSION, [s.as_tuple() for s in sessions.values()])
                conn.executemany(_UPSERT_PHONE,
                                 [(k, lang, at) for k, (lang, at) in languages.items()])
        except sqlite3.Error:
            log.exception("could not write session progress; will retry")
            with self._lock:  # put back what is not newer in the buffer
                for key, row in sessions.items():
                    self._sessions.setdefault(key, row)
                    self._latest.setdefault(row.phone_key, row)
                for key, value in languages.items():
                    self._languages.setdefault(key, value)
                self._end_flush()
            return 0
        with self._lock:
            self._end_flush()
        return len(sessions) + len(languages)

    def _end_flush(self) -> None:
        self._flushing, self._flushing_sessions, self._flushing_latest = {}, {}, {}

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.stop()
        self.flush()

    # ------------------------------------------------------------ phones

    def phone_language(self, phone_key: str) -> str | None:
        with self._lock:
            buffered = self._languages.get(phone_key) or self._flushing.get(phone_key)
        if buffered:
            return buffered[0]
        row = self.db().execute("select lang from phones where key = ?", [phone_key]).fetchone()
        return str(row[0]) if row and row[0] is not None else None

    def set_phone_language(self, phone_key: str, lang: str) -> None:
        self._ensure_flusher()
        with self._lock:
            if self._is_forgotten(phone_key):
                return
            self._languages[phone_key] = (lang, time.time())

    # ------------------------------------------------------------ USSD sessions

    def session(self, session_id: str) -> SessionRow | None:
        with self._lock:
            buffered = self._sessions.get(session_id) or self._flushing_sessions.get(session_id)
        if buffered is not None:
            return buffered
        row = self.db().execute(f"select {_COLUMNS_SQL} from ussd_sessions where id = ?",
                                [session_id]).fetchone()
        return SessionRow.from_tuple(tuple(row)) if row else None

    def save_session(self, row: SessionRow) -> None:
        self._ensure_flusher()
        with self._lock:
            if self._is_forgotten(row.phone_key):  # the hop that erased this phone's data
                return
            self._sessions[row.id] = row
            self._latest[row.phone_key] = row

    def latest_session(self, phone_key: str, since: float, exclude: str) -> SessionRow | None:
        """The phone's most recent other session updated after ``since``."""
        with self._lock:
            newest = self._latest.get(phone_key) or self._flushing_latest.get(phone_key)
        buffered = [newest] if newest and newest.id != exclude and newest.updated_at >= since \
            else []
        row = self.db().execute(
            f"select {_COLUMNS_SQL} from ussd_sessions where phone_key = ? and updated_at >= ? "
            "and id != ? "
            "order by updated_at desc limit 1", [phone_key, since, exclude]).fetchone()
        found = [SessionRow.from_tuple(tuple(row))] if row else []
        candidates = buffered + found
        return max(candidates, key=lambda s: s.updated_at) if candidates else None

    def forget_phones(self, phone_keys: Iterable[str]) -> None:
        """Drop what the write-behind buffer holds for these phones (their data is erased):
        a flush must not write back a session or a language that was just deleted."""
        keys = set(phone_keys)
        if not keys:
            return
        with self._lock:
            for buffer in (self._sessions, self._latest, self._flushing_sessions,
                           self._flushing_latest):
                for name in [k for k, row in buffer.items() if row.phone_key in keys]:
                    del buffer[name]
            now = time.time()
            if len(self._forgotten) > 10_000:
                self._forgotten = {k: at for k, at in self._forgotten.items()
                                   if at > now - FORGET_SECONDS}
            for key in keys:
                self._languages.pop(key, None)
                self._forgotten[key] = now

    def forgotten(self, phone_key: str) -> bool:
        """Whether this process erased the phone's data a moment ago (see forget_phones)."""
        with self._lock:
            return self._is_forgotten(phone_key)

    def _is_forgotten(self, phone_key: str) -> bool:
        """Under ``self._lock``."""
        at = self._forgotten.get(phone_key)
        return at is not None and at > time.time() - FORGET_SECONDS

    def purge_sessions(self, older_than: float, drafts_older_than: float | None = None) -> int:
        """Forget sessions nobody can resume any more; drafts (sealed text) sooner."""
        self.flush()
        count = rowcount(self.db().execute("delete from ussd_sessions where updated_at < ?",
                                           [older_than]))
        if drafts_older_than is not None:
            count += rowcount(self.db().execute(
                "delete from ussd_sessions where updated_at < ? and last_text like 'sealed:%'",
                [drafts_older_than]))
        return count
