"""YAML as content files are written: safe, no duplicate keys, YAML 1.2 booleans.

A clean tree is parsed once with the C YAML loader (when the wheel has it);
line numbers are looked up, by composing the file again, only for files with
a problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import yaml

from ussd_app.engine.problems import Problem

_Base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it

# Safe loader that refuses duplicate keys, which YAML would silently merge. Made by type(), not
# a class statement: its base (libyaml's loader or the pure-Python one) is only known here.
_FastLoader: type[Any] = type("_FastLoader", (_Base,), {})


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


def parse_yaml(name: str, text: str, problems: list[Problem]) -> Any:
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
