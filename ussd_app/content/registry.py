"""The content being served: the current tree, and the ones sessions started on.

A tree is only ever swapped in whole, after the loader found no error and
every screen of every language was paged for every channel layout (which
also warms the page cache, so the first caller does not pay for it). Older
trees stay available by version for the sessions that began on them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ussd_app import jobs
from ussd_app.engine.files import SITE_FILE
from ussd_app.engine.loader import ContentError, Problem, read_tree
from ussd_app.engine.model import ARTICLE, Tree
from ussd_app.engine.paging import (
    FitError,
    article_fits,
    first_contact_pages,
    has_short,
    node_pages,
    short_pages,
)
from ussd_app.engine.screens import Layout, Translate
from ussd_app.engine.state import LANGUAGE_NODE
from ussd_app.engine.yamlfile import locate

log = logging.getLogger(__name__)
KEEP_VERSIONS = 8
MISSING_RETRY_SECONDS = 30.0  # a version not found on disk is looked for again after this
LoadData = Callable[[Path, str, bool], None]  # (folder, its tree's version, served now?)
Archive = Callable[[str], Path | None]  # content version -> the folder holding it on disk


# key -> (the catalogs object, kept alive so its id is never reused; the problems)
_FITTED: OrderedDict[tuple[Any, ...], tuple[Any, list[Problem]]] = OrderedDict()
_FITTED_LOCK = threading.Lock()
FITTED_KEEP = 16


def fit_problems(tree: Tree, layouts: Iterable[Layout], t: Translate) -> list[Problem]:
    """``_fit_problems``, once per content version, layouts and catalogs in a process.

    The same tree is checked again by every app a process builds (each test, each
    reload of an unchanged folder); with twelve languages a check costs 0.3 s. The key
    is the tree's version (a hash of every file), the layouts and the catalogs behind
    ``t``; a ``t`` that is not a bound method is not cached.
    """
    owner = getattr(t, "__self__", None)
    if owner is None:
        return _fit_problems(tree, layouts, t)
    layouts = list(layouts)
    key = (tree.version, tuple(repr(layout) for layout in layouts), id(owner),
           getattr(t, "__func__", None))
    with _FITTED_LOCK:
        found = _FITTED.get(key)
    if found is not None:
        return list(found[1])
    problems = _fit_problems(tree, layouts, t)
    with _FITTED_LOCK:
        _FITTED[key] = (owner, list(problems))
        while len(_FITTED) > FITTED_KEEP:
            _FITTED.popitem(last=False)
    return problems


def _fit_problems(tree: Tree, layouts: Iterable[Layout], t: Translate) -> list[Problem]:
    """Page every node in every language for every layout; report what cannot fit.

    An article is only checked for what could stop its paging (its title and
    footer with one character of text), since any text cuts into pages from
    there: that is as good as paging it, at a fraction of the cost (articles
    are most of a tree). Everything else is paged in full. ``warm`` fills the
    page cache of the hot path afterwards, off the path of the check.
    """
    problems = []
    failed: set[tuple[str, str]] = set()  # one message per node and language is enough
    for layout in layouts:
        for node in tree.nodes.values():
            for lang in tree.language_codes:
                if (node.id, lang) in failed or \
                        node.type not in (getattr(layout, "node_types", ()) or (node.type,)):
                    continue
                try:
                    if node.type == ARTICLE:
                        article_fits(tree, node, lang, layout, t)
                        if has_short(node, layout, lang):  # its keys must leave room
                            short_pages(tree, node, lang, layout, t)
                    else:
                        node_pages(tree, node, lang, layout, t, root=node.id == tree.main)
                except FitError as exc:
                    failed.add((node.id, lang))
                    problems.append(Problem(node.source, 1, f"does not fit on a screen: {exc}",
                                            "shorten the title or labels in that language"))
    return problems + language_screen_problems(tree, layouts, t)


FIRST_SCREEN_PAGES = 2  # a caller who reads none of the names on page 1 turns one page


def language_screen_problems(tree: Tree, layouts: Iterable[Layout], t: Translate
                             ) -> list[Problem]:
    """The first screen (the language list) must show every language within two pages.

    A caller who has not chosen a language cannot read "98 More" in theirs: a language
    on page three is one they will not find.
    """
    node = tree.nodes.get(LANGUAGE_NODE)
    if node is None:
        return []
    problems = []
    for layout in layouts:
        if node.type not in (getattr(layout, "node_types", ()) or (node.type,)):
            continue
        try:
            pages = len(first_contact_pages(tree, node, layout, t))
        except FitError as exc:
            problems.append(Problem(SITE_FILE, _languages_line(tree), f"the first screen "
                                    f"does not fit: {exc}", "shorten the language's name"))
            continue
        if pages > FIRST_SCREEN_PAGES:
            problems.append(Problem(
                SITE_FILE, _languages_line(tree),
                f"the first screen needs {pages} pages to list {len(tree.languages)} "
                f"languages ({layout.key}); every language must be within "
                f"{FIRST_SCREEN_PAGES}", "offer fewer languages on this service, or shorter "
                "names (the language list pages like any menu, behind 98 More)"))
    return problems


def _languages_line(tree: Tree) -> int:
    try:
        text = (Path(tree.root) / SITE_FILE).read_text("utf-8") if tree.root else ""
    except OSError:
        text = ""
    return locate(text, ["languages"]) if text else 1


def warm(tree: Tree, layout: Layout, t: Translate) -> None:
    """Page every node of a served tree for the hot path, so no caller waits on paging."""
    for node in tree.nodes.values():
        for lang in tree.language_codes:
            try:
                node_pages(tree, node, lang, layout, t, root=node.id == tree.main)
                if node.id == LANGUAGE_NODE and lang == tree.default_language:
                    first_contact_pages(tree, node, layout, t)
            except FitError:  # the check let it through: it pages, so this cannot happen
                log.exception("paging %s in %s failed after the check passed", node.id, lang)


class ContentRegistry:
    """The trees this process serves: the current one, and those sessions started on.

    A session keeps the content version it started on. A version this process
    has not seen (another worker or node loaded it, or this process restarted
    or evicted it since) is read from disk by its version id: from the synced
    mirror's version folders (``archive``), checked as the current tree is,
    and kept in memory. A version found nowhere is looked for again only
    after ``MISSING_RETRY_SECONDS``; its sessions go on with the current tree,
    whose engine takes a node it does not have back to the menu.
    """

    def __init__(self, directory: Path, layouts: Iterable[Layout], t: Translate,
                 load_data: LoadData | None = None, archive: Archive | None = None):
        self.directory = directory
        # Loads data files kept beside the tree (the agency registry) before a tree is
        # swapped in; raises ContentError to refuse the tree. Runs on every load.
        self.load_data = load_data
        self.archive = archive
        self._missing: dict[str, float] = {}
        self._disk_lock = threading.Lock()
        self.layouts = tuple(layouts)
        self.t = t
        self._lock = threading.Lock()
        self._trees: OrderedDict[str, Tree] = OrderedDict()
        self.current: Tree | None = None
        self.problems: list[Problem] = []
        self.loaded_at: float | None = None
        self.error: str | None = None
        self._poll_lock = threading.Lock()
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._watcher: jobs.Periodic | None = None

    def check(self, directory: Path | None = None) -> Tree:
        """Load and fully check the folder; raise ``ContentError`` if it must not be served."""
        tree = read_tree(directory or self.directory)
        problems = fit_problems(tree, self.layouts, self.t)
        if problems:
            raise ContentError(problems)
        return tree

    def load(self) -> bool:
        """Swap in the folder's tree if it is good; keep serving the old one if not."""
        if self._fingerprint is None:
            self._fingerprint = self.fingerprint()
        # A synced mirror is a symlink switched to each new version: resolve it once, so a
        # load reads one version even when the link is switched meanwhile.
        directory = self.directory.resolve()
        try:
            tree = self.check(directory)
            if self.load_data is not None:
                self.load_data(directory, tree.version, True)
        except ContentError as exc:
            self.error = str(exc)
            self.problems = exc.problems
            for problem in exc.problems[:20]:
                log.error("content not loaded: %s", problem)
            if self.current is None:  # serving nothing: try again at the next poll, even
                self._fingerprint = ()  # if the folder is unchanged (the cause may be passing)
            return False
        with self._lock:
            self._keep(tree)
            self.current = tree
            self.loaded_at = time.time()
            self.error = None
        log.info("serving content version %s (%d nodes, %s)", tree.version, len(tree.nodes),
                 ", ".join(tree.language_codes))
        if self.layouts:
            jobs.once(lambda: warm(tree, self.layouts[0], self.t), "content-warm")
        return True

    def _keep(self, tree: Tree) -> None:
        """Hold a tree in memory (the caller holds ``_lock``); the oldest held goes."""
        self._trees[tree.version] = tree
        self._trees.move_to_end(tree.version)
        while len(self._trees) > KEEP_VERSIONS:
            self._trees.popitem(last=False)

    def get(self, version: str | None) -> Tree | None:
        """The tree a session started on, else the current one."""
        if version:
            found = self._trees.get(version)
            if found is None and self.current is not None and version != self.current.version:
                found = self._other(version)
            if found is not None:
                return found
        return self.current

    def _other(self, version: str) -> Tree | None:
        """A version this process does not hold. Another worker may have loaded a newer
        one first: look at the folder; else read that version from disk."""
        missed = self._missing.get(version)
        if missed is not None and time.monotonic() - missed < MISSING_RETRY_SECONDS:
            return None
        self.poll()
        return self._trees.get(version) or self.load_version(version)

    def load_version(self, version: str) -> Tree | None:
        """Read a kept version from disk for the sessions on it, checked in full; None
        when it is not on disk (or fails the check). One load at a time: the hops of
        other sessions on that version wait for it rather than load it again."""
        with self._disk_lock:
            found = self._trees.get(version)
            if found is not None:
                return found
            folder = self.archive(version) if self.archive is not None else None
            tree = self._read_version(folder, version) if folder is not None else None
            if tree is None:
                if len(self._missing) >= 1000:
                    self._missing.clear()
                self._missing[version] = time.monotonic()
                log.warning("content version %s is not on disk: its sessions go on with %s",
                            version, self.current.version if self.current else "nothing")
                return None
            with self._lock:
                self._keep(tree)
            self._missing.pop(version, None)
        log.info("content version %s loaded from %s for the sessions still on it",
                 version, folder)
        if self.layouts:
            jobs.once(lambda: warm(tree, self.layouts[0], self.t), "content-warm")
        return tree

    def _read_version(self, folder: Path, version: str) -> Tree | None:
        try:
            tree = self.check(folder)
            if tree.version != version:  # the folder was not what its manifest says
                log.error("%s holds content version %s, not %s", folder, tree.version, version)
                return None
            if self.load_data is not None:
                self.load_data(folder, version, False)
        except ContentError as exc:
            log.error("content version %s in %s cannot be served: %s", version, folder, exc)
            return None
        return tree

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """Names, sizes and modification times: cheap to read every few seconds.

        With the folder's real path first: a synced mirror switches a symlink.
        """
        found = [(os.path.realpath(self.directory), 0, 0)]
        for directory, _, names in os.walk(self.directory):
            for name in names:
                try:
                    st = os.stat(os.path.join(directory, name))
                except OSError:
                    continue
                found.append((os.path.join(directory, name), st.st_size, st.st_mtime_ns))
        return tuple(sorted(found))

    def poll(self) -> bool:
        """Reload when the folder changed; True when a new tree is now served."""
        with self._poll_lock:
            fingerprint = self.fingerprint()
            if fingerprint == self._fingerprint:
                return False
            self._fingerprint = fingerprint
            before = self.current.version if self.current else None
            return self.load() and self.current is not None and self.current.version != before

    def watch(self, interval: float) -> None:
        """Hot reload: poll the folder in the background (one poller per process)."""
        if interval > 0 and self._watcher is None:
            if self._fingerprint is None:
                self._fingerprint = self.fingerprint()
            self._watcher = jobs.every(interval, self.poll, "content-reload",
                                       run_at_stop=False)

    def health(self) -> dict[str, Any]:
        tree = self.current
        return {
            "status": "ok" if tree and not self.error else "error" if not tree else "degraded",
            "version": tree.version if tree else None,
            "nodes": len(tree.nodes) if tree else 0,
            "languages": list(tree.language_codes) if tree else [],
            # served, but no native speaker has read them yet: field staff should know
            "languages_unreviewed": [lang.code for lang in tree.languages
                                     if not lang.reviewed_by
                                     and lang.code != tree.default_language] if tree else [],
            "sample": tree.sample if tree else None,
            "loaded_at": self.loaded_at,
            "error": self.error,
        }
