"""The name index: fuzzy search of agency names in memory.

The rows live in SQLite (``store``), keyed by the normalised licence
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
import heapq
import itertools
import math
from collections.abc import Collection, Iterable, Sequence

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from ussd_app.agencies.agency import (
    STOP_WORDS,
    fold,
    licence_forms,
    licence_key,
    licence_query,
    words,
)

MAX_SHOWN = 5  # agencies listed on the phone; the rest is counted
MIN_SCORE = 0.6  # share of the query (weighted by rarity) a name must cover
WITHIN_BEST = 0.25  # and no further than this below the best match
CANDIDATE_CAP = 2000  # agencies scored at most; the rest only counted
_COMMON_SHARE = 0.02  # a word in more than this share of agencies is common
_COMMON_MIN = 20
JOINED_MIN = 0.85  # two typed words read as one index word only when this close

Sims = dict[int, float]  # agency position -> how well one query word matched it


def _max_edits(length: int) -> int:
    return 0 if length <= 3 else 1 if length <= 5 else 2 if length <= 9 else 3


class NameIndex:
    """Words of agency names -> agencies, for fuzzy name search in memory."""

    def __init__(self, version: str, entries: Iterable[
            tuple[str, Sequence[str]] | tuple[str, Sequence[str], str, str]]):
        """``entries``: (licence key, names[, licence, country]) per agency."""
        self.version = version
        self.keys: list[str] = []  # position -> licence key
        self.names: list[tuple[str, ...]] = []  # position -> folded names
        self.countries: list[str] = []  # position -> ISO code of the licensing country
        self.forms: dict[str, list[int]] = {}  # licence form -> positions (licence_forms)
        postings: dict[str, list[int]] = {}
        for entry in entries:
            key, names = entry[0], entry[1]
            licence = str(entry[2]) if len(entry) > 2 else key
            position = len(self.keys)
            self.keys.append(key)
            self.countries.append(str(entry[3]) if len(entry) > 3 else "")
            for form in licence_forms(licence) | {key}:
                self.forms.setdefault(form, []).append(position)
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


    def licences(self, query: str, prefer: Collection[str] = ()) -> list[str]:
        """Licence keys of the agencies whose number the query is, in any form
        (``licence_forms``): those of the preferred countries first, then file order."""
        found: set[int] = set()
        for form in {licence_query(query), licence_key(query)}:
            found.update(self.forms.get(form, ()))
        return [self.keys[p] for p in sorted(
            found, key=lambda p: (self.countries[p] not in prefer, p))]

    def search(self, query: str, prefer: Collection[str] = ()
               ) -> tuple[list[tuple[str, float]], int]:
        """The best agencies for a name as (licence key, score), and how many matched.

        Ranked by how well they match, then those of the ``prefer`` countries (the
        caller's corridor) first, then by the name closest to the query."""
        query_words = list(dict.fromkeys(words(query)))[:8]
        if not query_words or not self.keys:
            return [], 0
        per_word = self._per_word(query_words)
        weights, sims, rare = self._weigh(per_word)
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
        return self._rank(" ".join(query_words), scored, prefer), count

    def _per_word(self, query_words: list[str]) -> list[dict[str, float]]:
        """Per query word, the index words it matches and how well."""
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
        return per_word

    def _weigh(self, per_word: list[dict[str, float]]
               ) -> tuple[list[float], list[Sims], list[int]]:
        """Each word's weight (rarity), the agencies it matched, and which words are rare."""
        weights: list[float] = []
        sims: list[Sims] = []
        rare: list[int] = []
        for i, found in enumerate(per_word):
            if not found:
                weights.append(self.max_idf)
                sims.append({})
                continue
            best = max(found.items(), key=lambda item: (item[1], self.idf[item[0]]))[0]
            weights.append(self.idf[best])
            by_agency: Sims = {}
            for word, sim in sorted(found.items(), key=lambda item: item[1]):
                by_agency.update(dict.fromkeys(self.postings[word], sim))
            sims.append(by_agency)
            if len(self.postings[best]) <= self.common:
                rare.append(i)
        return weights, sims, rare

    def _rank(self, folded: str, scored: list[tuple[float, int]],
              prefer: Collection[str] = ()) -> list[tuple[str, float]]:
        """The best scored agencies first, the caller's corridor first among equals; then
        the name closest to the query."""
        countries = self.countries
        top = heapq.nsmallest(MAX_SHOWN * 4, scored, key=lambda sp: (
            -round(sp[0], 3), countries[sp[1]] not in prefer, self.lengths[sp[1]], sp[1]))
        ranked = sorted(top, key=lambda sp: (
            -round(sp[0], 3), countries[sp[1]] not in prefer,
            -max(fuzz.ratio(folded, n) for n in self.names[sp[1]]), sp[1]))
        return [(self.keys[p], s) for s, p in ranked]
