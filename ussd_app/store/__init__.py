"""All SQL lives here: the one module that talks to the database.

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
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from ussd_app import jobs

log = logging.getLogger(__name__)

migrations = Migrations("migrantline")
FORGET_SECONDS = 900.0  # a session erased mid-call is not written back for this long


@migrations()
def m001_sessions(db: Database) -> None:
    db["phones"].create({"key": str, "lang": str, "updated_at": float}, pk="key")
    db["ussd_sessions"].create(
        {"id": str, "phone_key": str, "started_at": float, "updated_at": float,
         "version": str, "start": str, "last_text": str, "resumable": int, "ended": int},
        pk="id",
    )
    db["ussd_sessions"].create_index(["phone_key", "updated_at"])


@migrations()
def m002_outbox(db: Database) -> None:
    """Every SMS the service sends is stored here first (the SMS channel delivers it)."""
    db["outbox"].create(
        {"id": int, "key": str, "channel": str, "to_sealed": str, "lang": str, "body": str,
         "encoding": str, "segments": int, "status": str, "attempts": int,
         "created_at": float, "updated_at": float, "next_attempt_at": float,
         "provider_id": str, "error": str},
        pk="id", not_null={"key", "channel", "to_sealed", "body", "status"},
        defaults={"status": "queued", "attempts": 0},
    )
    db["outbox"].create_index(["key"], unique=True)
    db["outbox"].create_index(["status", "next_attempt_at"])


@migrations()
def m_health_001(db: Database) -> None:
    """One row /healthz rewrites: proof that the database takes writes (see ``write_probe``)."""
    db["health_probe"].create({"id": int, "at": float, "pid": int}, pk="id")


@migrations()
def m_keys_001(db: Database) -> None:
    """Which secret key sealed this data: a keyed hash of a constant (see ``rekey.py``)."""
    db["key_check"].create({"id": int, "fingerprint": str, "set_at": float}, pk="id")


PROBE_SECONDS = 5.0  # /healthz is polled: the write probe runs at most this often
PROBE_TIMEOUT = 0.5  # a probe waits no longer than this for the write lock


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


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """The rows a query returned, as dicts keyed by column name."""
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT: one writer, all or nothing.

    Connections here run in autocommit mode (``isolation_level=None``), where
    ``with conn:`` opens no transaction at all; this does, and takes the write
    lock up front so a concurrent writer waits instead of failing midway.
    """
    conn.execute("begin immediate")
    try:
        yield
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("commit")


class Store:
    """The database of one deployment, safe to share between threads."""

    def __init__(self, path: Path | str, flush_ms: int = 100):
        self.path = Path(path)
        self.flush_interval = max(flush_ms, 1) / 1000
        self._local = threading.local()
        self._lock = threading.Lock()
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
        self._probe: tuple[float, str | None] | None = None

    # ------------------------------------------------------------ connections

    def db(self) -> Database:
        """One connection per thread (sqlite3 objects are not thread-safe)."""
        db = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(str(self.path), timeout=10, isolation_level=None,
                                   check_same_thread=True)
            db = Database(conn)
            db.execute("PRAGMA busy_timeout = 10000")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            # Whatever is deleted or rewritten (a draft replaced, a session purged) is
            # zeroed in the file, not left in free pages for a copy of the folder to find.
            db.execute("PRAGMA secure_delete = ON")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def migrate(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Owner-only before SQLite opens it: its WAL and SHM files take the database's mode.
        # Only a new file is opened here: closing any descriptor of a database this process
        # has open drops SQLite's POSIX locks on it, and another process could then take
        # itself for the last user and delete the WAL (found with two stores in one process).
        try:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        for path in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            if path.exists() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
        db = self.db()
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.enable_wal()
        migrations.apply(db)

    def health(self) -> dict[str, Any]:
        try:
            db = self.db()
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            applied = [m.name for m in migrations.applied(db)]
            pending = [m.name for m in migrations.pending(db)]
            return {"status": "ok" if not pending else "migrations pending",
                    "journal_mode": mode, "migrations": len(applied), "pending": pending}
        except sqlite3.Error as exc:
            return {"status": "error", "error": str(exc)}

    def write_probe(self) -> str | None:
        """Why the database cannot take a write now (None when it can); cached a few seconds.

        A real write (an UPSERT of one row, committed) on a connection of its
        own, waiting at most ``PROBE_TIMEOUT`` for the lock: a read-only file, a
        full disk or a writer holding the lock too long all show, and a monitor
        polling /healthz never waits long. The result is kept ``PROBE_SECONDS``.
        """
        now = time.monotonic()
        with self._lock:
            cached = self._probe
            if cached is not None and now - cached[0] < PROBE_SECONDS:
                return cached[1]
        problem: str | None = None
        try:
            conn = sqlite3.connect(str(self.path), timeout=PROBE_TIMEOUT, isolation_level=None)
            try:
                conn.execute("insert into health_probe (id, at, pid) values (1, ?, ?) "
                             "on conflict(id) do update set at = excluded.at, pid = excluded.pid",
                             [time.time(), os.getpid()])
            finally:
                conn.close()
        except sqlite3.Error as exc:
            problem = f"the database cannot be written: {exc}"
        with self._lock:
            self._probe = (time.monotonic(), problem)
        return problem

    def oldest_unsent(self) -> float | None:
        """When the oldest message still waiting to be sent (queued or sending) was stored."""
        row = self.db().execute("select min(created_at) from outbox "
                                "where status in ('queued', 'sending')").fetchone()
        return float(row[0]) if row and row[0] is not None else None

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
        return row[0] if row else None

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

    # ------------------------------------------------------------ outbox

    def enqueue_sms(self, key: str, to_sealed: str, lang: str, body: str, encoding: str,
                    segments: int, phone_key: str | None = None) -> bool:
        """Store an SMS for sending, once per key; True if this call added it.

        Written at once, not buffered: the caller is told it is on its way.
        ``body`` arrives sealed (``privacy.seal_text``); ``phone_key`` links it to
        the phone so that erasing the phone's data erases it too.
        """
        return _insert_outbox(self.db().conn, OutboxItem(key, to_sealed, lang, body, encoding,
                                                         segments, phone_key=phone_key),
                              time.time())

    def outbox(self, status: str | None = None) -> list[dict[str, Any]]:
        sql = "select * from outbox" + (" where status = ?" if status else "") + " order by id"
        cursor = self.db().execute(sql, [status] if status else [])
        return _dicts(cursor)

    def outbox_by_key_prefix(self, prefix: str) -> list[dict[str, Any]]:
        """Messages whose idempotency key starts with ``prefix`` (what one inbound caused)."""
        cursor = self.db().execute("select * from outbox where key >= ? and key < ? order by id",
                                   [prefix, prefix + "\uffff"])
        return _dicts(cursor)

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
        cursor = self.db().execute("delete from ussd_sessions where updated_at < ?",
                                   [older_than])
        count = int(cursor.rowcount or 0)
        if drafts_older_than is not None:
            cursor = self.db().execute(
                "delete from ussd_sessions where updated_at < ? and last_text like 'sealed:%'",
                [drafts_older_than])
            count += int(cursor.rowcount or 0)
        return count


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


def open_store(data_dir: Path, flush_ms: int = 100) -> Store:
    store = Store(data_dir / "migrantline.db", flush_ms=flush_ms)
    store.migrate()
    return store


# ---------------------------------------------------------------- agency registry
# The recruitment-agency registry from content/agencies.csv (see agencies.py): one row
# per agency keyed by its normalised licence number, replaced whole in one transaction
# when a content tree with a new registry file is loaded.

if TYPE_CHECKING:  # kept in this section: names only the registry's signatures use
    from collections.abc import Mapping, Sequence

AGENCY_COLUMNS = ("licence_key", "licence", "licence_digits", "name", "other_names",
                  "country", "status", "expires", "source", "data_date")
_AGENCY_SQL = ", ".join(AGENCY_COLUMNS)


@migrations()
def m_agencies_001(db: Database) -> None:
    db["agencies"].create(
        {"licence_key": str, "licence": str, "licence_digits": str, "name": str,
         "other_names": str, "country": str, "status": str, "expires": str, "source": str,
         "data_date": str},
        pk="licence_key", not_null={"licence", "name", "country", "status", "source",
                                    "data_date"})
    db["agencies"].create_index(["licence_digits"])
    db["agency_registry"].create({"id": int, "version": str, "file": str, "count": int,
                                  "loaded_at": float}, pk="id")


def agency_registry_version(store: Store) -> str | None:
    """The version (a hash of the file) of the registry in the database, if any."""
    row = store.db().execute("select version from agency_registry where id = 1").fetchone()
    return row[0] if row else None


def replace_agencies(store: Store, rows: Iterable[Mapping[str, Any]], version: str,
                     file: str) -> int:
    """Swap the whole registry for ``rows``; readers see the old one until it commits."""
    records = [tuple(r[c] for c in AGENCY_COLUMNS) for r in rows]
    conn = store.db().conn
    with write_transaction(conn):
        # Workers load the same file at the same time: the first one stores it.
        row = conn.execute("select version from agency_registry where id = 1").fetchone()
        if row and row[0] == version:
            return len(records)
        conn.execute("delete from agencies")
        conn.executemany(f"insert into agencies ({_AGENCY_SQL}) values "
                         f"({', '.join('?' * len(AGENCY_COLUMNS))})", records)
        conn.execute("insert into agency_registry (id, version, file, count, loaded_at) "
                     "values (1, ?, ?, ?, ?) on conflict(id) do update set "
                     "version = excluded.version, file = excluded.file, "
                     "count = excluded.count, loaded_at = excluded.loaded_at",
                     [version, file, len(records), time.time()])
    return len(records)


def agency_names(store: Store) -> list[tuple[str, str, str]]:
    """(licence key, name, other names joined by |) of every agency, for the name index."""
    return store.db().execute(
        "select licence_key, name, other_names from agencies order by rowid").fetchall()


def agencies_by_licence_key(store: Store, keys: Sequence[str]) -> list[dict[str, Any]]:
    """The agencies with these normalised licence numbers (primary key look-ups)."""
    if not keys:
        return []
    cursor = store.db().execute(
        f"select {_AGENCY_SQL} from agencies where licence_key in "
        f"({', '.join('?' * len(keys))})", list(keys))
    return [dict(zip(AGENCY_COLUMNS, row, strict=True)) for row in cursor]


def agencies_by_licence_digits(store: Store, digits: str, limit: int) -> list[dict[str, Any]]:
    """Agencies whose licence number has exactly these digits (what a keypad types)."""
    cursor = store.db().execute(
        f"select {_AGENCY_SQL} from agencies where licence_digits = ? order by rowid limit ?",
        [digits, limit])
    return [dict(zip(AGENCY_COLUMNS, row, strict=True)) for row in cursor]


# ---------------------------------------------------------------- SMS channel
# Conversations (the engine State per phone key, as JSON), inbound message ids claimed
# once, opt-outs, and the outbox worker's claims (see sms.py and outbox.py). The USSD hot
# path shares this database: every function here is one short transaction.

OUTBOX_DONE = ("sent", "delivered", "failed", "dead", "suppressed")


@migrations()
def m_sms_001(db: Database) -> None:
    db["sms_conversations"].create({"phone_key": str, "version": str, "state": str,
                                    "updated_at": float}, pk="phone_key")
    db["sms_inbound"].create({"provider": str, "message_id": str, "phone_key": str,
                              "digest": str, "received_at": float},
                             pk=("provider", "message_id"))
    db["sms_inbound"].create_index(["phone_key", "received_at"])
    db["sms_optouts"].create({"phone_key": str, "stopped_at": float}, pk="phone_key")
    db["outbox"].add_column("kind", str)  # "reply": answers a message, sent despite STOP
    db["outbox"].create_index(["provider_id"])


@dataclass(frozen=True)
class OutboxItem:
    """One SMS to store for sending; ``key`` makes a second enqueue of it a no-op."""

    key: str
    to_sealed: str
    lang: str
    body: str
    encoding: str
    segments: int
    kind: str = "message"
    phone_key: str | None = None  # whose data it is: erased with the phone's or case's


@dataclass(frozen=True)
class Conversation:
    version: str
    state: str  # engine State as JSON
    updated_at: float


def inbound_seen(store: Store, provider: str, message_id: str) -> bool:
    return store.db().execute("select 1 from sms_inbound where provider = ? and message_id = ?",
                              [provider, message_id]).fetchone() is not None


def recent_inbound(store: Store, phone_key: str, since: float) -> list[tuple[str, float]]:
    """(digest, time) of the phone's messages received after ``since``, newest first."""
    return [(row[0], row[1]) for row in store.db().execute(
        "select digest, received_at from sms_inbound where phone_key = ? and received_at >= ? "
        "order by received_at desc limit 200", [phone_key, since])]


def purge_sms_conversations(store: Store, older_than: float,
                            drafts_older_than: float) -> int:
    """Forget conversations past their time; those holding a draft (sealed) sooner."""
    cursor = store.db().execute(
        "delete from sms_conversations where updated_at < ? or "
        "(updated_at < ? and state like 'sealed:%')", [older_than, drafts_older_than])
    return int(cursor.rowcount or 0)


def sms_conversation(store: Store, phone_key: str) -> Conversation | None:
    row = store.db().execute("select version, state, updated_at from sms_conversations "
                             "where phone_key = ?", [phone_key]).fetchone()
    return Conversation(*row) if row else None


def is_opted_out(store: Store, phone_key: str) -> bool:
    return store.db().execute("select 1 from sms_optouts where phone_key = ?",
                              [phone_key]).fetchone() is not None


def record_inbound(store: Store, provider: str, message_id: str, phone_key: str, digest: str,
                   now: float, conversation: Conversation | None = None,
                   opt_out: bool | None = None,
                   replies: Sequence[OutboxItem] = ()) -> bool:
    """Claim an inbound message and commit all its effects at once; False if already seen.

    The claim and the effects (conversation, opt-out, replies) share one
    transaction: two deliveries of the same message cannot both reply, and a
    crash before the commit leaves the message unclaimed for the provider's retry.
    """
    conn = store.db().conn
    conn.execute("begin immediate")
    try:
        cursor = conn.execute(
            "insert into sms_inbound (provider, message_id, phone_key, digest, received_at) "
            "values (?, ?, ?, ?, ?) on conflict do nothing",
            [provider, message_id, phone_key, digest, now])
        if not cursor.rowcount:
            conn.execute("rollback")
            return False
        if conversation is not None:
            conn.execute("insert into sms_conversations (phone_key, version, state, updated_at) "
                         "values (?, ?, ?, ?) on conflict(phone_key) do update set "
                         "version = excluded.version, state = excluded.state, "
                         "updated_at = excluded.updated_at",
                         [phone_key, conversation.version, conversation.state,
                          conversation.updated_at])
        if opt_out is True:
            conn.execute("insert into sms_optouts (phone_key, stopped_at) values (?, ?) "
                         "on conflict do nothing", [phone_key, now])
        elif opt_out is False:
            conn.execute("delete from sms_optouts where phone_key = ?", [phone_key])
        for item in replies:
            _insert_outbox(conn, item, now)
        conn.execute("commit")
        return True
    except BaseException:
        conn.execute("rollback")
        raise


def enqueue(store: Store, item: OutboxItem, now: float | None = None) -> bool:
    """Store one SMS for sending (once per key); True if this call added it."""
    return _insert_outbox(store.db().conn, item, time.time() if now is None else now)


def _insert_outbox(conn: sqlite3.Connection, item: OutboxItem, now: float) -> bool:
    cursor = conn.execute(
        "insert into outbox (key, channel, to_sealed, lang, body, encoding, segments, kind, "
        "phone_key, status, attempts, created_at, updated_at, next_attempt_at) "
        "values (?, 'sms', ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?) "
        "on conflict(key) do nothing",
        [item.key, item.to_sealed, item.lang, item.body, item.encoding, item.segments,
         item.kind, item.phone_key, now, now, now])
    return bool(cursor.rowcount)


def claim_outbox(store: Store, now: float, lease: float, limit: int) -> list[dict[str, Any]]:
    """Atomically take up to ``limit`` due messages for ``lease`` seconds.

    A message stays ``sending`` while a worker holds it; if that worker dies,
    the lease runs out and another worker takes it again.
    """
    cursor = store.db().execute(
        "update outbox set status = 'sending', attempts = attempts + 1, updated_at = ?, "
        "next_attempt_at = ? where id in (select id from outbox where status in "
        "('queued', 'sending') and next_attempt_at <= ? and provider_id is null "
        "order by next_attempt_at, id limit ?) returning *", [now, now + lease, now, limit])
    return _dicts(cursor)


def record_sent(store: Store, sent: Sequence[tuple[int, str]]) -> int:
    """Mark messages the provider took (id, provider's id) as sent, in one transaction.

    For the outbox worker's journal: a provider's answer written down before a
    crash (or a locked database) kept it from the ``sent`` commit. A message
    already sent, delivered or failed is left as it is.
    """
    conn = store.db().conn
    count = 0
    with write_transaction(conn):
        for message_id, provider_id in sent:
            cursor = conn.execute(
                "update outbox set status = 'sent', provider_id = ?, error = null, "
                "updated_at = ? where id = ? and status in ('queued', 'sending')",
                [provider_id, time.time(), message_id])
            count += int(cursor.rowcount or 0)
    return count


def finish_outbox(store: Store, message_id: int, attempts: int, status: str,
                  provider_id: str | None = None, error: str | None = None,
                  next_attempt_at: float | None = None) -> bool:
    """Record what became of a claimed message, unless another worker has taken it since."""
    now = time.time()
    cursor = store.db().execute(
        "update outbox set status = ?, provider_id = coalesce(?, provider_id), error = ?, "
        "updated_at = ?, next_attempt_at = coalesce(?, next_attempt_at) "
        "where id = ? and attempts = ? and status = 'sending'",
        [status, provider_id, error, now, next_attempt_at, message_id, attempts])
    return bool(cursor.rowcount)


def delivery_report(store: Store, provider_id: str, status: str, error: str | None) -> bool:
    """Set a sent message's status from the provider's report; False if unknown."""
    # Reports may arrive out of order: "sent" never overwrites a final status.
    allowed = "('sent', 'sending')" if status == "sent" else "('sent', 'delivered', 'failed')"
    cursor = store.db().execute(
        "update outbox set status = ?, error = coalesce(?, error), updated_at = ? "
        f"where provider_id = ? and status in {allowed}",
        [status, error, time.time(), provider_id])
    if not cursor.rowcount:  # known but already final: still not an unknown message
        return store.db().execute("select 1 from outbox where provider_id = ?",
                                  [provider_id]).fetchone() is not None
    return bool(cursor.rowcount)


def outbox_counts(store: Store) -> dict[str, int]:
    return dict(store.db().execute("select status, count(*) from outbox group by status")
                .fetchall())


# ---------------------------------------------------------------- complaints
# In a module of their own (tables, history, PIN attempts); imported here so their
# migrations register after the ones above.
from ussd_app.store import complaints  # noqa: E402,F401

# isort: split
# ---------------------------------------------------------------- operators' dashboard
# Operators, login attempts, the audit log and partners; the queue's queries. Imported
# last: their migrations come after the complaints' (the queue joins both).
from ussd_app.store import operators, queue  # noqa: E402,F401

# isort: split
# ---------------------------------------------------------------- voice
# Calls, call-backs, and a complaint's recordings fetched from the voice provider (after
# the complaints: a recording's rows belong to one, and its erasure joins theirs).
from ussd_app.store import callbacks, voice, voice_recordings  # noqa: E402,F401

# isort: split
# ---------------------------------------------------------------- erasure of linked data
# Outbox bodies erased after delivery, and what a case's phone left elsewhere (sessions,
# conversations, calls, SMS) erased with the case. Last: its migration alters the outbox.
from ussd_app.store import privacy  # noqa: E402,F401
