"""Content translations as PO files: export a language for a translator, import it back.

Field staff translate with the tools translators already use (Poedit, Weblate,
a spreadsheet through po2csv) instead of editing a hundred YAML files by hand.
Each text of the tree becomes one PO entry: the context says where it lives
(``nodes/help_now/help_now.yaml:title``), the id is the source language's text,
and the other shipped languages ride along as comments so the translator sees
the Arabic or Nepali beside the English.

Import writes each translation into its file *as a line edit*: the new language
is inserted after the text's last language (or replaces its old text), so
comments, key order and indentation stay as field staff wrote them and the diff
shows only the new lines. A file is written whole or not at all, and only when
the import as a whole parses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from babel.messages.catalog import Catalog

from ussd_app.engine.yamlfile import _FastLoader


def _load(text: str) -> Any:
    """As the engine reads content: YAML 1.2 booleans, so an English "No" stays a text."""
    return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a safe loader

_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


@dataclass(frozen=True)
class Text:
    """One translatable text: its file (relative), its path inside it, its versions."""

    file: str
    path: tuple[str | int, ...]
    texts: dict[str, str]

    @property
    def context(self) -> str:
        return f"{self.file}:{'.'.join(str(p) for p in self.path)}"


def _is_texts(value: Any) -> bool:
    return (isinstance(value, dict) and bool(value)
            and all(isinstance(k, str) and _LANG.match(k) for k in value)
            and all(isinstance(v, str) for v in value.values()) and "en" in value)


Path_ = tuple[str | int, ...]


def _walk(value: Any, path: Path_) -> Iterator[tuple[Path_, dict[str, str]]]:
    if _is_texts(value):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


def content_files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*.yaml")
                  if not any(part.startswith(".") for part in p.parts))


def collect(tree: Path) -> list[Text]:
    """Every multilingual text of the tree, file by file in a stable order."""
    found: list[Text] = []
    for file in content_files(tree):
        data = _load(file.read_text(encoding="utf-8"))
        rel = file.relative_to(tree).as_posix()
        found += [Text(rel, path, dict(texts)) for path, texts in _walk(data, ())]
    return found


def export(tree: Path, lang: str, source: str = "en") -> Catalog:
    """A catalog of every text for ``lang``: filled where the tree has it, empty where not."""
    try:
        catalog = Catalog(locale=lang, project="MigrantLine content", fuzzy=False)
    except ValueError:  # a language Babel has no data for still gets its file
        catalog = Catalog(locale=None, project="MigrantLine content", fuzzy=False)
    catalog.language_team = lang
    for text in collect(tree):
        original = text.texts.get(source) or text.texts["en"]
        others = [f"{code}: {value}" for code, value in text.texts.items()
                  if code not in (source, lang)]
        catalog.add(original, text.texts.get(lang, ""), context=text.context,
                    auto_comments=[line for other in others for line in other.splitlines()])
    return catalog


@dataclass
class Imported:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    files: int = 0
    unknown: list[str] | None = None


def _scalar(key: str, text: str, indent: int) -> list[str]:
    """The YAML lines of ``key: text`` at this indent, block style for several lines."""
    pad = " " * indent
    multiline = "\n" in text.rstrip("\n") or len(text) > 100
    if multiline and not text.startswith((" ", "\n")) and not text.endswith("\n\n"):
        chomp, body = ("", text[:-1]) if text.endswith("\n") else ("-", text)
        return [f"{pad}{key}: |{chomp}"] + [f"{pad}  {line}" if line else ""
                                             for line in body.split("\n")]
    plain = f"{key}: {text}"
    try:
        if text and text.strip() == text and yaml.safe_load(plain) == {key: text} \
                and _load(plain) == {key: text}:
            return [pad + plain]
    except yaml.YAMLError:
        pass
    return [f"{pad}{key}: {json.dumps(text, ensure_ascii=False)}"]


def _end_line(node: yaml.Node) -> int:
    """The line after a value (its last line included), from the parser's marks."""
    mark = node.end_mark
    return mark.line if mark.column == 0 else mark.line + 1


def _key_lines(source: str, path: tuple[str | int, ...]) -> dict[str, tuple[int, int, int]]:
    """For the language map at ``path``: each language's (first line, end line, indent)."""
    node = yaml.compose(source)
    for step in path:
        if isinstance(node, yaml.MappingNode):
            node = next(value for key, value in node.value if key.value == step)
        elif isinstance(node, yaml.SequenceNode):
            node = node.value[int(step)]
        else:
            raise KeyError(step)
    if not isinstance(node, yaml.MappingNode):
        raise KeyError(path)
    lines = source.split("\n")
    found: dict[str, tuple[int, int, int]] = {}
    for key, value in node.value:
        start, end = key.start_mark.line, _end_line(value)
        while end > start + 1 and (not lines[end - 1].strip()
                                   or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        found[key.value] = (start, end, key.start_mark.column)
    return found


def _apply(source: str, path: tuple[str | int, ...], lang: str, text: str) -> tuple[str, str]:
    """The file with ``lang`` set at ``path``, and "added", "changed" or "unchanged"."""
    keys = _key_lines(source, path)
    lines = source.split("\n")
    if lang in keys:
        start, end, own = keys[lang]
        new = _scalar(lang, text, own)
        if lines[start:end] == new:
            return source, "unchanged"
        lines[start:end] = new
        return "\n".join(lines), "changed"
    indent = next(iter(keys.values()))[2]
    after = max(end for _, end, _ in keys.values())
    lines[after:after] = _scalar(lang, text, indent)
    return "\n".join(lines), "added"


def import_catalog(tree: Path, catalog: Catalog, lang: str, dry_run: bool = False) -> Imported:
    """Write the catalog's filled translations of ``lang`` into the tree's files."""
    if not _LANG.match(lang):
        raise ValueError(f"{lang!r} is not a language code such as km or pt-BR")
    by_file: dict[str, list[tuple[tuple[str | int, ...], str]]] = {}
    known = {text.context: text for text in collect(tree)}
    result = Imported(unknown=[])
    for message in catalog:
        if not message.id or not message.string or message.fuzzy:
            continue
        context = message.context or ""
        text = known.get(context)
        if text is None:
            assert result.unknown is not None
            result.unknown.append(context)
            continue
        value = message.string if isinstance(message.string, str) else message.string[0]
        if text.texts.get(lang) == value:
            result.unchanged += 1
            continue
        by_file.setdefault(text.file, []).append((text.path, value))
    written: dict[Path, str] = {}
    for rel, changes in by_file.items():
        file = tree / rel
        source = file.read_text(encoding="utf-8")
        before = source
        for path, value in changes:
            source, what = _apply(source, path, lang, value)
            setattr(result, what, getattr(result, what) + 1)
        if source != before:
            _verify(source, rel, changes, lang)
            written[file] = source
    if not dry_run:
        for file, source in written.items():
            temporary = file.with_suffix(file.suffix + ".tmp")
            temporary.write_text(source, encoding="utf-8")
            temporary.replace(file)
    result.files = len(written)
    return result


def _verify(source: str, rel: str, changes: list[tuple[tuple[str | int, ...], str]],
            lang: str) -> None:
    """Refuse an edit that does not read back as exactly the translations given."""
    data = _load(source)
    for path, value in changes:
        node: Any = data
        for step in path:
            node = node[step]
        if node.get(lang) != value:
            raise ValueError(f"{rel}:{'.'.join(map(str, path))}: the {lang} text did not read "
                             "back as given; nothing was written")
