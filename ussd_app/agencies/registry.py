"""The recruitment-agency registry: check the file, load it, search it, say what was found.

``content/agencies.csv`` is the registry field staff publish: one agency a
line, with its licence number, names, country, status, licence expiry and
where the data comes from. ``parse_agencies`` checks it (bytes in, rows and
``Problem``s out, no I/O) so ``migrantline content check`` and the service
refuse the same files with the same ``file:line`` messages. A file with any
error is never served: the service keeps the registry it had.

The rows live in SQLite (``store.py``), keyed by the normalised licence
number. Name search needs fuzzy matching, which SQLite cannot index, so each
process keeps a ``NameIndex`` built from the stored rows: every word of every
name, with postings. A query word matches a name word exactly, by prefix, or
within a few edits (``rapidfuzz``, only against words of a similar length),
so a search touches a few hundred candidates, not the whole registry.
Agencies are then ranked by how much of the query they cover, rare words
weighing more than common ones ("manpower", "overseas").
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import heapq
import io
import itertools
import logging
import math
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from ussd_app import store as db
from ussd_app.engine import messages as m
from ussd_app.engine.loader import ERROR, WARNING, ContentError, Problem, decode_text
from ussd_app.engine.screens import Translate

log = logging.getLogger(__name__)

AGENCY_FILE = "agencies.csv"
COLUMNS = ("licence", "name", "other_names", "country", "status", "expires", "source",
           "data_date")
STATUSES = ("licensed", "suspended", "revoked")
MAX_FILE_BYTES = 50_000_000
MAX_NAME = 200
MAX_SOURCE = 120

MAX_SHOWN = 5  # agencies listed on the phone; the rest is counted
MIN_SCORE = 0.6  # share of the query (weighted by rarity) a name must cover
WITHIN_BEST = 0.25  # and no further than this below the best match
CANDIDATE_CAP = 2000  # agencies scored at most; the rest only counted
_COMMON_SHARE = 0.02  # a word in more than this share of agencies is common
_COMMON_MIN = 20
JOINED_MIN = 0.85  # two typed words read as one index word only when this close

# Legal forms and joining words: in neither the query nor the index.
STOP_WORDS = frozenset(
    "pvt private ltd limited llc plc inc co company sa sarl suarl the and of et".split())

HINT_HEADER = "the first line names the columns: " + ",".join(COLUMNS)


@dataclass(frozen=True)
class Agency:
    licence: str
    name: str
    other_names: tuple[str, ...]
    country: str
    status: str
    expires: date | None
    source: str
    data_date: date
    line: int = 0

    def record(self) -> dict[str, Any]:
        """The row as the store keeps it."""
        key = licence_key(self.licence)
        return {
            "licence_key": key, "licence": self.licence,
            "licence_digits": "".join(c for c in key if c.isdigit()),
            "name": self.name, "other_names": "|".join(self.other_names),
            "country": self.country, "status": self.status,
            "expires": self.expires.isoformat() if self.expires else None,
            "source": self.source, "data_date": self.data_date.isoformat(),
        }

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> Agency:
        return cls(
            licence=row["licence"], name=row["name"],
            other_names=tuple(n for n in (row["other_names"] or "").split("|") if n),
            country=row["country"], status=row["status"],
            expires=date.fromisoformat(row["expires"]) if row["expires"] else None,
            source=row["source"], data_date=date.fromisoformat(row["data_date"]),
        )

    def expired(self, today: date) -> bool:
        return self.status == "licensed" and self.expires is not None and self.expires < today


# ---------------------------------------------------------------- normalising

_ARABIC_MAP = str.maketrans({"ة": "ه", "ى": "ي", "ـ": ""})


def fold(text: str) -> str:
    """Lower case, no accents, punctuation as spaces: what search compares."""
    if text.isascii():
        return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())
    out: list[str] = []
    base = ""
    for ch in unicodedata.normalize("NFKD", text.translate(_ARABIC_MAP)):
        category = unicodedata.category(ch)
        if category == "Mn" and (base < "\u0250" or "\u0600" <= base <= "\u06ff"):
            continue  # accents on Latin letters, vowel marks on Arabic
        if category == "Nd":
            out.append(str(unicodedata.decimal(ch)))  # ٣ and ३ are 3
        elif category[0] in "LNM":
            out.append(ch)
        else:
            out.append(" ")
        base = ch
    return " ".join("".join(out).casefold().split())


def licence_key(text: str) -> str:
    """A licence number as compared: 'np-demo 0001' and 'NP.DEMO.0001' are equal."""
    return fold(text).replace(" ", "")


def words(text: str) -> list[str]:
    return [w for w in fold(text).split() if w not in STOP_WORDS]


# ---------------------------------------------------------------- checking the file


def parse_agencies(data: bytes, name: str = AGENCY_FILE) -> tuple[list[Agency], list[Problem]]:
    """Check a registry file; the rows are only to be used when no problem is an error."""
    problems: list[Problem] = []
    text = _decode(name, data, problems)
    if text is None:
        return [], problems
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [Problem(name, 1, f"CSV syntax: {exc}", HINT_HEADER)]
    if not header or not any(h.strip() for h in header):
        return [], [Problem(name, 1, "no header line", HINT_HEADER)]
    columns = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in columns]
    for column in missing:
        problems.append(Problem(name, 1, f"missing column '{column}'", HINT_HEADER))
    for column in columns:
        if column not in COLUMNS:
            problems.append(Problem(name, 1, f"unknown column '{column}' is ignored",
                                    "remove it or fix its spelling", WARNING))
    if len(set(columns)) != len(columns):
        problems.append(Problem(name, 1, "a column is named twice", HINT_HEADER))
    if any(p.severity == ERROR for p in problems):
        return [], problems
    index = {c: columns.index(c) for c in COLUMNS}
    agencies: list[Agency] = []
    seen: dict[str, int] = {}
    line = 2
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                problems.append(Problem(name, line, "a quote (\") opened here is never closed",
                                        "close the quote, or remove it"))
            else:
                problems.append(Problem(name, line, f"CSV syntax: {exc}",
                                        "a field with a comma or a quote needs \"double "
                                        "quotes\"; a quote inside one is written \"\""))
            break
        start, line = line, reader.line_num + 1
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) != len(columns):
            problems.append(Problem(name, start, f"{len(fields)} fields, the header has "
                                    f"{len(columns)}",
                                    "a field with a comma needs \"double quotes\""))
            continue
        row = {c: fields[i].strip() for c, i in index.items()}
        agency = _agency(name, start, row, problems)
        if agency is None:
            continue
        key = licence_key(agency.licence)
        if key in seen:
            problems.append(Problem(name, start, f"licence '{agency.licence}' is also on line "
                                    f"{seen[key]}", "each agency once; merge the two lines"))
            continue
        seen[key] = start
        agencies.append(agency)
    if not agencies and not any(p.severity == ERROR for p in problems):
        problems.append(Problem(name, 1, "no agency in the file",
                                "add one line per agency, or delete the file"))
    return agencies, problems


def _decode(name: str, data: bytes, problems: list[Problem]) -> str | None:
    if not data.strip():
        problems.append(Problem(name, 1, "file is empty", HINT_HEADER))
        return None
    return decode_text(name, data, problems, MAX_FILE_BYTES, "is this the registry?")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COUNTRY = re.compile(r"[A-Z]{2}")


def _date(name: str, line: int, column: str, value: str,
          problems: list[Problem]) -> date | None:
    if _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(Problem(name, line, f"{column} '{value}' is not a date",
                            "write dates as YYYY-MM-DD, e.g. 2027-03-31"))
    return None


def _agency(name: str, line: int, row: dict[str, str], problems: list[Problem]) -> Agency | None:
    before = len(problems)
    if not licence_key(row["licence"]):
        problems.append(Problem(name, line, "licence is empty", "every agency needs its number"))
    if not row["name"]:
        problems.append(Problem(name, line, "name is empty", "write the agency's name"))
    for column, limit in (("name", MAX_NAME), ("source", MAX_SOURCE)):
        if len(row[column]) > limit:
            problems.append(Problem(name, line, f"{column} is longer than {limit} characters",
                                    "shorten it"))
    status = row["status"].lower()
    if status not in STATUSES:
        problems.append(Problem(name, line, f"status '{row['status']}' is not one of "
                                + ", ".join(STATUSES), "use one of the listed words"))
    country = row["country"].upper()
    if not _COUNTRY.fullmatch(country) or country not in _territories("en"):
        problems.append(Problem(name, line, f"country '{row['country']}' is not a country code",
                                "use the two-letter ISO code, e.g. NP, MA"))
    expires = None
    if row["expires"]:
        expires = _date(name, line, "expires", row["expires"], problems)
    elif status == "licensed":
        problems.append(Problem(name, line, "expires is empty for a licensed agency",
                                "write the licence's expiry date, YYYY-MM-DD"))
    if not row["source"]:
        problems.append(Problem(name, line, "source is empty",
                                "say where the data comes from"))
    data_date = _date(name, line, "data_date", row["data_date"], problems)
    if len(problems) > before or data_date is None:
        return None
    other = tuple(n.strip() for n in row["other_names"].split("|") if n.strip())
    return Agency(row["licence"], row["name"], other, country, status, expires, row["source"],
                  data_date, line)


def file_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def check_file(directory: Path) -> list[Problem]:
    """The problems of a content tree's registry (none when it has no registry)."""
    path = Path(directory) / AGENCY_FILE
    if not path.is_file():
        return []
    return parse_agencies(_read(path))[1]


def _read(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(MAX_FILE_BYTES + 1)


# ---------------------------------------------------------------- the name index


def _max_edits(length: int) -> int:
    return 0 if length <= 3 else 1 if length <= 5 else 2 if length <= 9 else 3


class NameIndex:
    """Words of agency names -> agencies, for fuzzy name search in memory."""

    def __init__(self, version: str, entries: Iterable[tuple[str, Sequence[str]]]):
        self.version = version
        self.keys: list[str] = []  # position -> licence key
        self.names: list[tuple[str, ...]] = []  # position -> folded names
        postings: dict[str, list[int]] = {}
        for key, names in entries:
            position = len(self.keys)
            self.keys.append(key)
            folded = tuple(fold(n) for n in names)
            self.names.append(folded)
            for word in {w for n in folded for w in n.split() if w not in STOP_WORDS}:
                postings.setdefault(word, []).append(position)
        self.postings = {w: frozenset(p) for w, p in postings.items()}
        self.lengths = [len(names[0]) if names else 0 for names in self.names]
        self.shortest_first = sorted(range(len(self.keys)), key=self.lengths.__getitem__)
        count = max(len(self.keys), 1)
        self.idf = {w: math.log(1 + count / len(p)) for w, p in self.postings.items()}
        self.max_idf = math.log(1 + count)
        self.common = max(_COMMON_MIN, int(count * _COMMON_SHARE))
        self.vocabulary = sorted(self.postings)
        self.by_length: dict[int, list[str]] = {}
        for word in self.vocabulary:
            self.by_length.setdefault(len(word), []).append(word)

    def __len__(self) -> int:
        return len(self.keys)

    def matches(self, word: str) -> dict[str, float]:
        """Index words close to ``word``: exact 1.0, within a few edits, or by prefix."""
        found: dict[str, float] = {}
        size = len(word)
        edits = _max_edits(size)
        if edits:
            for length in range(size - edits, size + edits + 1):
                bucket = self.by_length.get(length)
                if not bucket:
                    continue
                for other, distance, _ in process.extract(
                        word, bucket, scorer=OSA.distance, score_cutoff=edits, limit=None):
                    found[other] = 1 - distance / max(size, length)
        if size >= 3:
            start = bisect.bisect_left(self.vocabulary, word)
            for other in self.vocabulary[start:start + 50]:
                if not other.startswith(word):
                    break
                found[other] = max(found.get(other, 0.0), 0.7 + 0.3 * size / len(other))
        if word in self.postings:
            found[word] = 1.0
        return found

    def _split(self, word: str) -> list[str] | None:
        """A word typed without its space ('sunrisemanpower') as two index words."""
        for cut in range(3, len(word) - 2):
            if word[:cut] in self.postings and word[cut:] in self.postings:
                return [word[:cut], word[cut:]]
        return None

    def search(self, query: str) -> tuple[list[tuple[str, float]], int]:
        """The best agencies for a name as (licence key, score), and how many matched."""
        query_words = list(dict.fromkeys(words(query)))[:8]
        if not query_words or not self.keys:
            return [], 0
        per_word: list[dict[str, float]] = []
        for word in query_words:
            found = self.matches(word)
            parts = None if found or len(word) < 6 else self._split(word)
            per_word += [{part: 1.0} for part in parts] if parts else [found]
        for i in range(len(query_words) - 1):  # 'sun rise' typed for 'sunrise'
            if len(per_word) != len(query_words):
                break
            joined = self.matches(query_words[i] + query_words[i + 1])
            for found in per_word[i:i + 2]:
                for word, sim in joined.items():
                    if sim >= JOINED_MIN:
                        found[word] = max(found.get(word, 0.0), sim)
        weights: list[float] = []
        sims: list[dict[int, float]] = []
        rare: list[int] = []
        for i, found in enumerate(per_word):
            if not found:
                weights.append(self.max_idf)
                sims.append({})
                continue
            best = max(found.items(), key=lambda item: (item[1], self.idf[item[0]]))[0]
            weights.append(self.idf[best])
            by_agency: dict[int, float] = {}
            for word, sim in sorted(found.items(), key=lambda item: item[1]):
                by_agency.update(dict.fromkeys(self.postings[word], sim))
            sims.append(by_agency)
            if len(self.postings[best]) <= self.common:
                rare.append(i)
        if rare:
            candidates: set[int] = set().union(*(sims[i].keys() for i in rare))
        else:  # only common words: agencies that have them all
            candidates = set(sims[0]).intersection(*sims[1:]) if all(sims) else set()
        matched = len(candidates)
        if matched > CANDIDATE_CAP:  # words most names share: score the shortest names
            candidates = set(itertools.islice(
                (p for p in self.shortest_first if p in candidates), CANDIDATE_CAP))
        total = sum(weights)
        pairs = list(zip(weights, sims, strict=True))
        scored = []
        for position in candidates:
            score = sum(w * s.get(position, 0.0) for w, s in pairs) / total
            if score >= MIN_SCORE:
                scored.append((score, position))
        if not scored:
            return [], 0
        best_score = max(score for score, _ in scored)
        scored = [(s, p) for s, p in scored if s >= best_score - WITHIN_BEST]
        count = len(scored) if matched <= CANDIDATE_CAP else matched
        folded = " ".join(query_words)
        top = heapq.nsmallest(MAX_SHOWN * 4, scored,
                              key=lambda sp: (-round(sp[0], 3), self.lengths[sp[1]], sp[1]))
        ranked = sorted(top, key=lambda sp: (-round(sp[0], 3), -max(
            fuzz.ratio(folded, n) for n in self.names[sp[1]]), sp[1]))
        return [(self.keys[p], s) for s, p in ranked], count


# ---------------------------------------------------------------- search and service


@dataclass(frozen=True)
class Found:
    """What a search found: the best agencies (at most MAX_SHOWN) and how many in all."""

    agencies: tuple[Agency, ...]
    count: int
    too_short: bool = False
    also: tuple[str, ...] = ()  # per agency: the other name that matched, or ""


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
        data = _read(path) if path.is_file() else None
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
        except sqlite3.Error as exc:
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


# ---------------------------------------------------------------- what the caller reads


@lru_cache(maxsize=16)
def _territories(lang: str) -> Mapping[str, str]:
    try:
        return dict(Locale.parse(lang).territories)
    except (UnknownLocaleError, ValueError):
        return dict(Locale.parse("en").territories)


def country_name(code: str, lang: str) -> str:
    return _territories(lang).get(code, code)


PluralTranslate = Callable[[str, str, str, int], str]  # (lang, singular, plural, n)


def render(found: Found | None, lang: str, t: Translate, today: date,
           nt: PluralTranslate | None = None) -> str:
    """Search results as text in the caller's language; the engine pages it."""
    if found is None:
        return t(lang, m.AGENCY_UNAVAILABLE)
    if found.too_short:
        return t(lang, m.AGENCY_TOO_SHORT)
    if not found.agencies:
        return t(lang, m.AGENCY_NO_MATCH)
    lines = []
    several = len(found.agencies) > 1 or found.count > 1
    if several:
        singular, plural = m.AGENCY_FOUND
        found_line = (nt(lang, singular, plural, found.count) if nt else
                      singular if found.count == 1 else plural).format(count=found.count)
        if found.count > len(found.agencies):
            found_line += " " + t(lang, m.AGENCY_CLOSEST).format(shown=len(found.agencies))
        lines.append(found_line)
    for number, agency in enumerate(found.agencies, start=1):
        also = found.also[number - 1] if number <= len(found.also) else ""
        name = f"{agency.name} / {also}" if also else agency.name
        lines.append(f"{number}. {name}" if several else name)
        lines.append(_status(agency, lang, t, today))
        lines.append(f"{agency.licence}, {country_name(agency.country, lang)}")
        lines.append(t(lang, m.AGENCY_SOURCE).format(source=agency.source,
                                                     date=agency.data_date.isoformat()))
    if found.count > len(found.agencies):
        lines.append(t(lang, m.AGENCY_NARROW))
    return "\n".join(lines)


def _matched_other_name(query: str, agency: Agency) -> str:
    """The other name a query found the agency by, when it is closer than the name."""
    if not agency.other_names:
        return ""
    folded = fold(query)
    scores = [fuzz.WRatio(folded, fold(n)) for n in (agency.name, *agency.other_names)]
    best = max(range(len(scores)), key=scores.__getitem__)
    return agency.other_names[best - 1] if best and scores[best] > scores[0] else ""


def _status(agency: Agency, lang: str, t: Translate, today: date) -> str:
    expires = agency.expires.isoformat() if agency.expires else ""
    if agency.status == "suspended":
        status = t(lang, m.AGENCY_SUSPENDED)
    elif agency.status == "revoked":
        status = t(lang, m.AGENCY_REVOKED)
    elif agency.expired(today):
        status = t(lang, m.AGENCY_EXPIRED).format(date=expires)
    else:
        return t(lang, m.AGENCY_LICENSED).format(date=expires)
    return f"{status}. {t(lang, m.AGENCY_DO_NOT_PAY)}"


__all__ = ["AGENCY_FILE", "COLUMNS", "Agency", "AgencyRegistry", "Found", "NameIndex",
           "check_file", "fold", "licence_key", "parse_agencies", "render"]
