"""References between content files: links, fields, the site's menus, coverage.

Run on the parsed nodes once every file has loaded: a link to a file that
did not load says nothing new, so the loader leaves those out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ussd_app.engine.files import SITE_FILE
from ussd_app.engine.model import ASK, CHOICE, CONFIRM, CONTACTS, LANGUAGE, MENU, Node, Tree
from ussd_app.engine.problems import WARNING, Problem
from ussd_app.engine.texts import texts_of
from ussd_app.engine.yamlfile import locate


def link_problems(site: Any, nodes: dict[str, Node], texts: dict[str, str]) -> list[Problem]:
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
    for key in ("summary", "skip_if", "prefer_from"):
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


def coverage_problems(tree: Tree, texts: dict[str, str]) -> list[Problem]:
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
        for path, value in texts_of(node):
            missing = [c for c in tree.language_codes if c not in value]
            if missing:
                found.append(Problem(node.source, locate(text, path),
                                     f"{'.'.join(map(str, path))}: no text in "
                                     f"{', '.join(missing)}",
                                     f"callers in {', '.join(missing)} see "
                                     f"{tree.default_language} instead", WARNING))
    return found
