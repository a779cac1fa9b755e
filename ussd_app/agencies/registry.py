"""The agency registry being served: loaded with each content tree, searched by callers.

``AgencyRegistry.load`` stores a checked ``agencies.csv`` (``agencies.check``)
under its version (a hash of the file) unless a process of the cluster
already did (``store.agencies``), and remembers which registry each content
tree it loaded came with. A conversation searches the registry of the tree
it is on (``for_tree``): two nodes on different content versions, or a
session that started before a sync, each search their own rows, and no node
replaces another's. Every process keeps a ``NameIndex`` (``agencies.index``)
per registry version it searches. Called as the ``agency_search`` service,
it answers with the text ``agencies.render`` writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from pathlib import Path

from rapidfuzz import fuzz

from ussd_app import store as db
from ussd_app.agencies.agency import Agency, Found, by_licence, fold, licence_key
from ussd_app.agencies.check import AGENCY_FILE, file_version, parse_agencies, read_file
from ussd_app.agencies.flags import FlagSet, flag_lines
from ussd_app.agencies.index import MAX_SHOWN, NameIndex
from ussd_app.agencies.render import PluralTranslate, render, warning
from ussd_app.engine import messages as m
from ussd_app.engine.loader import ERROR, ContentError, Problem
from ussd_app.engine.screens import Translate
from ussd_app.engine.state import Listing
from ussd_app.store.base import DB_ERRORS

log = logging.getLogger(__name__)
TOUCH_SECONDS = 3600.0  # how often a process says it still searches a registry version
KEEP_INDEXES = 4  # name indexes kept in memory (the current registry and older sessions')
KEEP_TREES = 32  # content versions whose registry version is remembered

# Name indexes by registry version, shared by the registries of a process: a version is a
# hash of the file, so its rows, and the index built from them, are the same whichever
# store they were read from. An index is read-only once built.
_SHARED: OrderedDict[str, NameIndex] = OrderedDict()
_SHARED_LOCK = threading.Lock()


def _shared_index(version: str, build: Callable[[], NameIndex]) -> NameIndex:
    with _SHARED_LOCK:
        index = _SHARED.get(version)
        if index is None:
            index = _SHARED[version] = build()
            while len(_SHARED) > KEEP_INDEXES:
                _SHARED.popitem(last=False)
        _SHARED.move_to_end(version)
        return index


class AgencyRegistry:
    """The registries being served, and the ``agency_search`` service for ask nodes."""

    def __init__(self, store: db.Store, t: Translate, nt: PluralTranslate,
                 today: Callable[[], date] = date.today, reports_from: int = 0):
        self.store = store
        self.t, self.nt = t, nt
        self.today = today
        self.version: str | None = None  # the registry of the tree this process serves
        self.stored = 0  # registry versions this process stored (others found them stored)
        # content version -> (its registry version or None, the folder it was read from)
        self._trees: OrderedDict[str, tuple[str | None, Path]] = OrderedDict()
        self._indexes: OrderedDict[str, NameIndex] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()
        self._texts: dict[tuple[str, str, str, date, tuple[str, ...], object], Listing] = {}
        self.flags = FlagSet(lambda: db.agency_flags.active_flags(store),
                             lambda: db.agency_flags.flags_stamp(store))
        self.reports = ReportCounts(store, reports_from)

    # -------------------------------------------------------- loading

    def load(self, directory: Path, tree_version: str = "", serve: bool = True) -> None:
        """Store the tree's registry once per cluster; raise ``ContentError`` on any error.

        Called when a content tree is about to be served (``serve``), or loaded
        for the sessions still on it: a tree whose registry has an error is
        refused whole, and the registry served so far stays.
        """
        path = Path(directory) / AGENCY_FILE
        data = read_file(path) if path.is_file() else None
        version = file_version(data) if data is not None else None
        try:
            if version is not None and not db.has_agency_version(self.store, version):
                # Only a file that passed this check is ever stored under its version.
                agencies, problems = parse_agencies(data or b"")
                if any(p.severity == ERROR for p in problems):
                    raise ContentError(problems)
                agencies = by_licence(agencies)  # one a licence; other sources' under it
                if db.store_agencies(self.store, (a.record() for a in agencies), version,
                                     AGENCY_FILE):
                    self.stored += 1
                    log.info("agency registry %s stored: %d agencies", version, len(agencies))
            if version is not None:
                self._touched[version] = time.monotonic()
                self.index(version)  # built now, not on a caller's hop
        except DB_ERRORS as exc:
            raise ContentError([Problem(AGENCY_FILE, 0, f"could not store the registry: {exc}",
                                        "is the database writable? try again")]) from exc
        with self._lock:
            if tree_version:
                self._trees[tree_version] = (version, Path(directory))
                self._trees.move_to_end(tree_version)
                while len(self._trees) > KEEP_TREES:
                    self._trees.popitem(last=False)
            if serve:
                self.version = version

    def registry_of(self, tree_version: str | None) -> str | None:
        """The registry version a content tree came with (this process's, if unknown)."""
        found = self._trees.get(tree_version or "")
        return found[0] if found is not None else self.version

    def for_tree(self, tree_version: str, near: str = "") -> Callable[[str, str], Listing]:
        """The ``agency_search`` service of one content version: it searches that
        version's registry (the engine context of a conversation on it gets this),
        the agencies of ``near`` (the country of the caller's number) first."""
        def service(answer: str, lang: str, going: tuple[str, ...] = ()) -> Listing:
            prefer = tuple(dict.fromkeys((*going, near))) if near else going
            return self.answer(answer, lang, self.registry_of(tree_version), prefer)
        return service

    def _keep_alive(self, version: str) -> None:
        """Now and then: say this registry is still searched, and store it again if it
        was dropped meanwhile (no process had said so for days)."""
        if time.monotonic() - self._touched.get(version, 0.0) < TOUCH_SECONDS:
            return
        self._touched[version] = time.monotonic()
        folders = [folder for v, folder in list(self._trees.values()) if v == version]
        try:
            if db.has_agency_version(self.store, version) or not folders:
                db.touch_agency_version(self.store, version)
            else:
                self.load(folders[-1], serve=False)
        except (ContentError, *DB_ERRORS) as exc:  # searching goes on; tried again later
            log.warning("could not keep agency registry %s: %s", version, exc)

    def index(self, version: str | None = None) -> NameIndex | None:
        """The name index of a registry version (by default the one this process serves)."""
        version = version or self.version
        if version is None:
            return None
        self._keep_alive(version)
        index = self._indexes.get(version)
        if index is None:
            with self._lock:
                index = self._indexes.get(version)
                if index is None:
                    index = _shared_index(version, lambda: NameIndex(version, (
                        (key, (name, *filter(None, (other or "").split("|"))), licence,
                         country)
                        for key, name, other, licence, country
                        in db.agency_names(self.store, version))))
                    self._indexes[version] = index
                    # the served registry's index stays: rebuilding it would stall hops
                    for old in [v for v in self._indexes if v not in (version, self.version)]:
                        if len(self._indexes) <= KEEP_INDEXES:
                            break
                        del self._indexes[old]
        return index

    def health(self) -> dict[str, object]:
        """For /healthz: which registry is served, and how many agencies it holds."""
        index = self.index()
        return {"version": index.version if index else None,
                "agencies": len(index) if index else 0,
                "versions_searched": len(self._indexes)}

    # -------------------------------------------------------- searching

    def search(self, query: str, index: NameIndex | None = None,
               prefer: tuple[str, ...] = ()) -> Found | None:
        """Agencies for a licence number or a name; None when no registry is loaded."""
        return self._search(query, index or self.index(), prefer)

    def _search(self, query: str, index: NameIndex | None,
                prefer: tuple[str, ...] = ()) -> Found | None:
        if index is None or not len(index):
            return None
        key = licence_key(query)
        if len(key) < 3:
            return Found((), 0, too_short=True)
        version = index.version
        licences = index.licences(query, prefer)  # the number in any form (a tie list)
        if licences:
            shown = licences[:MAX_SHOWN]
            by_key = {r["licence_key"]: r
                      for r in db.agencies_by_licence_key(self.store, version, shown)}
            agencies = [Agency.from_record(by_key[k]) for k in shown if k in by_key]
            return Found(tuple(agencies), max(len(licences), len(agencies)))
        ranked, count = index.search(query, prefer)
        shown = [key for key, _ in ranked[:MAX_SHOWN]]
        by_key = {r["licence_key"]: r
                  for r in db.agencies_by_licence_key(self.store, version, shown)}
        agencies = [Agency.from_record(by_key[k]) for k in shown if k in by_key]
        return Found(tuple(agencies), max(count, len(agencies)),
                     also=tuple(_matched_other_name(query, a) for a in agencies))

    def resolve(self, typed: str) -> tuple[str, str] | None:
        """(licence, name) of the one agency a complaint names, when there is no doubt."""
        found = self.search(typed)
        if found is None or found.too_short or found.count != 1 or not found.agencies:
            return None
        agency = found.agencies[0]
        return agency.licence, agency.name

    def warning(self, typed: str, lang: str) -> str:
        """What the complaint flow says before it keeps ``typed`` as the agency reported:
        its licence is not valid today, or a supervisor flagged it (the newest flag); ""
        when neither, or when the name does not point at one agency without doubt."""
        found = self.search(typed)
        if found is None or found.too_short:
            return ""
        try:
            self.flags.refresh()
        except DB_ERRORS as exc:  # the flags known so far are said
            log.warning("could not read agency flags: %s", exc)
        if found.count == 1 and found.agencies:
            agency = found.agencies[0]
            lines = [warning(agency, lang, self.t, self.today()),
                     *flag_lines(self.flags.of(agency), lang, self.t)[:1]]
        elif not found.agencies:  # missing from the registry, flagged by its name
            lines = flag_lines(self.flags.by_name(typed), lang, self.t)[:1]
        else:
            return ""
        return "\n".join(line for line in lines if line)

    def lookup(self, licence: str) -> dict[str, object] | None:
        """The stored row of one licence in the registry this process serves (dashboard),
        with its ``state`` today: licensed, expired, suspended or revoked."""
        if self.version is None:
            return None
        found = db.agencies_by_licence_key(self.store, self.version, [licence_key(licence)])
        if not found:
            return None
        row = found[0]
        today = self.today()
        agency = Agency.from_record(row)
        # what the licence is today: never "licensed" past its expiry date
        row["state"] = "expired" if agency.expired(today) else row["status"]
        # what other official lists say of it, newest first
        row["also_said"] = [{**a.record(), "state": "expired" if a.expired(today)
                             else a.status} for a in agency.also]
        return row

    def __call__(self, answer: str, lang: str) -> Listing:
        """The ``agency_search`` service on the registry this process serves."""
        return self.answer(answer, lang, self.version)

    def answer(self, answer: str, lang: str, version: str | None,
               prefer: tuple[str, ...] = ()) -> Listing:
        """(what the caller typed, language) -> text, searched in registry ``version``.

        The engine asks again for every page the caller turns, so the text is
        remembered per registry version, query, language and day.
        """
        index = self.index(version) if version else None
        try:
            flags_version = self.flags.refresh()
        except DB_ERRORS as exc:  # the flags known so far are shown
            log.warning("could not read agency flags: %s", exc)
            flags_version = self.flags.version
        cache_key = (index.version if index else "", answer, lang, self.today(), prefer,
                     (flags_version, self.reports.refresh()))
        text = self._texts.get(cache_key)
        if text is None:
            found = self._search(answer, index, prefer)
            several = found is not None and len(found.agencies) > 1
            body = render(found, lang, self.t, cache_key[3], self.nt,
                          lambda a: [*flag_lines(self.flags.of(a), lang, self.t),
                                     *self.reports.lines(a, lang, self.nt)])
            unlisted = self.flags.by_name(answer) if found is not None and not found.agencies \
                else []
            if unlisted:  # an agency missing from the registry, flagged by name
                body += "\n" + "\n".join([unlisted[0].name,
                                           *flag_lines(unlisted, lang, self.t)])
            text = Listing(body, tuple(a.licence for a in found.agencies) if several and found
                           else ())
            if len(self._texts) >= 1000:
                try:
                    self._texts.pop(next(iter(self._texts)), None)
                except (StopIteration, RuntimeError):  # another thread got there first
                    pass
            self._texts[cache_key] = text
        return text


class ReportCounts:
    """How many complaints named each registry agency in the last ``WINDOW_DAYS``, kept
    for those at or above ``at_least`` (a deployment's setting; 0 shows none).

    Read from the store at most every ``REFRESH_SECONDS`` per process, so a hop
    costs no query; a count below the threshold never reaches a caller (a few
    reports prove nothing, and a public number about a business must be fair).
    """

    WINDOW_DAYS = 90
    REFRESH_SECONDS = 300.0

    def __init__(self, store: db.Store, at_least: int,
                 clock: Callable[[], float] = time.time):
        self.store, self.at_least, self.clock = store, at_least, clock
        self._counts: dict[str, int] = {}
        self._read_at = -1e18
        self._lock = threading.Lock()
        self.version = 0  # changes when the counts shown change: the check's texts' key

    def refresh(self) -> int:
        """The version of the counts shown now: read again when they are old."""
        if self.at_least <= 0:
            return 0
        now = self.clock()
        if now - self._read_at >= self.REFRESH_SECONDS and self._lock.acquire(blocking=False):
            try:
                since = now - self.WINDOW_DAYS * 86400
                counts = db.agency_flags.licence_counts(self.store, since, self.at_least)
                fresh = {licence_key(k): n for k, n in counts.items()}
                if fresh != self._counts:
                    self._counts, self.version = fresh, self.version + 1
            except DB_ERRORS as exc:  # the counts known so far are shown
                log.warning("could not count complaints per agency: %s", exc)
            finally:
                self._read_at = now
                self._lock.release()
        return self.version

    def lines(self, agency: Agency, lang: str, nt: PluralTranslate) -> list[str]:
        count = self._counts.get(licence_key(agency.licence), 0)
        if self.at_least <= 0 or count < self.at_least:
            return []
        singular, plural = m.AGENCY_REPORTS
        return [nt(lang, singular, plural, count).format(count=count)]


def _matched_other_name(query: str, agency: Agency) -> str:
    """The other name a query found the agency by, when it is closer than the name."""
    if not agency.other_names:
        return ""
    folded = fold(query)
    scores = [fuzz.WRatio(folded, fold(n)) for n in (agency.name, *agency.other_names)]
    best = max(range(len(scores)), key=scores.__getitem__)
    return agency.other_names[best - 1] if best and scores[best] > scores[0] else ""
