"""The architecture, checked on the source: the import graph and the size of things.

The app is three packages (``ussd_app``, ``sms_flows``, ``voice_prompts``). Their
modules are parsed with ``ast`` (nothing is imported) and their imports resolved
to modules: relative imports against the importing module's package;
``from pkg import name`` is an import of ``pkg.name`` when that is a module, else
of ``pkg``; importing ``a.b.c`` also imports the packages ``a`` and ``a.b`` (their
``__init__`` runs). Every import statement counts, wherever it stands: one inside
a function or under ``if TYPE_CHECKING:`` is still a dependency, and a cycle
hidden that way is still a cycle (the messages mark such edges).

The rules (issue 13): no import cycle among app modules; the engine
(``ussd_app.engine``) imports neither Flask nor SQL nor a provider SDK, directly
or through the app modules it imports; no module over 400 lines; no function
over 60; an import inside a function only with ``# lazy: <reason>`` on its line
(they are there to keep the command line's start-up fast).

Each rule is one test over the real tree that lists every offender, and one or
more over a small synthetic tree that shows the rule can fail.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGES = ("ussd_app", "sms_flows", "voice_prompts")
ENGINE = "ussd_app.engine"
NOT_IN_ENGINE = frozenset({"flask", "werkzeug", "sqlite3", "sqlite_utils", "psycopg", "psycopg2",
                           "sqlalchemy", "twilio", "africastalking", "requests"})
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
LAZY_REASON = re.compile(r"#\s*lazy:\s*\S")


# ------------------------------------------------------------------ reading the tree


@dataclass(frozen=True)
class Import:
    """One module named by one import statement."""

    source: str  # the importing module
    target: str  # the imported module, absolute (an app module or not)
    line: int
    in_function: str  # the enclosing function's qualified name, "" at module level
    type_only: bool  # under ``if TYPE_CHECKING:``

    def where(self, modules: dict[str, Module]) -> str:
        how = (f" (in {self.in_function}())" if self.in_function else "") + \
            (" (type-only)" if self.type_only else "")
        return f"{modules[self.source].relpath}:{self.line} imports {self.target}{how}"


@dataclass
class Module:
    name: str
    relpath: str
    is_package: bool
    text: str
    tree: ast.Module

    @property
    def lines(self) -> int:
        return len(self.text.splitlines())


def read_modules(root: Path, packages: Iterable[str] = APP_PACKAGES) -> dict[str, Module]:
    """Every ``.py`` file under the packages, by dotted module name."""
    modules: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            text = path.read_text(encoding="utf-8")
            modules[name] = Module(name, path.relative_to(root).as_posix(), is_package, text,
                                   ast.parse(text, filename=str(path)))
    return modules


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs its packages."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    parts = package.split(".")
    base = ".".join(parts[:len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def _implied(module: Module, name: str) -> list[str]:
    """``name`` and the packages importing it runs, but for the importer's own packages.

    Python runs a module's own packages' ``__init__`` before the module itself, so
    ``app.store.queue`` importing its sibling ``app.store.base`` adds nothing: a
    package whose ``__init__`` re-exports its parts is no cycle. Importing a name
    *from* the package (``from app.store import Store`` inside ``app.store``)
    still counts: that one needs the ``__init__`` to have run to its end.
    """
    own = set(_with_parents(module.name if module.is_package
                            else module.name.rpartition(".")[0]))
    *parents, last = _with_parents(name)
    return [p for p in parents if p not in own] + [last]


def _targets(module: Module, node: ast.Import | ast.ImportFrom,
             known: dict[str, Module]) -> list[str]:
    if isinstance(node, ast.Import):
        return [t for alias in node.names for t in _implied(module, alias.name)]
    base = _absolute(module, node)
    names = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
    return [*_implied(module, base), *names]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _ImportFinder(ast.NodeVisitor):
    """Import statements with where they stand: which function, under TYPE_CHECKING?"""

    def __init__(self) -> None:
        self.found: list[tuple[ast.Import | ast.ImportFrom, str, bool]] = []
        self.scope: list[str] = []
        self.functions: list[str] = []
        self.type_only = False

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append((node, self.functions[-1] if self.functions else "", self.type_only))

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.functions.append(".".join(self.scope))
        self.generic_visit(node)
        self.functions.pop()
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        outer, self.type_only = self.type_only, True
        for child in node.body:
            self.visit(child)
        self.type_only = outer
        for child in node.orelse:
            self.visit(child)


def import_statements(module: Module) -> list[tuple[ast.Import | ast.ImportFrom, str, bool]]:
    finder = _ImportFinder()
    finder.visit(module.tree)
    return finder.found


def imports_of(module: Module, known: dict[str, Module]) -> list[Import]:
    """Every module ``module`` imports (app modules and others), once per statement."""
    found = []
    for node, function, type_only in import_statements(module):
        for target in dict.fromkeys(_targets(module, node, known)):
            if target and target != module.name:
                found.append(Import(module.name, target, node.lineno, function, type_only))
    return found


def import_graph(modules: dict[str, Module]) -> dict[str, list[Import]]:
    """App module -> its imports of app modules."""
    return {name: [i for i in imports_of(module, modules) if i.target in modules]
            for name, module in modules.items()}


# ------------------------------------------------------------------ the checks


def strongly_connected(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for edge in graph.get(name, []):
            if edge.target not in index:
                visit(edge.target)
                low[name] = min(low[name], low[edge.target])
            elif edge.target in on_stack:
                low[name] = min(low[name], index[edge.target])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def _where_all(imports: list[Import], modules: dict[str, Module]) -> str:
    """One statement's imports on one line: ``a.py:3 imports pkg, pkg.mod``."""
    where = imports[0].where(modules)
    return where.replace(imports[0].target, ", ".join(i.target for i in imports), 1)


def import_cycles(modules: dict[str, Module]) -> list[str]:
    """One paragraph per cycle: its modules, then every import that closes it."""
    graph = import_graph(modules)
    paragraphs = []
    for component in strongly_connected(graph):
        members = set(component)
        statements: dict[tuple[str, int], list[Import]] = {}
        for name in component:
            for edge in graph[name]:
                if edge.target in members:
                    statements.setdefault((name, edge.line), []).append(edge)
        edges = [_where_all(found, modules) for found in statements.values()]
        paragraphs.append(f"{len(component)} modules: {', '.join(component)}\n    "
                          + "\n    ".join(edges))
    return paragraphs


def engine_reaches(modules: dict[str, Module], engine: str = ENGINE,
                   banned: frozenset[str] = NOT_IN_ENGINE) -> list[str]:
    """Each import of a banned package by the engine or an app module it imports, with how
    the engine gets there (shortest chain of imports)."""
    graph = import_graph(modules)
    offenders = []
    for start in sorted(n for n in modules if n == engine or n.startswith(engine + ".")):
        came_from: dict[str, str] = {start: ""}
        queue = [start]
        for name in queue:  # breadth first: the shortest chain to each module
            for edge in graph[name]:
                if edge.target not in came_from:
                    came_from[edge.target] = name
                    queue.append(edge.target)
        for name in queue:
            chain = [name]
            while came_from[chain[0]]:
                chain.insert(0, came_from[chain[0]])
            via = "" if name == start else f" through {' -> '.join(chain)}"
            for bad in _banned_imports(modules[name], modules, banned):
                offenders.append(f"{start}{via}: {bad.where(modules)}")
    return offenders


def _banned_imports(module: Module, modules: dict[str, Module],
                    banned: frozenset[str]) -> list[Import]:
    """The banned imports of one module, each statement once by its fullest name."""
    fullest: dict[tuple[int, str], Import] = {}
    for found in imports_of(module, modules):
        top = found.target.split(".")[0]
        if top in banned:
            fullest[found.line, top] = found  # parents come first: the last is the fullest
    return list(fullest.values())


def long_modules(modules: dict[str, Module], limit: int = MAX_MODULE_LINES) -> list[str]:
    found = sorted(((m.lines, m.relpath) for m in modules.values() if m.lines > limit),
                   reverse=True)
    return [f"{path}: {lines} lines" for lines, path in found]


def _functions(node: ast.AST, prefix: str = "") -> Iterator[
        tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = prefix + child.name
            if not isinstance(child, ast.ClassDef):
                yield name, child
            yield from _functions(child, name + ".")
        else:
            yield from _functions(child, prefix)


def long_functions(modules: dict[str, Module], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """Functions longer than ``limit`` lines, from ``def`` to their last line."""
    found = []
    for module in modules.values():
        for name, node in _functions(module.tree):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                found.append((length, f"{module.relpath}:{node.lineno} {name}()"))
    return [f"{where}: {length} lines" for length, where in sorted(found, reverse=True)]


def _comments(text: str) -> dict[int, str]:
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return {t.start[0]: t.string for t in tokens if t.type == tokenize.COMMENT}


def unexplained_lazy_imports(modules: dict[str, Module]) -> list[str]:
    """Imports inside functions without ``# lazy: <reason>`` on one of their lines."""
    found = []
    for module in modules.values():
        comments: dict[int, str] | None = None
        for node, function, _ in import_statements(module):
            if not function:
                continue
            comments = _comments(module.text) if comments is None else comments
            lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            if not any(LAZY_REASON.search(comments.get(line, "")) for line in lines):
                found.append(f"{module.relpath}:{node.lineno} in {function}(): "
                             f"{ast.unparse(node)}")
    return found


# ------------------------------------------------------------------ the real tree


@pytest.fixture(scope="module")
def app_modules() -> dict[str, Module]:
    modules = read_modules(ROOT)
    assert {"ussd_app.engine.machine", "sms_flows", "voice_prompts"} <= set(modules)
    return modules


def fail_listing(offenders: list[str], what: str, fix: str) -> None:
    if offenders:
        pytest.fail(f"{len(offenders)} {what} ({fix}):\n  " + "\n  ".join(offenders),
                    pytrace=False)


def test_no_import_cycle_among_app_modules(app_modules: dict[str, Module]) -> None:
    fail_listing(import_cycles(app_modules), "import cycles among app modules",
                 "move what both sides need into a third module; a function-level or "
                 "TYPE_CHECKING import still counts")


def test_the_engine_imports_no_flask_sql_or_provider_sdk(app_modules: dict[str, Module]) -> None:
    fail_listing(engine_reaches(app_modules), f"imports of {', '.join(sorted(NOT_IN_ENGINE))} "
                 "reached from ussd_app.engine", "the engine is pure: no web, SQL or provider "
                 "code, itself or through what it imports")


def test_no_module_over_400_lines(app_modules: dict[str, Module]) -> None:
    fail_listing(long_modules(app_modules), f"modules over {MAX_MODULE_LINES} lines",
                 "split by job")


def test_no_function_over_60_lines(app_modules: dict[str, Module]) -> None:
    fail_listing(long_functions(app_modules), f"functions over {MAX_FUNCTION_LINES} lines",
                 "split into named steps")


def test_every_function_level_import_says_why(app_modules: dict[str, Module]) -> None:
    fail_listing(unexplained_lazy_imports(app_modules), "imports inside functions without "
                 "a reason", "import at the top, or, only to keep the command line's start-up "
                 "fast, say so with '# lazy: <reason>' on the import line")


# ------------------------------------------------------------------ the checks can fail


def write_tree(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return read_modules(root, sorted({name.split("/")[0] for name in files}))


def test_a_cycle_through_relative_and_function_level_imports_is_found(tmp_path: Path) -> None:
    modules = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/a.py": "from .b import thing\n",
        "app/b.py": "def thing():\n    from app import c  # lazy: start-up\n",
        "app/c.py": "from . import a\n",
        "app/d.py": "import app.a\n",  # imports into the cycle: not part of it
    })
    [cycle] = import_cycles(modules)
    assert cycle.startswith("3 modules: app.a, app.b, app.c\n")
    assert "app/b.py:2 imports app.c (in thing())" in cycle
    assert "app.d" not in cycle


def test_a_cycle_through_a_package_init_is_found(tmp_path: Path) -> None:
    modules = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/store/__init__.py": "from app.store.queue import push\nRow = 1\n",
        "app/store/queue.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from app.store import Row\n",
        "app/web.py": "from app.store.queue import push\n",
    })
    [cycle] = import_cycles(modules)  # the part needs the facade that imports the part
    assert cycle == ("2 modules: app.store, app.store.queue\n"
                     "    app/store/__init__.py:1 imports app.store.queue\n"
                     "    app/store/queue.py:3 imports app.store (type-only)")
    # From outside, importing a part runs its package's __init__ first (``app``, web's
    # own package, has run already).
    assert [i.target for i in import_graph(modules)["app.web"]] == [
        "app.store", "app.store.queue"]


def test_a_package_that_re_exports_its_parts_is_no_cycle(tmp_path: Path) -> None:
    modules = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/store/__init__.py": "from app.store.queue import push\n",
        "app/store/queue.py": "from app.store.base import conn\n",
        "app/store/base.py": "conn = 1\n",
    })
    assert import_cycles(modules) == []


def test_no_cycle_no_report(tmp_path: Path) -> None:
    modules = write_tree(tmp_path, {"app/__init__.py": "", "app/a.py": "from app import b\n",
                                    "app/b.py": "import json\n"})
    assert import_cycles(modules) == []
    assert [i.target for i in import_graph(modules)["app.a"]] == ["app", "app.b"]


def test_the_engine_reaching_flask_directly_or_through_a_helper_is_found(
        tmp_path: Path) -> None:
    modules = write_tree(tmp_path, {
        "app/__init__.py": "", "app/engine/__init__.py": "",
        "app/engine/pure.py": "import json\nfrom app.engine import run\n",
        "app/engine/run.py": "from app.helpers import parse\n",
        "app/engine/web.py": "def f():\n    from flask import request  # lazy: no\n",
        "app/helpers.py": "import sqlite3\nfrom werkzeug.routing import BaseConverter\n",
        "app/outside.py": "import requests\n",  # not reached by the engine
    })
    found = engine_reaches(modules, engine="app.engine")
    assert found == [
        "app.engine.pure through app.engine.pure -> app.engine.run -> app.helpers: "
        "app/helpers.py:1 imports sqlite3",
        "app.engine.pure through app.engine.pure -> app.engine.run -> app.helpers: "
        "app/helpers.py:2 imports werkzeug.routing",
        "app.engine.run through app.engine.run -> app.helpers: app/helpers.py:1 imports sqlite3",
        "app.engine.run through app.engine.run -> app.helpers: "
        "app/helpers.py:2 imports werkzeug.routing",
        "app.engine.web: app/engine/web.py:2 imports flask (in f())",
    ]


def function(name: str, lines: int, indent: str = "") -> str:
    """A function ``lines`` long, ``def`` line included."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 1))
    return f"{indent}def {name}():\n{body}"


def test_an_oversize_module_and_function_are_found(tmp_path: Path) -> None:
    fits = function("fits", 60)
    modules = write_tree(tmp_path, {
        "app/__init__.py": "",
        "app/ok.py": fits + "\n" * (400 - 60),
        "app/big.py": "class Big:\n" + function("grows", 61, "    ") + "\n" * (400 - 61),
    })
    assert (modules["app.ok"].lines, modules["app.big"].lines) == (400, 401)
    assert long_modules(modules) == ["app/big.py: 401 lines"]
    assert long_functions(modules) == ["app/big.py:2 Big.grows(): 61 lines"]


def test_a_lazy_import_needs_its_reason_on_its_line(tmp_path: Path) -> None:
    modules = write_tree(tmp_path, {
        "app/__init__.py": "import json\n",
        "app/cli.py": (
            "import os\n"
            "def run():\n"
            "    import click  # lazy: the CLI starts without it\n"
            "    from app import (  # lazy: heavy\n        json,\n    )\n"
            "    if True:\n        import csv\n"
            "    import re  # lazy:\n"
            "    def inner():\n        from app import cli\n"
            "    return '# lazy: not a comment'; import glob\n"
        ),
    })
    assert unexplained_lazy_imports(modules) == [
        "app/cli.py:8 in run(): import csv",
        "app/cli.py:9 in run(): import re",
        "app/cli.py:11 in run.inner(): from app import cli",
        "app/cli.py:12 in run(): import glob",
    ]
