"""An agency as the registry holds it, and how its names and licence numbers compare.

Search, the file check and the dashboard all compare through ``fold`` and
``licence_key``, so 'np-demo 0001' and 'NP.DEMO.0001' are one licence and
'Société' matches 'societe' everywhere.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError

# Legal forms and joining words: in neither the query nor the index.
STOP_WORDS = frozenset(
    "pvt private ltd limited llc plc inc co company sa sarl suarl the and of et".split())



@dataclass(frozen=True)
class Statement:
    """What another source says of the same licence (two official lists may disagree:
    callers read both, newest first)."""

    source: str
    data_date: date
    status: str
    expires: date | None

    def expired(self, today: date) -> bool:
        return self.status == "licensed" and self.expires is not None and self.expires < today

    def record(self) -> dict[str, str]:
        return {"source": self.source, "data_date": self.data_date.isoformat(),
                "status": self.status, "expires": self.expires.isoformat() if self.expires
                else ""}

    @classmethod
    def from_record(cls, row: Mapping[str, str]) -> Statement:
        return cls(row["source"], date.fromisoformat(row["data_date"]), row["status"],
                   date.fromisoformat(row["expires"]) if row.get("expires") else None)


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
    also: tuple[Statement, ...] = ()  # other sources' statements, newest first

    def statement(self) -> Statement:
        return Statement(self.source, self.data_date, self.status, self.expires)

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
            "also": json.dumps([a.record() for a in self.also]) if self.also else "",
        }

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> Agency:
        return cls(
            licence=row["licence"], name=row["name"],
            other_names=tuple(n for n in (row["other_names"] or "").split("|") if n),
            country=row["country"], status=row["status"],
            expires=date.fromisoformat(row["expires"]) if row["expires"] else None,
            source=row["source"], data_date=date.fromisoformat(row["data_date"]),
            also=tuple(Statement.from_record(a) for a in json.loads(row.get("also") or "[]")),
        )

    def expired(self, today: date) -> bool:
        return self.status == "licensed" and self.expires is not None and self.expires < today


def by_licence(agencies: list[Agency]) -> list[Agency]:
    """One agency a licence, as callers are served: where several sources list it, the
    newest source's line, with the others' statements under it (newest first)."""
    groups: dict[str, list[Agency]] = {}
    for agency in agencies:
        groups.setdefault(licence_query(agency.licence), []).append(agency)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        newest, *older = sorted(group, key=lambda a: a.data_date, reverse=True)
        out.append(replace(newest, also=tuple(a.statement() for a in older)))
    return out


@dataclass(frozen=True)
class Found:
    """What a search found: the best agencies (at most MAX_SHOWN) and how many in all."""

    agencies: tuple[Agency, ...]
    count: int
    too_short: bool = False
    also: tuple[str, ...] = ()  # per agency: the other name that matched, or ""


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


_RUNS = re.compile(r"\d+|[^\W\d_]+")


def _canonical(parts: list[str]) -> str:
    """Letter and digit runs as compared: letters run together, numbers without their
    leading zeros, a dot between runs that are not both letters ('npdemo.2')."""
    out = ""
    previous_letters = False
    for part in parts:
        for run in _RUNS.findall(part):
            letters = not run[0].isdigit()
            if out and not (letters and previous_letters):
                out += "."
            out += run if letters else (run.lstrip("0") or "0")
            previous_letters = letters
    return out


def licence_query(text: str) -> str:
    """What a caller typed, as a licence form: 'NP demo 2', 'np-demo-0002' and
    'NPDEMO0002' are all 'npdemo.2'."""
    return _canonical(fold(text).split())


def licence_forms(licence: str) -> set[str]:
    """Every form a caller may type a licence in, as compared (``licence_query``).

    The whole number in any case, spacing or punctuation, with or without leading
    zeros; the number without its leading words ('demo 2', '0002' for NP-DEMO-0002),
    only from a word with a digit on; and its digits alone, run together. Several
    licences may share a form: the caller then gets a tie list.
    """
    parts = fold(licence).split()
    forms = {licence_key(licence), _canonical(parts)}
    for start in range(1, len(parts)):
        tail = _canonical(parts[start:])
        if any(c.isdigit() for c in tail):
            forms.add(tail)
    digits = "".join(c for c in licence_key(licence) if c.isdigit())
    if digits:
        forms |= {digits, digits.lstrip("0") or "0"}
    forms.discard("")
    return forms


def words(text: str) -> list[str]:
    return [w for w in fold(text).split() if w not in STOP_WORDS]



# ---------------------------------------------------------------- countries


@lru_cache(maxsize=16)
def territories(lang: str) -> Mapping[str, str]:
    """Country names by ISO code in ``lang`` (English when babel does not know it)."""
    try:
        return dict(Locale.parse(lang).territories)
    except (UnknownLocaleError, ValueError):
        return dict(Locale.parse("en").territories)


def country_name(code: str, lang: str) -> str:
    return territories(lang).get(code, code)
