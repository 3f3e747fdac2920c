"""The dependency rule (docs/design/architecture.md), enforced by walking every import with `ast`.

- only modules under bot/matrix/ import nio;
- only storage/ imports sqlite3 and asyncpg (aiosqlite only in the benchmark baseline);
- only bot/services/ imports apscheduler;
- bot/domain/ imports only the standard library and bot.domain;
- nothing outside bot/devtools/ imports bot.devtools, except bot/cli.py, and that only inside a
  function (the `demo` subcommand), so the product never loads the dev tooling;
- no import cycle among the modules of bot/, commands/ and storage/, counting every import
  (inside functions and under `if TYPE_CHECKING:` too).
"""

from __future__ import annotations

import ast
import itertools
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "commands", "storage")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    files = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
    assert files, "no source files found"
    return files


@dataclass(frozen=True)
class Import:
    """One import: `module` is absolute (relative imports resolved); `names` are what a
    `from module import …` takes (empty for `import module` and `__import__`)."""

    module: str
    names: tuple[str, ...]
    line: int
    in_function: bool  # runs when a function is called, not when the module is imported

    def targets(self) -> set[str]:
        """The module and every `module.name` it may denote (a name may be a submodule)."""
        return {self.module} | {f"{self.module}.{name}" for name in self.names}


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _nodes(node: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below `node`, and whether it sits in a function body (decorators and
    default values of a `def` run at definition time, so they do not count)."""
    for field, value in ast.iter_fields(node):
        inner = in_function or (isinstance(node, _FUNCTIONS) and field == "body")
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                yield child, inner
                yield from _nodes(child, inner)


def _dynamic_import(node: ast.Call) -> str | None:
    """The module of `__import__("m")`, `importlib.import_module("m")` or
    `import_module("m")` with a literal name."""
    func = node.func
    name = func.id if isinstance(func, ast.Name) else None
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        name = f"{func.value.id}.{func.attr}"
    if name not in ("__import__", "import_module", "importlib.import_module"):
        return None
    if node.args and isinstance(node.args[0], ast.Constant):
        return str(node.args[0].value)
    return None


def _from_module(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of `from … import`; `package` is where relative imports start."""
    if not node.level:
        assert node.module is not None
        return node.module
    base = package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    prefix = ".".join(base)
    return f"{prefix}.{node.module}" if node.module else prefix


def import_statements(source: str, package: str) -> list[Import]:
    """Every import in some source, at any depth (inside functions, under TYPE_CHECKING),
    with its line and whether it runs inside a function."""
    found: list[Import] = []
    for node, in_function in _nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(Import(a.name, (), node.lineno, in_function) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            found.append(Import(_from_module(node, package), names, node.lineno, in_function))
        elif isinstance(node, ast.Call) and (module := _dynamic_import(node)) is not None:
            found.append(Import(module, (), node.lineno, in_function))
    return found


def imports_in(source: str, package: str) -> frozenset[str]:
    """Absolute names of every module some source imports, at any depth (inside functions,
    under TYPE_CHECKING); `package` is the package relative imports start from."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _from_module(node, package)
            found.add(module)
            if node.level and not node.module:  # `from . import x`: x is a module of the package
                found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and (module := _dynamic_import(node)) is not None:
            found.add(module)
    return frozenset(found)


def package_of(path: Path) -> str:
    """The package relative imports in a source file start from."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    return package


@cache
def statements_of(path: Path) -> tuple[Import, ...]:
    """Every import statement of a source file."""
    return tuple(import_statements(path.read_text(encoding="utf-8"), package_of(path)))


@cache
def imports_of(path: Path) -> frozenset[str]:
    """Every module a source file imports."""
    return imports_in(path.read_text(encoding="utf-8"), package_of(path))


def top(name: str) -> str:
    return name.split(".")[0]


def importers_of(library: str) -> set[str]:
    return {
        str(p.relative_to(ROOT))
        for p in source_files()
        if any(top(name) == library for name in imports_of(p))
    }


def under(rel: str, folder: str) -> bool:
    return rel.startswith(folder.rstrip("/") + "/")


@pytest.mark.parametrize(
    ("library", "allowed", "expected_somewhere"),
    [
        ("nio", "bot/matrix", "bot/matrix/gateway.py"),
        ("sqlite3", "storage", "storage/database.py"),
        ("asyncpg", "storage", "storage/postgres.py"),
        ("apscheduler", "bot/services", "bot/services/deadlines.py"),
    ],
)
def test_third_party_libraries_stay_in_their_layer(
    library: str, allowed: str, expected_somewhere: str
) -> None:
    users = importers_of(library)
    # The walker must see the import where we know it is, or the rule is vacuous.
    assert expected_somewhere in users
    outside = sorted(u for u in users if not under(u, allowed))
    assert outside == [], f"{library} imported outside {allowed}/: {outside}"


def test_the_domain_is_pure() -> None:
    stdlib = set(sys.stdlib_module_names)
    domain_files = [p for p in source_files() if under(str(p.relative_to(ROOT)), "bot/domain")]
    assert len(domain_files) >= 5
    offenders = []
    for path in domain_files:
        for name in sorted(imports_of(path)):
            if top(name) in stdlib:
                continue
            if name == "bot.domain" or name.startswith("bot.domain."):
                continue
            offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


# The services are split by job (issue 22): each module depends on what it uses, and only the
# composition root, bot/app.py, knows them all. Each entry: a service module, and the other
# service modules it must not import (it takes what it needs from them by protocol, or not
# at all).
SERVICE_BOUNDS = {
    # The outbox is a queue and its sender knows the services only as `OutboxHooks`.
    "bot.services.outbox": {"*"},
    # The room-opening sequence: the ballots call its first step, so it sees them (and the
    # calendar and the reconciliation) only through its protocols.
    "bot.services.opening": {
        "bot.services.ballots",
        "bot.services.calendar",
        "bot.services.batches",
        "bot.services.reconcile",
        "bot.services.handlers",
        "bot.services.hooks",
    },
    # The sync loop hands batches on: it never reaches into the use cases behind them.
    "bot.services.syncer": {
        "bot.services.ballots",
        "bot.services.handlers",
        "bot.services.calendar",
        "bot.services.opening",
        "bot.services.hooks",
    },
    "bot.services.invites": {"*"},
    # A job's plan knows the calendar, the site and the doorbell only by protocol.
    "bot.services.plans": {"*"},
}
SERVICE_ALLOWED_ANYWHERE = {
    "bot.services.clock",
    "bot.services.settings",
    "bot.services.outbox",
    "bot.services.plans",
}


def test_services_depend_only_on_what_they_use() -> None:
    by_name = {module_name(p): p for p in source_files()}
    offenders = []
    for module, banned in SERVICE_BOUNDS.items():
        for name in sorted(imports_of(by_name[module])):
            if not name.startswith("bot.services.") or name == module:
                continue
            if ("*" in banned and name not in SERVICE_ALLOWED_ANYWHERE) or name in banned:
                offenders.append(f"{module} imports {name}")
    assert offenders == []


def test_only_the_composition_root_wires_the_services() -> None:
    """No service, and no storage or command module, imports bot.app (the CLI and the demo
    start it)."""
    importers = sorted(
        str(p.relative_to(ROOT))
        for p in source_files()
        if any(name == "bot.app" or name.startswith("bot.app.") for name in imports_of(p))
    )
    assert importers == ["bot/cli.py", "bot/devtools/demo.py"]


def test_the_walker_sees_nested_and_relative_imports() -> None:
    assert module_name(ROOT / "bot" / "domain" / "__init__.py") == "bot.domain"
    assert module_name(ROOT / "bot" / "domain" / "ledger.py") == "bot.domain.ledger"
    code = (
        "import os.path\n"
        "from . import ledger\n"
        "from .positions import Position\n"
        "from ..matrix import render\n"
        "def f():\n"
        "    import nio\n"
        "    return __import__('aiosqlite')\n"
        "if False:\n"
        "    from apscheduler.schedulers import asyncio\n"
        "repo = importlib.import_module('storage.repo')\n"
    )
    assert imports_in(code, "bot.domain") == {
        "os.path",
        "bot.domain",
        "bot.domain.ledger",
        "bot.domain.positions",
        "bot.matrix",
        "nio",
        "aiosqlite",
        "apscheduler.schedulers",
        "storage.repo",
    }


def test_the_walker_knows_what_runs_inside_a_function() -> None:
    code = (
        "import a\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import b\n"
        "@__import__('c').deco\n"
        "def f(x=__import__('d')):\n"
        "    import e\n"
        "    g = lambda: __import__('g')\n"
        "    def inner():\n"
        "        from h import i\n"
        "class K:\n"
        "    import k\n"
        "    async def m(self):\n"
        "        importlib.import_module('m')\n"
    )
    seen = {imp.module: imp.in_function for imp in import_statements(code, "pkg")}
    assert seen == {
        "a": False,
        "typing": False,
        "b": False,
        "c": False,
        "d": False,
        "e": True,
        "g": True,
        "h": True,
        "k": False,
        "m": True,
    }


# ---------------------------------------------------------------------------------------------
# bot.devtools: dev tooling the product never loads


DEVTOOLS = "bot.devtools"


def devtools_imports(path: Path) -> list[Import]:
    """The imports of a source file that reach into bot.devtools."""
    return [
        imp
        for imp in statements_of(path)
        if any(t == DEVTOOLS or t.startswith(DEVTOOLS + ".") for t in imp.targets())
    ]


def test_production_code_never_imports_devtools() -> None:
    offenders = [
        f"{rel}:{imp.line}: {imp.module} {list(imp.names)}"
        for path in source_files()
        if not under(rel := str(path.relative_to(ROOT)), "bot/devtools") and rel != "bot/cli.py"
        for imp in devtools_imports(path)
    ]
    assert offenders == [], f"only bot/cli.py may import {DEVTOOLS}: {offenders}"


def test_the_cli_imports_devtools_only_inside_a_function() -> None:
    found = devtools_imports(ROOT / "bot" / "cli.py")
    # The walker must see the `demo` subcommand's import, or the rule is vacuous.
    assert any(imp.in_function for imp in found)
    at_module_level = [f"bot/cli.py:{imp.line}" for imp in found if not imp.in_function]
    assert at_module_level == [], (
        f"bot/cli.py imports {DEVTOOLS} at module level, so every command would load it: "
        f"{at_module_level}"
    )


def test_devtools_imports_are_seen_in_every_spelling() -> None:
    code = (
        "from bot.devtools.demo import run_demo\n"
        "from bot import devtools\n"
        "from .devtools import synapse\n"
        "from . import devtools\n"
        "import bot.devtools.sim_member\n"
        "__import__('bot.devtools')\n"
        "from bot import devtoolsish, cli\n"
        "from bot.matrix import gateway\n"
    )
    imports = import_statements(code, "bot")
    hits = [
        imp
        for imp in imports
        if any(t == DEVTOOLS or t.startswith(DEVTOOLS + ".") for t in imp.targets())
    ]
    assert [imp.line for imp in hits] == [1, 2, 3, 4, 5, 6]


# ---------------------------------------------------------------------------------------------
# Import cycles


Graph = dict[str, dict[str, int]]  # module -> {module it imports: first line of that import}


def import_graph(sources: Mapping[str, tuple[str, str]]) -> Graph:
    """Which module imports which, among `sources` (module name -> (source, package relative
    imports start from)), counting every import: inside functions and under TYPE_CHECKING too.

    An import points at the most specific module it names: `from bot.services import engine`
    at bot.services.engine, `from bot.services.engine import Engine` at bot.services.engine,
    `from bot.services import Engine` at bot.services. The parent packages Python initialises
    on the way are not counted: they are not a dependency the importing module chose.
    """

    def resolve(name: str) -> str | None:
        while name and name not in sources:
            name = name.rpartition(".")[0]
        return name or None

    graph: Graph = {}
    for module, (source, package) in sources.items():
        edges = graph.setdefault(module, {})
        for imp in import_statements(source, package):
            for name in [f"{imp.module}.{n}" for n in imp.names] or [imp.module]:
                target = resolve(name)
                if target is not None and target != module:
                    edges.setdefault(target, imp.line)
    return graph


def knots(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """The strongly connected components that contain a cycle, each sorted, in name order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, {})):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, {}):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def shortest_cycle(graph: Mapping[str, Mapping[str, int]], knot: list[str]) -> list[str]:
    """A shortest cycle through the first module of a knot, as a path that ends where it
    starts: [a, b, c, a]."""
    members = set(knot)
    start = knot[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while start not in parent:  # breadth first, inside the knot, back to `start`
        following = []
        for node in frontier:
            for succ in sorted(graph.get(node, {})):
                if succ in members and succ not in parent:
                    parent[succ] = node
                    following.append(succ)
        frontier = following
    path = [start]
    node = parent[start]
    while node != start:
        path.append(node)
        node = parent[node]
    path.append(start)
    return path[::-1]


def find_cycles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """One shortest cycle for every knot of the graph (see `knots`, `shortest_cycle`)."""
    return [shortest_cycle(graph, knot) for knot in knots(graph)]


def describe(cycle: list[str], graph: Mapping[str, Mapping[str, int]]) -> str:
    """`a -> b (a:12) -> a (b:3)`: each step with the line of the import that makes it."""
    steps = [cycle[0]]
    for here, there in itertools.pairwise(cycle):
        steps.append(f"{there} ({here}:{graph[here][there]})")
    return " -> ".join(steps)


def report(graph: Mapping[str, Mapping[str, int]]) -> str:
    """Every knot: one cycle through it, then every import that ties its modules together."""
    lines = []
    for knot in knots(graph):
        lines.append(describe(shortest_cycle(graph, knot), graph))
        lines.extend(
            f"    {here}:{graph[here][there]} imports {there}"
            for here in knot
            for there in sorted(graph[here])
            if there in knot
        )
    return "\n".join(lines)


def package_graph() -> Graph:
    return import_graph(
        {module_name(p): (p.read_text(encoding="utf-8"), package_of(p)) for p in source_files()}
    )


def test_the_cycle_finder_reports_each_cycle_as_a_path() -> None:
    graph = {
        "a": {"b": 1},
        "b": {"c": 2, "d": 3},
        "c": {"a": 4},
        "d": {"b": 5},
        "e": {"e": 6},
        "f": {"a": 7},
    }
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert knots(graph) == [["a", "b", "c", "d"], ["e"]]
    assert describe(["a", "b", "c", "a"], graph) == "a -> b (a:1) -> c (b:2) -> a (c:4)"
    assert report(graph).splitlines() == [
        "a -> b (a:1) -> c (b:2) -> a (c:4)",
        "    a:1 imports b",
        "    b:2 imports c",
        "    b:3 imports d",
        "    c:4 imports a",
        "    d:5 imports b",
        "e -> e (e:6)",
        "    e:6 imports e",
    ]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []


def test_the_import_graph_counts_local_and_type_checking_imports() -> None:
    sources = {
        "pkg": ("", "pkg"),
        "pkg.engine": (
            "from pkg.clock import Clock\ndef handlers():\n    from pkg.handlers import Handlers\n",
            "pkg",
        ),
        "pkg.handlers": (
            "from typing import TYPE_CHECKING\n"
            "from . import clock\n"
            "if TYPE_CHECKING:\n"
            "    from .engine import Engine\n",
            "pkg",
        ),
        "pkg.clock": ("import pkg\nfrom pkg import Thing\n", "pkg"),
    }
    graph = import_graph(sources)
    assert graph == {
        "pkg": {},
        "pkg.engine": {"pkg.clock": 1, "pkg.handlers": 3},
        "pkg.handlers": {"pkg.clock": 2, "pkg.engine": 4},
        "pkg.clock": {"pkg": 1},
    }
    assert find_cycles(graph) == [["pkg.engine", "pkg.handlers", "pkg.engine"]]


def test_the_import_graph_sees_the_real_imports() -> None:
    graph = package_graph()
    # The walker must see a module-level and a function-level import where we know they are.
    assert "storage.database" in graph["bot.cli"]
    assert "bot.devtools.demo" in graph["bot.cli"]


def test_no_import_cycles() -> None:
    graph = package_graph()
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles (module (importer:line) -> …):\n" + report(graph)


def test_executors_are_handed_a_narrow_context() -> None:
    """An executor sees `CommandStore` and `Replies`, not the repository and the outbox:
    what it reads and writes itself is a small part of the repository, and the use cases it
    runs get the whole unit of work through `Ctx.act` (mypy checks every executor)."""
    import typing

    from bot.services.context import CommandStore, Ctx, Replies
    from bot.services.outbox import Outbox
    from storage.repo import Repository

    hints = typing.get_type_hints(Ctx)
    assert (hints["repo"], hints["out"]) == (CommandStore, Replies)
    store = {n for n in vars(CommandStore) if not n.startswith("_")}
    whole = {n for n in dir(Repository) if not n.startswith("_")}
    assert store < whole
    assert len(store) * 3 < len(whole)
    said = {n for n in vars(Replies) if not n.startswith("_")} - {"after"}
    assert said < {n for n in dir(Outbox) if not n.startswith("_")}
    handlers = (ROOT / "bot" / "services" / "handlers.py").read_text(encoding="utf-8")
    assert re.search(r"ctx\.(repo|out)\s*[,)]", handlers) is None  # never handed on whole
