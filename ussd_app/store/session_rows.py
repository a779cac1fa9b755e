"""A USSD session's row, and how hop 1 starts one (``store.sessions`` writes them).

Hop 1 needs the phone's language and its latest other session (it may be
resumed), then commits the start before answering. On PostgreSQL that was
two round trips; now it is one statement (``BEGIN_SQL``) whenever the start
needs no replay, which is every session but one whose caller may resume: the
statement reads the phone and its latest session and, unless that session
is resumable, inserts the start chosen by the phone's language from the
starts the caller passes (``FreshStarts``, one per language of the content).
A round trip to a database on another host costs milliseconds of a caller's
wait and, on the bench's shared cores, 80-100 µs of CPU (bench/README.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SessionRow:
    """One USSD session: how it started (JSON, written once) and its inputs so far.

    The state itself is not stored: it is the start replayed through
    ``last_text``, which is how every hop computes it anyway. ``inputs`` is the
    number of inputs of the hop that wrote the row (it orders the writes).
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
    inputs: int = 0
    path: str = ""  # the nodes reached, first reach first (for menu_counts; no ids kept)
    node: str = ""  # the node of its last screen

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.id, self.phone_key, self.started_at, self.updated_at, self.version,
                self.start, self.last_text, int(self.resumable), int(self.ended), self.inputs,
                self.path, self.node)

    @classmethod
    def from_tuple(cls, row: tuple[Any, ...]) -> SessionRow:
        (id_, phone_key, started_at, updated_at, version, start, last_text, resumable,
         ended, inputs, path, node) = row
        return cls(id_, phone_key, started_at, updated_at, version, start, last_text or "",
                   bool(resumable), bool(ended), int(inputs or 0), path or "", node or "")

    @property
    def may_resume(self) -> bool:
        """A later session of its phone may offer to resume it (after replaying it)."""
        return self.resumable and not self.ended


SESSION_COLUMNS = ("id", "phone_key", "started_at", "updated_at", "version", "start",
                   "last_text", "resumable", "ended", "inputs", "path", "node")
COLUMNS_SQL = ", ".join(SESSION_COLUMNS)
VALUES_SQL = ", ".join(f"?{i}" for i in range(1, len(SESSION_COLUMNS) + 1))


def not_erased(phone: str, at: str) -> str:
    """The condition that a phone (placeholder ``phone``) was not erased after the hop was
    computed (placeholder ``at``, the hop's time): nothing of it is written then (see
    store/privacy.py)."""
    return f"not exists (select 1 from erased_phones where phone_key = {phone} and at >= {at})"


# The condition for a session row's columns as parameters (?2 the phone key, ?4 the hop's time).
NOT_ERASED = f"where {not_erased('?2', '?4')} "
INSERT_START = (
    f"insert into ussd_sessions ({COLUMNS_SQL}) select {VALUES_SQL} {NOT_ERASED}"
    f"on conflict(id) do nothing returning {COLUMNS_SQL}")


def latest_sql(phone: str, since: str, session_id: str) -> str:
    """The phone's latest other session still in its resume window (placeholders)."""
    return (f"select {COLUMNS_SQL} from ussd_sessions where phone_key = {phone} "
            f"and updated_at >= {since} and id != {session_id} "
            "order by updated_at desc limit 1")


PHONE_START_SQL = (f"select (select lang from phones where key = ?1), s.* from (select 1) one "
                   f"left join ({latest_sql('?1', '?2', '?3')}) s on true")


class FreshStarts:
    """How a session of one content version starts when nothing is resumed: per language
    the phone may have chosen, the stored start (JSON), its path and its node; and for a
    phone with no language (or one this content lacks), the language list's."""

    def __init__(self, by_lang: Mapping[str, tuple[str, str, str]],
                 default: tuple[str, str, str]) -> None:
        self.by_lang, self.default = dict(by_lang), default
        # Parameters of BEGIN_SQL, encoded once per content version, not per call.
        self.by_lang_json = json.dumps(self.by_lang, ensure_ascii=False)
        self.default_json = json.dumps(default, ensure_ascii=False)

    def row(self, session_id: str, phone_key: str, at: float, version: str,
            lang: str | None) -> SessionRow:
        start, path, node = self.by_lang.get(lang, self.default) if lang else self.default
        return SessionRow(id=session_id, phone_key=phone_key, started_at=at, updated_at=at,
                          version=version, start=start, path=path, node=node)


# One round trip (PostgreSQL): the phone's language, its latest other session, and the
# start inserted unless that session may be resumed (its replay decides: Python's). The
# start is picked by the phone's language (?6: {lang: [start, path, node]}; ?7 the one
# without). Parameters: ?1 id, ?2 phone key, ?3 time, ?4 version, ?5 since. Returns the
# language, the latest session's columns, then the inserted row's (NULL if none).
BEGIN_SQL = (
    "with p as (select lang from phones where key = ?2), "
    f"prev as ({latest_sql('?2', '?5', '?1')}), "
    "pick as (select coalesce(cast(?6 as jsonb) -> (select lang from p), cast(?7 as jsonb)) "
    "as s), "
    f"ins as (insert into ussd_sessions ({COLUMNS_SQL}) "
    "select ?1, ?2, ?3, ?3, ?4, s ->> 0, '', 0, 0, 0, s ->> 1, s ->> 2 from pick "
    f"where {not_erased('?2', '?3')} "
    "and not exists (select 1 from prev where coalesce(resumable, 0) <> 0 "
    "and coalesce(ended, 0) = 0) "
    f"on conflict(id) do nothing returning {COLUMNS_SQL}) "
    "select (select lang from p), prev.*, ins.* from (select 1) one "
    "left join prev on true left join ins on true")


def split_begun(row: tuple[Any, ...]) -> tuple[str | None, SessionRow | None, SessionRow | None]:
    """BEGIN_SQL's row: the phone's language, its latest session, the inserted start."""
    width = len(SESSION_COLUMNS)
    lang = str(row[0]) if row[0] is not None else None
    latest, inserted = row[1:1 + width], row[1 + width:1 + 2 * width]
    return (lang, SessionRow.from_tuple(tuple(latest)) if latest[0] is not None else None,
            SessionRow.from_tuple(tuple(inserted)) if inserted[0] is not None else None)
