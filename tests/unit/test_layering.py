"""The dependency rule (ARCHITECTURE.md), enforced by walking every import with `ast`.

- only modules under bot/matrix/ import nio;
- only storage/ imports aiosqlite;
- only bot/services/ imports apscheduler;
- bot/domain/ imports only the standard library and bot.domain.
"""

from __future__ import annotations

import ast
import sys
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


def imports_in(source: str, package: str) -> frozenset[str]:
    """Absolute names of every module some source imports, at any depth (inside functions,
    under TYPE_CHECKING); `package` is the package relative imports start from."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                prefix = ".".join(base)
                found.add(f"{prefix}.{node.module}" if node.module else prefix)
                if not node.module:  # `from . import x`: x is a module of the package
                    found.update(f"{prefix}.{alias.name}" for alias in node.names)
            else:
                assert node.module is not None
                found.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return frozenset(found)


@cache
def imports_of(path: Path) -> frozenset[str]:
    """Every module a source file imports."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), package)


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
        ("aiosqlite", "storage", "storage/database.py"),
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
    }
