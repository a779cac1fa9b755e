"""Which key means what on a node's screens, so that no key ever means two things.

The view numbers a node's options with ``action_keys``; the machine reads a
key the same way; ``key_problems`` (run by ``migrantline content check``)
refuses a node on whose screens one key would mean two things, e.g. the first
agency of a result list and the first action ("1 Report it").
"""

from __future__ import annotations

from collections.abc import Mapping

from ussd_app.engine.model import (
    ARTICLE,
    ASK,
    CHOICE,
    CONFIRM,
    CONTACTS,
    LANGUAGE,
    MENU,
    RESULT,
    Node,
)
from ussd_app.engine.problems import ERROR, Problem
from ussd_app.engine.state import ACTION_KEY_FROM, MAX_ITEMS

# Keys every screen may take: back, main menu, next page, help.
NAV_KEYS = {"0": "back", "00": "main menu", "98": "more", "99": "help"}


def action_keys(node: Node) -> list[str]:
    """The keys of a node's options: from ACTION_KEY_FROM on a service's results, where
    1..MAX_ITEMS open the items listed; else from 1."""
    first = ACTION_KEY_FROM if node.type == ASK and node.service else 1
    return [str(first + i) for i in range(len(node.options))]


def screen_keys(node: Node, languages: int = 0) -> list[tuple[str, str]]:
    """(key, what it does) for every key a node's screens take."""
    keys = list(NAV_KEYS.items())
    if node.type == LANGUAGE:
        keys += [(str(i + 1), f"language {i + 1}") for i in range(languages)]
    if node.type == ASK and node.service:
        keys += [(str(i + 1), f"open item {i + 1} of the results") for i in range(MAX_ITEMS)]
    if node.type in (MENU, CHOICE, RESULT, ASK):
        keys += [(k, f"option {o.target or o.value or o.next}")
                 for k, o in zip(action_keys(node), node.options, strict=True)]
    if node.type == CONFIRM:
        keys += [("1", "send"), ("2", "cancel")]
    if node.type == CONTACTS:
        keys += [("1", "send this list by SMS")]
    if node.type == ARTICLE and node.short:
        keys += [("1", "send the full text by SMS"), ("2", "read the full text")]
    return keys


def key_problems(nodes: Mapping[str, Node]) -> list[Problem]:
    """An error per node on whose screens one key would mean two things."""
    found: list[Problem] = []
    for node in nodes.values():
        meanings: dict[str, list[str]] = {}
        for key, meaning in screen_keys(node):
            meanings.setdefault(key, []).append(meaning)
        for key, what in meanings.items():
            if len(what) > 1:
                found.append(Problem(node.source, 1, f"{node.id}: key {key} means both "
                                     + " and ".join(what),
                                     "use fewer options, so that every key means one thing",
                                     ERROR))
    return found
