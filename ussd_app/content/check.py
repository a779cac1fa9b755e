"""The content check: one pipeline for `migrantline content check`, publishing and sync.

A tree passes when every file parses against its schema and every link
resolves (``engine.loader``), its agency registry has no error
(``agencies.check``), and every screen of every language fits every layout
the service pages it for: USSD, and the two SMS layouts (menu replies,
articles asked for by SMS), and the screens a caller sees first are sound
(``engine.screen_checks``: short versions in 3 screens, choices on one, numbers
first). What passes here is what the service loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ussd_app import settings
from ussd_app.agencies.check import check_file
from ussd_app.content.layouts import content_layouts
from ussd_app.content.registry import fit_problems
from ussd_app.engine.checks import sms_info
from ussd_app.engine.loader import ERROR, Problem, parse_tree, read_files
from ussd_app.engine.model import Tree
from ussd_app.engine.screen_checks import screen_problems
from ussd_app.engine.screens import Layout, Translate
from ussd_app.i18n import default_catalogs


@dataclass
class Checked:
    """What the check found: the tree (None when it did not load), every problem, the files."""

    tree: Tree | None
    problems: list[Problem]
    files: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        return [str(p) for p in self.problems if p.severity == ERROR]


def check_content(directory: Path, layouts: list[Layout] | list[Any], verbose: bool = False,
                  t: Translate | None = None) -> Checked:
    """Check a content tree for these layouts; ``verbose`` adds each article's SMS size.

    ``t`` translates the interface strings screens are paged with (default: the
    catalogs in ``translations/``, as the service uses).
    """
    files = read_files(directory)
    tree, problems = parse_tree(files, root=str(directory))
    problems += check_file(directory)  # content/agencies.csv, when there is one
    if tree is not None:
        translate = t or default_catalogs().gettext
        problems += fit_problems(tree, layouts, translate)
        problems += screen_problems(tree, layouts, translate, {
            name: data.decode("utf-8", "replace") for name, data in files.items()}, verbose)
        if verbose:
            problems += sms_info(tree, {name: data.decode("utf-8", "replace")
                                        for name, data in files.items()})
    return Checked(tree, problems, files)


def check_tree(directory: Path, config: settings.Config) -> tuple[Tree | None, list[str]]:
    """The tree if it passes the check for the configured layouts, and every error."""
    checked = check_content(directory, content_layouts(config))
    errors = checked.errors
    return (checked.tree if not errors else None), errors
