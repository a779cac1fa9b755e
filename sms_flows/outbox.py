"""The outbox worker: every stored SMS delivered once, through the configured provider.

A message is claimed atomically for a lease (``store.claim_outbox``), sent,
then marked ``sent`` with the provider's id; delivery reports move it on to
``delivered`` or ``failed``. A temporary failure (a 500, a timeout) puts it
back with exponential backoff; after ``max_attempts`` it is ``dead`` (kept,
listed, never silently dropped). A worker killed mid-send leaves the message
``sending`` until its lease runs out, then another worker takes it again.
Opted-out numbers get only direct replies: anything else is ``suppressed``.

Sent once where the provider answered: the provider's id is written to a
journal the moment the send returns, before the outbox row is written (on
SQLite a file in the data folder, ``outbox-sent.journal``, fsynced, since the
one writer lock may be held; on PostgreSQL the ``outbox_sent`` table, its own
insert that waits for no row lock and that every node sees); every batch first marks
the journaled messages ``sent``, and a message with a provider id is never
claimed again. A worker killed (or a database locked) between the provider's
answer and the ``sent`` commit therefore sends nothing twice. The HTTP
timeouts are derived from the lease (connect plus read under half of it), and
a message whose turn in its batch comes with less than half its lease left
has the lease renewed first (``store.renew_outbox``; a message another worker
took meanwhile is left to it), so a send returns, and is journaled, before
its lease can run out.

What is left at-least-once: a crash (or a timeout) after the provider took
the message and before its answer reached the worker; a send outlasting its
lease (a provider trickling its answer past the read timeout, or a process
paused longer than the lease); and the journal itself failing (a full disk).
Then the message may be sent again after the lease.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sms_flows.providers import Provider, StoreOnly, make_provider, send_timeout
from ussd_app import jobs, settings
from ussd_app import store as db
from ussd_app.complaints import safe_window
from ussd_app.errors import ProviderError
from ussd_app.logs import quiet_http_clients
from ussd_app.privacy.protect import PhoneHasher, Sealer, open_text, redact

log = logging.getLogger(__name__)

MAX_BACKOFF = 6 * 3600.0


class SentJournal:
    """Provider ids written down the moment a send returns, before the database.

    One JSON line per message taken by the provider (``[outbox id, provider
    id]``), appended under an exclusive ``flock`` and fsynced: it survives the
    process being killed, or the database being locked, before ``sent`` is
    committed. ``replay`` marks what it holds ``sent`` in one transaction and
    empties it; every worker process of a data folder shares the one file.
    No personal data: ids only.
    """

    def __init__(self, path: Path):
        self.path = path

    def append(self, store: db.Store, message_id: int, provider_id: str) -> None:
        line = json.dumps([message_id, provider_id]).encode() + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # and the lock with it

    def replay(self, store: db.Store) -> int:
        """Mark every journaled message sent, then empty the journal; how many changed."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return 0
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = b""
            while chunk := os.read(fd, 1 << 16):
                data += chunk
            if not data:
                return 0
            sent: list[tuple[int, str]] = []
            for line in data.splitlines():
                try:
                    message_id, provider_id = json.loads(line)
                    sent.append((int(message_id), str(provider_id)))
                except (ValueError, TypeError):  # a line cut short by a crash: no answer kept
                    log.warning("outbox journal: skipped an unreadable line")
            changed = db.record_sent(store, sent) if sent else 0
            os.ftruncate(fd, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        if changed:
            log.warning("outbox: %d message(s) the provider had taken before a crash marked "
                        "sent from the journal (not sent again)", changed)
        return changed


class DbJournal:
    """The journal in the database (PostgreSQL): what a node wrote down, any node sees.

    A node that dies after the provider took a message, before its row says
    ``sent``, leaves the id in ``outbox_sent``; no node claims that message
    again, and the next batch of any node marks it ``sent``.
    """

    def append(self, store: db.Store, message_id: int, provider_id: str) -> None:
        db.journal_sent(store, message_id, provider_id, time.time())

    def replay(self, store: db.Store) -> int:
        changed = db.replay_journal(store)
        if changed:
            log.warning("outbox: %d message(s) the provider had taken before a crash marked "
                        "sent from the journal (not sent again)", changed)
        return changed


class OutboxWorker:
    def __init__(self, store: db.Store, provider: Provider, sealer: Sealer,
                 hasher: PhoneHasher, max_attempts: int = 8, backoff: float = 30.0,
                 lease: float = 120.0, batch: int = 100, threads: int = 8):
        self.store, self.provider, self.sealer, self.hasher = store, provider, sealer, hasher
        self.max_attempts, self.backoff, self.lease = max_attempts, backoff, lease
        self.batch, self.threads = batch, threads
        self._pool: ThreadPoolExecutor | None = None
        self._now: float | None = None
        file = SentJournal(store.path.parent / "outbox-sent.journal")
        self.journal: SentJournal | DbJournal = DbJournal() if store.postgres else file

    def run_once(self, now: float | None = None) -> dict[str, int]:
        """Send one batch of due messages; counts by what became of them."""
        if isinstance(self.provider, StoreOnly):
            return {}
        self.journal.replay(self.store)  # what a killed worker had sent: never claimed again
        claimed = db.claim_outbox(self.store, time.time() if now is None else now, self.lease,
                                  self.batch)
        self._now = now  # a test's clock for the safe-window check; None: the real one
        counts: dict[str, int] = {}
        if not claimed:
            return counts
        if self.threads > 1 and len(claimed) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="outbox")
            results = list(self._pool.map(self.deliver, claimed))
        else:
            results = [self.deliver(row) for row in claimed]
        for status in results:
            counts[status] = counts.get(status, 0) + 1
        return counts

    def drain(self, now: float | None = None) -> dict[str, int]:
        """Send until nothing is due."""
        total: dict[str, int] = {}
        while True:
            counts = self.run_once(now)
            if not counts:
                return total
            for status, n in counts.items():
                total[status] = total.get(status, 0) + n

    def forever(self, stop: threading.Event, idle: float = 1.0,
                heartbeat: jobs.Heartbeat | None = None,
                progress: Callable[[dict[str, int]], object] | None = None) -> None:
        """Send until ``stop`` is set; each batch reports to ``heartbeat`` (for /healthz)
        and, when it did something, to ``progress`` (the CLI's lines)."""
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception as exc:  # the database was locked too long, say: try again
                log.exception("outbox worker: batch failed; trying again")
                if heartbeat is not None:
                    heartbeat.failed(exc)
                busy = {}
            else:
                if heartbeat is not None:
                    heartbeat.ok()
                if busy and progress is not None:
                    progress(busy)
            if not busy:
                stop.wait(idle)

    def deliver(self, row: dict[str, Any]) -> str:
        message_id, attempts = int(row["id"]), int(row["attempts"])
        try:
            phone = self.sealer.open(row["to_sealed"])
            body = open_text(self.sealer, row["body"])
        except Exception:
            return self._finish(row, "dead", error="cannot read the sealed number or text "
                                                   "(secret key changed?)")
        if row.get("kind") != "reply" and db.is_opted_out(self.store, self.hasher.key(phone)):
            return self._finish(row, "suppressed", error="the number sent STOP")
        if self._held(row):
            return "held"
        # The send must end inside the lease (its timeouts are under half of it): a message
        # that waited its turn in the batch until less is left is renewed first.
        if time.time() > float(row["next_attempt_at"]) - self.lease / 2 and not db.renew_outbox(
                self.store, message_id, attempts, time.time() + self.lease):
            log.warning("outbox: message %s was taken by another worker", message_id)
            return "taken"
        try:
            provider_id = self.provider.send(message_id, phone, body,
                                             row.get("encoding") or "")
        except ProviderError as exc:
            if not exc.temporary:
                return self._finish(row, "failed", error=str(exc))
            if attempts >= self.max_attempts:
                return self._finish(row, "dead", error=f"{exc} (after {attempts} attempts)")
            delay = min(self.backoff * 2 ** (attempts - 1), MAX_BACKOFF)
            delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
            return self._finish(row, "queued", error=str(exc),
                                next_attempt_at=time.time() + delay)
        except Exception as exc:  # a bug in a provider must not lose the message
            log.exception("outbox: provider %s failed unexpectedly", self.provider.name)
            return self._finish(row, "queued", error=type(exc).__name__,
                                next_attempt_at=time.time() + self.backoff)
        try:  # before the database: a crash or a locked database now cannot resend it
            self.journal.append(self.store, message_id, provider_id)
        except (OSError, *db.DB_ERRORS) as exc:  # a full disk, say: the write below still counts
            log.error("outbox: could not journal message %s (%s); a crash before it is "
                      "marked sent would send it again", message_id, exc)
        return self._finish(row, "sent", provider_id=provider_id)

    def _held(self, row: dict[str, Any]) -> bool:
        """Whether the caller's safe window is closed now (the message became due late,
        or a clock change moved the window): then it waits for the next opening."""
        window = safe_window.parse(row.get("safe_window"))
        now = time.time() if self._now is None else self._now
        if window is None or safe_window.inside(window, row.get("time_zone"), now):
            return False
        until = safe_window.next_start(window, row.get("time_zone"), now)
        if not db.hold_outbox(self.store, int(row["id"]), int(row["attempts"]), until):
            log.warning("outbox: message %s was taken by another worker", row["id"])
        log.info("outbox: message %s held until the caller's safe time", row["id"])
        return True

    def _finish(self, row: dict[str, Any], status: str, **fields: Any) -> str:
        if fields.get("error"):  # stored and logged: never the number a provider quotes
            fields["error"] = redact(str(fields["error"]))
        if not db.finish_outbox(self.store, int(row["id"]), int(row["attempts"]), status,
                                **fields):
            log.warning("outbox: message %s was taken by another worker", row["id"])
        if status in ("dead", "failed"):
            log.warning("outbox: message %s %s: %s", row["id"], status, fields.get("error"))
        return status

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def make_worker(config: settings.Config, store: db.Store, secret: bytes) -> OutboxWorker:
    """A worker for the configured provider (raises ValueError on missing settings)."""
    quiet_http_clients()  # Kannel's request URL holds the number and the text
    config = settings.of(config)
    lease = config.outbox_lease_seconds
    return OutboxWorker(store, make_provider(config, send_timeout(lease)), Sealer(secret),
                        PhoneHasher(secret),
                        max_attempts=config.outbox_max_attempts,
                        backoff=config.outbox_backoff_seconds,
                        lease=lease)


def start_background(services: Any) -> threading.Event:
    """Run the worker in a daemon thread of this process; set the event to stop it."""
    config: settings.Settings = services.config
    data_dir = config.data_dir
    worker = make_worker(config, services.store, settings.secret_key(config, data_dir))
    stop = threading.Event()
    heartbeat = jobs.Heartbeat("outbox-worker", 1.0, owner=str(data_dir))  # for /healthz
    thread = threading.Thread(target=worker.forever, args=(stop, 1.0, heartbeat),
                              name="outbox-worker", daemon=True)
    heartbeat.thread = thread

    def halt() -> None:
        """Stop after the batch in hand (``jobs.stop_started_since``; an app's end)."""
        stop.set()
        heartbeat.stop()
        thread.join(timeout=5)

    heartbeat.halt = halt
    thread.start()
    return stop
