"""The agency registry being served: loaded with each content tree, searched by callers.

``AgencyRegistry.load`` stores a checked ``agencies.csv`` (``agencies.check``)
in SQLite when its version changed; every process keeps a ``NameIndex``
(``agencies.index``) of the stored rows and rebuilds it when another process
loaded a new file. Called as the ``agency_search`` service, it answers with
the text ``agencies.render`` writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path

from rapidfuzz import fuzz

from ussd_app import store as db
from ussd_app.agencies.agency import Agency, Found, fold, licence_key
from ussd_app.agencies.check import AGENCY_FILE, file_version, parse_agencies, read_file
from ussd_app.agencies.index import MAX_SHOWN, NameIndex
from ussd_app.agencies.render import PluralTranslate, render
from ussd_app.engine.loader import ERROR, ContentError, Problem
from ussd_app.engine.screens import Translate
from ussd_app.store.base import DB_ERRORS

log = logging.getLogger(__name__)


class AgencyRegistry:
    """The registry being served, and the ``agency_search`` service for ask nodes."""

    def __init__(self, store: db.Store, t: Translate, nt: PluralTranslate,
                 today: Callable[[], date] = date.today):
        self.store = store
        self.t, self.nt = t, nt
        self.today = today
        self._index: NameIndex | None = None
        self._lock = threading.Lock()
        self._texts: dict[tuple[str, str, str, date], str] = {}

    # -------------------------------------------------------- loading

    def load(self, directory: Path) -> None:
        """Load the tree's registry into the store; raise ``ContentError`` on any error.

        Called when a content tree is about to be served: a tree whose registry
        has an error is refused whole, and the registry served so far stays.
        """
        path = Path(directory) / AGENCY_FILE
        data = read_file(path) if path.is_file() else None
        version = file_version(data) if data is not None else "none"
        try:
            if db.agency_registry_version(self.store) != version:
                # Only a file that passed this check is ever stored under its version.
                agencies, problems = parse_agencies(data) if data is not None else ([], [])
                if any(p.severity == ERROR for p in problems):
                    raise ContentError(problems)
                db.replace_agencies(self.store, (a.record() for a in agencies), version,
                                    AGENCY_FILE if agencies else "")
                log.info("agency registry %s loaded: %d agencies", version, len(agencies))
            self.index()
        except DB_ERRORS as exc:
            raise ContentError([Problem(AGENCY_FILE, 0, f"could not store the registry: {exc}",
                                        "is the database writable? try again")]) from exc

    def index(self) -> NameIndex | None:
        """The name index of the stored registry, rebuilt when another process reloaded it."""
        version = db.agency_registry_version(self.store)
        index = self._index
        if version is None:
            return None
        if index is None or index.version != version:
            with self._lock:
                index = self._index
                if index is None or index.version != version:
                    index = NameIndex(version, (
                        (key, (name, *filter(None, (other or "").split("|"))))
                        for key, name, other in db.agency_names(self.store)))
                    self._index = index
                    self._texts = {}
        return index

    def health(self) -> dict[str, object]:
        """For /healthz: which registry is served, and how many agencies it holds."""
        index = self.index()
        return {"version": index.version if index else None,
                "agencies": len(index) if index else 0}

    # -------------------------------------------------------- searching

    def search(self, query: str, index: NameIndex | None = None) -> Found | None:
        """Agencies for a licence number or a name; None when no registry is loaded."""
        index = index or self.index()
        if index is None or not len(index):
            return None
        key = licence_key(query)
        if len(key) < 3:
            return Found((), 0, too_short=True)
        rows = db.agencies_by_licence_key(self.store, [key])
        if not rows and key.isdigit():  # a keypad caller typing only the number's digits
            rows = db.agencies_by_licence_digits(self.store, key, limit=50)
        if rows:
            agencies = [Agency.from_record(r) for r in rows]
            return Found(tuple(agencies[:MAX_SHOWN]), len(agencies))
        ranked, count = index.search(query)
        shown = [key for key, _ in ranked[:MAX_SHOWN]]
        by_key = {r["licence_key"]: r for r in db.agencies_by_licence_key(self.store, shown)}
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

    def __call__(self, answer: str, lang: str) -> str:
        """The ``agency_search`` service: (what the caller typed, language) -> text.

        The engine asks again for every page the caller turns, so the text is
        remembered per registry version, query, language and day.
        """
        index = self.index()
        cache_key = (index.version if index else "", answer, lang, self.today())
        text = self._texts.get(cache_key)
        if text is None:
            text = render(self.search(answer, index), lang, self.t, cache_key[3], self.nt)
            if len(self._texts) >= 1000:
                try:
                    self._texts.pop(next(iter(self._texts)), None)
                except (StopIteration, RuntimeError):  # another thread got there first
                    pass
            self._texts[cache_key] = text
        return text



def _matched_other_name(query: str, agency: Agency) -> str:
    """The other name a query found the agency by, when it is closer than the name."""
    if not agency.other_names:
        return ""
    folded = fold(query)
    scores = [fuzz.WRatio(folded, fold(n)) for n in (agency.name, *agency.other_names)]
    best = max(range(len(scores)), key=scores.__getitem__)
    return agency.other_names[best - 1] if best and scores[best] > scores[0] else ""
