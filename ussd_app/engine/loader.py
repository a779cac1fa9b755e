"""Parse and check a content tree; build a ``Tree`` only when it has no error.

The core, ``parse_tree``, takes the files as bytes and does no I/O, so the
same checks run on a folder being edited, on a bundle being synced and in
tests. Every problem names its file and line: field staff fix files, not
tracebacks. Line numbers are looked up only for files with a problem, so a
clean tree is parsed once with the C YAML loader and never composed twice.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ussd_app.engine.checks import node_problems, phone_problem
from ussd_app.engine.contacts import Directory
from ussd_app.engine.files import CONTACTS_FILE, SITE_FILE, decode_text, read_files
from ussd_app.engine.links import coverage_problems, link_problems
from ussd_app.engine.model import Entry, Language, Node, Option, Text, Tree
from ussd_app.engine.problems import ERROR, INFO, WARNING, ContentError, Problem
from ussd_app.engine.schema import (
    CONTACTS_VALIDATOR,
    NODE_VALIDATOR,
    SITE_VALIDATOR,
    schema_problems,
)
from ussd_app.engine.yamlfile import locate, parse_yaml


def read_tree(root: Path | str) -> Tree:
    """Load a folder; raise ``ContentError`` if it has any error."""
    root = Path(root)
    if not root.is_dir():
        raise ContentError([Problem(str(root), 0, "content folder not found",
                                    "set MIGRANTLINE_CONTENT_DIR to a content tree")])
    files = read_files(root)
    key = (_version(files), str(root))
    with _TREES_LOCK:
        cached = _TREES.get(key)
    if cached is not None:
        return cached
    tree, problems = parse_tree(files, root=str(root))
    if tree is None:
        raise ContentError(problems)
    with _TREES_LOCK:
        _TREES[key] = tree
        while len(_TREES) > TREES_KEEP:
            _TREES.pop(next(iter(_TREES)))
    return tree


# One parsed tree per (content version, folder) in a process: every app a process builds
# on the same folder (each test; a reload of an unchanged folder) shares it, and with it
# the pages cached on it (paging twelve languages again cost 0.3 s per app). A tree is
# never changed once parsed.
_TREES: dict[tuple[str, str], Tree] = {}
_TREES_LOCK = threading.Lock()
TREES_KEEP = 8


def _text(value: Any) -> Text | None:
    if value is None:
        return None
    return {k: v for k, v in value.items()}


def normalise_body(text: str) -> str:
    """Paragraphs split on blank lines; lines inside a paragraph joined."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def _body(value: Any) -> Text | None:
    if value is None:
        return None
    return {k: normalise_body(v) for k, v in value.items()}


def _node(data: Mapping[str, Any], source: str) -> Node:
    options = tuple(
        Option(o) if isinstance(o, str) else
        Option(o.get("target", ""), _text(o.get("label")), value=o.get("value", ""),
               next=o.get("next"), action=o.get("action"), keep_as=o.get("keep_as"))
        for o in data.get("options", ())
    )
    entries = tuple(
        Entry(name=_text(e["name"]) or {}, phone=e["phone"], hours=_text(e.get("hours")),
              where=_text(e.get("where")), placeholder=bool(e.get("placeholder", False)),
              country=str(e.get("country", "")), contact=str(e.get("contact", "")))
        for e in data.get("entries", ())
    )
    return Node(
        id=data["id"], type=data["type"], title=_text(data["title"]) or {}, source=source,
        label=_text(data.get("label")), body=_body(data.get("body")),
        short=_body(data.get("short")),
        intro=_body(data.get("intro")), options=options, entries=entries,
        prompt=_text(data.get("prompt")), service=data.get("service"), next=data.get("next"),
        sample=bool(data.get("sample", False)), field_name=data.get("field", ""),
        input=data.get("input", "text"), max_length=int(data.get("max_length", 160)),
        action=data.get("action"), outcomes=dict(data.get("outcomes", {})),
        summary=tuple(data.get("summary", ())), skip_if=tuple(data.get("skip_if", ())),
        prefer_from=tuple(data.get("prefer_from", ())),
        entries_from=data.get("entries_from"), end=bool(data.get("end", False)),
    )


def _version(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:12]


def parse_tree(files: Mapping[str, bytes], root: str = "") -> tuple[Tree | None, list[Problem]]:
    """Check every file and the links between them; a ``Tree`` only if no error."""
    problems: list[Problem] = []
    texts: dict[str, str] = {}
    site: Any = None
    if SITE_FILE not in files:
        problems.append(Problem(SITE_FILE, 0, "site.yaml is missing",
                                "every content tree needs site.yaml (languages, main menu)"))
    else:
        site = _load_one(SITE_FILE, files[SITE_FILE], SITE_VALIDATOR, texts, problems)
    directory = _directory(files, texts, problems)

    nodes: dict[str, Node] = {}
    broken: set[str] = set()  # ids of files that did not load: links to them say nothing new
    for name in sorted(n for n in files if n not in (SITE_FILE, CONTACTS_FILE)):
        if PurePosixPath(name).suffix not in (".yaml", ".yml"):
            problems.append(Problem(name, 0, "not a YAML file", "content nodes are .yaml files",
                                    WARNING))
            continue
        data = _load_one(name, files[name], NODE_VALIDATOR, texts, problems)
        if data is None:
            broken.add(PurePosixPath(name).stem)
            continue
        node_id = data["id"]
        if node_id != PurePosixPath(name).stem:
            problems.append(Problem(name, locate(texts[name], ["id"]),
                                    f"id '{node_id}' differs from the file name",
                                    f"rename the file to {node_id}.yaml or fix the id"))
        if node_id in nodes:
            problems.append(Problem(name, locate(texts[name], ["id"]),
                                    f"duplicate id '{node_id}', also in {nodes[node_id].source}",
                                    "give each node its own id"))
            continue
        nodes[node_id] = _node(directory.resolve(name, texts[name], data, problems), name)

    if site is not None:
        problems += [p for p in link_problems(site, nodes, texts)
                     if not any(f"'{stem}'" in p.message for stem in broken)]
    problems += node_problems(nodes, texts)
    if any(p.severity == ERROR for p in problems):
        return None, problems
    tree = Tree(
        version=_version(files),
        languages=tuple(Language(lang["code"], lang["name"], lang.get("translated_by", ""),
                                 lang.get("reviewed_by", ""),
                                 tuple(lang.get("spoken_in", ())))
                        for lang in site["languages"]),
        default_language=site["default_language"], main=site["main"], help=site["help"],
        nodes=nodes, root=root, sample=bool(site.get("sample", False)),
        name=str(site.get("name", "")),
    )
    problems += coverage_problems(tree, texts)
    return tree, problems


def _directory(files: Mapping[str, bytes], texts: dict[str, str],
               problems: list[Problem]) -> Directory:
    """The contact directory (empty when the tree has none), its numbers checked here."""
    if CONTACTS_FILE not in files:
        return Directory()
    data = _load_one(CONTACTS_FILE, files[CONTACTS_FILE], CONTACTS_VALIDATOR, texts, problems)
    if data is None:
        return Directory()
    for cid, contact in data["contacts"].items():
        problem = phone_problem(contact["phone"], placeholder=bool(contact.get("placeholder")))
        if problem is not None:
            severity, message, hint = problem
            problems.append(Problem(CONTACTS_FILE,
                                    locate(texts[CONTACTS_FILE], ["contacts", cid, "phone"]),
                                    f"contacts.{cid}.phone: {message}", hint, severity))
    return Directory(data["contacts"])


def _load_one(name: str, data: bytes, validator: Any, texts: dict[str, str],
              problems: list[Problem]) -> Any:
    text = decode_text(name, data, problems)
    if text is None:
        return None
    texts[name] = text
    parsed = parse_yaml(name, text, problems)
    if parsed is None and not any(p.file == name for p in problems):
        problems.append(Problem(name, 1, "file is empty", "write the node or delete the file"))
        return None
    if parsed is None:
        return None
    found = schema_problems(name, text, parsed, validator)
    problems += found
    return None if found else parsed


# Defined in the modules the loader is built from; imported from here by the CLI, the
# content registry and preview, the agency registry and the tests.
__all__ = ["ERROR", "INFO", "WARNING", "ContentError", "Problem", "decode_text",
           "normalise_body", "parse_tree", "read_files", "read_tree"]
