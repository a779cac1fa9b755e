"""Parse and check a content tree; build a ``Tree`` only when it has no error.

The core, ``parse_tree``, takes the files as bytes and does no I/O, so the
same checks run on a folder being edited, on a bundle being synced and in
tests. Every problem names its file and line: field staff fix files, not
tracebacks. Line numbers are looked up only for files with a problem, so a
clean tree is parsed once with the C YAML loader and never composed twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import fastjsonschema
import jsonschema
import yaml

from ussd_app.engine.model import (
    ASK,
    CHOICE,
    CONFIRM,
    CONTACTS,
    LANGUAGE,
    MENU,
    Entry,
    Language,
    Node,
    Option,
    Text,
    Tree,
)
from ussd_app.errors import ContentError

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it


class _FastLoader(_Base):  # type: ignore[misc,valid-type]
    """Safe loader that refuses duplicate keys, which YAML would silently merge."""


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_FastLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads yes, no, on and off as true and false: a French "Non" or an English "No"
# label would silently become a boolean. Only true and false are booleans here (YAML 1.2).
_BOOL = "tag:yaml.org,2002:bool"
_FastLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()}
_FastLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))

MAX_FILE_BYTES = 1_000_000
SITE_FILE = "site.yaml"
NODES_DIR = "nodes"

ERROR = "error"
WARNING = "warning"
INFO = "info"  # facts for `content check --verbose`, never a reason to fix anything


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a content tree, as field staff will read it."""

    file: str
    line: int
    message: str
    hint: str = ""
    severity: str = ERROR

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: {self.severity}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text




def _schema(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath("schemas", name).read_text("utf-8")
    return dict(json.loads(text))


_NODE_VALIDATOR = jsonschema.Draft202012Validator(_schema("node.schema.json"))
_SITE_VALIDATOR = jsonschema.Draft202012Validator(_schema("site.schema.json"))
# fastjsonschema compiles the schema to Python: it says valid or not, fast; jsonschema
# then explains the errors of the few files that are not.
_FAST_CHECKS = {
    id(_NODE_VALIDATOR): fastjsonschema.compile(_schema("node.schema.json")),
    id(_SITE_VALIDATOR): fastjsonschema.compile(_schema("site.schema.json")),
}


# ---------------------------------------------------------------- reading


def read_files(root: Path) -> dict[str, bytes]:
    """All content files under ``root`` as bytes, keyed by POSIX relative path.

    Oversized files are read only up to the limit plus one byte: enough for
    the check to refuse them without holding a 5 MB mistake in memory.
    """
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        rel = path.relative_to(root).as_posix()
        if not (rel == SITE_FILE or rel.startswith(NODES_DIR + "/")):
            continue
        with path.open("rb") as fh:
            files[rel] = fh.read(MAX_FILE_BYTES + 1)
    return files


def read_tree(root: Path | str) -> Tree:
    """Load a folder; raise ``ContentError`` if it has any error."""
    root = Path(root)
    if not root.is_dir():
        raise ContentError([Problem(str(root), 0, "content folder not found",
                                    "set MIGRANTLINE_CONTENT_DIR to a content tree")])
    tree, problems = parse_tree(read_files(root), root=str(root))
    if tree is None:
        raise ContentError(problems)
    return tree


# ---------------------------------------------------------------- parsing


def decode_text(name: str, data: bytes, problems: list[Problem],
                max_bytes: int = MAX_FILE_BYTES,
                too_big_hint: str = "split a long article into several articles") -> str | None:
    """Text of a content file, or None with the reason added to ``problems``.

    Shared by every kind of content file (YAML nodes, the agency CSV), so a
    byte-order mark or a bad byte gets the same message with its line
    wherever it is.
    """
    if len(data) > max_bytes:
        size = f"{max_bytes // 1_000_000} MB" if max_bytes >= 1_000_000 * 10 else \
            f"{max_bytes // 1000} kB"
        problems.append(Problem(name, 1, f"file is larger than {size}", too_big_hint))
        return None
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        problems.append(Problem(name, 1, "file starts with a byte-order mark (BOM)",
                                "save the file as UTF-8 without BOM"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(Problem(name, line, "text is not valid UTF-8",
                                "save the file with UTF-8 encoding"))
        return None
    lone = re.search(r"(?<!\r)\n", text)
    if "\r\n" in text and lone:
        problems.append(Problem(name, text[: lone.start()].count("\n") + 1,
                                "mixed line endings (Windows and Unix)",
                                "save the file with one kind of line ending"))
        return None
    if "\x00" in text:
        problems.append(Problem(name, text[: text.index("\x00")].count("\n") + 1,
                                "file contains a NUL character", "is this a text file?"))
        return None
    return text.replace("\r\n", "\n")


def _parse_yaml(name: str, text: str, problems: list[Problem]) -> Any:
    try:
        return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problems.append(Problem(name, line, f"YAML syntax: {exc.problem or exc}",
                                "check indentation and quote text that contains ': '"))
    except yaml.YAMLError as exc:
        problems.append(Problem(name, 1, f"YAML syntax: {exc}", "check the file's syntax"))
    return None


@lru_cache(maxsize=64)
def _compose(text: str) -> Any:
    """The YAML node tree of a file, with positions; only for files with a problem."""
    try:
        return yaml.compose(text, Loader=_Base)
    except yaml.YAMLError:
        return None


def locate(text: str, path: Iterable[Any]) -> int:
    """The 1-based line of the value at ``path`` in a YAML document (best effort)."""
    node = _compose(text)
    if node is None:
        return 1
    line = node.start_mark.line + 1 if node else 1
    for key in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    node, line = v, k.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _schema_problems(name: str, text: str, data: Any, validator: Any) -> list[Problem]:
    fast = _FAST_CHECKS.get(id(validator))
    if fast is not None:
        try:
            fast(data)
            return []  # valid: skip the slower validator that explains errors
        except fastjsonschema.JsonSchemaException:
            pass
    found = []
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in
                                                                   e.absolute_path]):
        path = list(err.absolute_path)
        where = ".".join(str(p) for p in path) or "file"
        found.append(Problem(name, locate(text, path + _offending_key(err)),
                             f"{where}: {_short(err)}", _schema_hint(err)))
    return found


def _offending_key(err: jsonschema.ValidationError) -> list[Any]:
    """For a bad key the schema points at its mapping; point at the key itself."""
    if err.validator == "additionalProperties":
        found = re.search(r"'([^']+)'", err.message)
        return [found.group(1)] if found else []
    if "propertyNames" in err.absolute_schema_path:
        return [err.instance] if isinstance(err.instance, str) else []
    return []


def _short(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown key")
    if err.validator == "pattern" and isinstance(err.instance, str):
        return f"{err.instance!r} is not in the expected form"
    return err.message if len(err.message) < 160 else err.message[:157] + "..."


def _schema_hint(err: jsonschema.ValidationError) -> str:
    hints = {
        "additionalProperties": "remove the key or fix its spelling (see docs/content-format.md)",
        "required": "add the missing key",
        "type": "check the value's type: text needs a language code per line",
        "enum": "use one of the listed values",
        "pattern": "ids use a-z, 0-9 and _; language codes like en, ar, fr_CA",
        "maxLength": "shorten the text or split it",
        "minLength": "write the text or remove the line",
    }
    return hints.get(str(err.validator), "see docs/content-format.md")


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
              where=_text(e.get("where")), placeholder=bool(e.get("placeholder", False)))
        for e in data.get("entries", ())
    )
    return Node(
        id=data["id"], type=data["type"], title=_text(data["title"]) or {}, source=source,
        label=_text(data.get("label")), body=_body(data.get("body")),
        intro=_body(data.get("intro")), options=options, entries=entries,
        prompt=_text(data.get("prompt")), service=data.get("service"), next=data.get("next"),
        sample=bool(data.get("sample", False)), field_name=data.get("field", ""),
        input=data.get("input", "text"), max_length=int(data.get("max_length", 160)),
        action=data.get("action"), outcomes=dict(data.get("outcomes", {})),
        summary=tuple(data.get("summary", ())), skip_if=tuple(data.get("skip_if", ())),
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
        site = _load_one(SITE_FILE, files[SITE_FILE], _SITE_VALIDATOR, texts, problems)

    nodes: dict[str, Node] = {}
    broken: set[str] = set()  # ids of files that did not load: links to them say nothing new
    for name in sorted(n for n in files if n != SITE_FILE):
        if PurePosixPath(name).suffix not in (".yaml", ".yml"):
            problems.append(Problem(name, 0, "not a YAML file", "content nodes are .yaml files",
                                    WARNING))
            continue
        data = _load_one(name, files[name], _NODE_VALIDATOR, texts, problems)
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
        nodes[node_id] = _node(data, name)

    if site is not None:
        problems += [p for p in _link_problems(site, nodes, texts)
                     if not any(f"'{stem}'" in p.message for stem in broken)]
    from ussd_app.engine.checks import node_problems  # checks.py builds on this module

    problems += node_problems(nodes, texts)
    if any(p.severity == ERROR for p in problems):
        return None, problems
    tree = Tree(
        version=_version(files),
        languages=tuple(Language(lang["code"], lang["name"]) for lang in site["languages"]),
        default_language=site["default_language"], main=site["main"], help=site["help"],
        nodes=nodes, root=root, sample=bool(site.get("sample", False)),
        name=str(site.get("name", "")),
    )
    problems += _coverage_problems(tree, texts)
    return tree, problems


def _load_one(name: str, data: bytes, validator: Any, texts: dict[str, str],
              problems: list[Problem]) -> Any:
    text = decode_text(name, data, problems)
    if text is None:
        return None
    texts[name] = text
    parsed = _parse_yaml(name, text, problems)
    if parsed is None and not any(p.file == name for p in problems):
        problems.append(Problem(name, 1, "file is empty", "write the node or delete the file"))
        return None
    if parsed is None:
        return None
    found = _schema_problems(name, text, parsed, validator)
    problems += found
    return None if found else parsed


def _link_problems(site: Any, nodes: dict[str, Node], texts: dict[str, str]) -> list[Problem]:
    found: list[Problem] = []
    site_text = texts.get(SITE_FILE, "")
    codes = [lang["code"] for lang in site["languages"]]
    if len(set(codes)) != len(codes):
        found.append(Problem(SITE_FILE, locate(site_text, ["languages"]),
                             "a language is listed twice", "list each language once"))
    if site["default_language"] not in codes:
        found.append(Problem(SITE_FILE, locate(site_text, ["default_language"]),
                             f"default language '{site['default_language']}' is not in languages",
                             "add it to languages or pick one of them"))
    for key, kind in (("main", MENU), ("help", None)):
        target = nodes.get(site[key])
        if target is None:
            found.append(Problem(SITE_FILE, locate(site_text, [key]),
                                 f"{key} node '{site[key]}' does not exist",
                                 "name an existing node id"))
        elif kind and target.type != kind:
            found.append(Problem(SITE_FILE, locate(site_text, [key]),
                                 f"{key} node '{site[key]}' must be a {kind}", "name a menu"))
    picker = nodes.get("language")
    if picker is None or picker.type != LANGUAGE:
        found.append(Problem(SITE_FILE, 1, "no node 'language' of type language",
                             "add nodes/main/language.yaml: the language list callers see"))
    fields = {n.answer_field for n in nodes.values() if n.type in (ASK, CHOICE)}
    fields |= {o.keep_as for n in nodes.values() for o in n.options if o.keep_as}
    fields |= ACTION_FIELDS
    for node in nodes.values():
        found += _node_links(node, nodes, texts[node.source], fields)
    return found


# Fields the actions themselves add to the answers, for result texts and skip_if.
ACTION_FIELDS = {"reference", "status", "receipt", "reference_typed"}


def _node_links(node: Node, nodes: Mapping[str, Node], text: str,
                fields: set[str]) -> list[Problem]:
    """A node's links to other nodes, and the fields it names, all resolved."""
    found: list[Problem] = []

    def missing(path: list[Any], what: str, target: str) -> None:
        found.append(Problem(node.source, locate(text, path),
                             f"{what} links to '{target}', which does not exist",
                             "fix the id or add the node"))

    for i, option in enumerate(node.options):
        if node.type == CHOICE and not option.value:
            found.append(Problem(node.source, locate(text, ["options", i]),
                                 f"option {i + 1} of a choice has no value",
                                 "give it value: (what is kept) and label:"))
        for key in ("target", "next"):
            target = getattr(option, key)
            if target and target not in nodes:
                label = f"option {i + 1}" if key == "target" else f"option {i + 1} next"
                missing(["options", i], label, target)
        if node.type == CHOICE and not (option.next or node.next):
            found.append(Problem(node.source, locate(text, ["options", i]),
                                 f"option {i + 1} leads nowhere",
                                 "give the option next: or the node next:"))
    if node.next and node.next not in nodes:
        missing(["next"], "next", node.next)
    for outcome, target in node.outcomes.items():
        if target not in nodes:
            missing(["outcomes", outcome], f"outcome {outcome}", target)
    if node.entries_from:
        source = nodes.get(node.entries_from)
        if source is None:
            missing(["entries_from"], "entries_from", node.entries_from)
        elif source.type != CONTACTS:
            found.append(Problem(node.source, locate(text, ["entries_from"]),
                                 f"entries_from names '{node.entries_from}', which is a "
                                 f"{source.type}, not a contacts list", "name a contacts node"))
    for key in ("summary", "skip_if"):
        for i, name in enumerate(getattr(node, key)):
            if name not in fields:
                found.append(Problem(node.source, locate(text, [key, i]),
                                     f"{key} names field '{name}', which no question asks",
                                     "use the field: of a choice or ask node"))
    if node.type == CONFIRM and not node.next:
        found.append(Problem(node.source, locate(text, ["id"]),
                             "a confirm node needs next: (where to go once sent)",
                             "add next: with the node that shows the result"))
    return found


def _coverage_problems(tree: Tree, texts: dict[str, str]) -> list[Problem]:
    """Warnings: missing translations and nodes nothing links to."""
    found: list[Problem] = []
    reached = {tree.main, tree.help}
    for node in tree.nodes.values():
        reached.update(o.target or o.next or "" for o in node.options)
        reached.update(node.outcomes.values())
        reached.update(n for n in (node.next, node.entries_from) if n)
    for node in tree.nodes.values():
        text = texts[node.source]
        if node.id not in reached:
            found.append(Problem(node.source, locate(text, ["id"]),
                                 f"nothing links to '{node.id}'",
                                 "add it to a menu's options or delete it", WARNING))
        for path, value in _texts_of(node):
            missing = [c for c in tree.language_codes if c not in value]
            if missing:
                found.append(Problem(node.source, locate(text, path),
                                     f"{'.'.join(map(str, path))}: no text in "
                                     f"{', '.join(missing)}",
                                     f"callers in {', '.join(missing)} see "
                                     f"{tree.default_language} instead", WARNING))
    return found


def _texts_of(node: Node) -> Iterable[tuple[list[Any], Text]]:
    for key in ("title", "label", "body", "intro", "prompt"):
        value = getattr(node, key)
        if value:
            yield [key], value
    for i, option in enumerate(node.options):
        if option.label:
            yield ["options", i, "label"], option.label
    for i, entry in enumerate(node.entries):
        for key in ("name", "hours", "where"):
            value = getattr(entry, key)
            if value:
                yield ["entries", i, key], value
