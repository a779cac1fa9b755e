"""The translatable texts of a node, each with its path in the node's YAML file.

One walk for the loader (a warning per missing translation) and the content
checks (coverage per language), so both count the same texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ussd_app.engine.model import Node, Text


def texts_of(node: Node) -> Iterable[tuple[list[Any], Text]]:
    for key in ("title", "label", "body", "short", "intro", "prompt"):
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
