"""Style rules that code review would otherwise have to remember (STYLE.md).

- ``protocol/`` is sans-IO: it imports nothing that does I/O or reads the clock.
- Each package's ``__init__.py`` states its public surface with ``__all__``.
- No module passes 600 lines (split before then).

The checks walk whatever files exist, so packages being written now are covered as they land.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocol", "hub", "federation", "cli")
FORBIDDEN_IN_PROTOCOL = frozenset({
    "asyncio", "aiohttp", "sqlite3", "sqlite_utils", "socket", "time", "threading", "subprocess", "os",
})
MAX_LINES = 600


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []


def imported_roots(tree: ast.AST) -> set[str]:
    """Top-level names of every absolute import anywhere in the tree (including inside functions)."""
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                roots.add(first.value.split(".")[0])
    return roots


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_protocol_package_exists() -> None:
    assert len(modules("protocol")) >= 10


@pytest.mark.parametrize("path", modules("protocol"), ids=rel)
def test_protocol_is_sans_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = imported_roots(tree) & FORBIDDEN_IN_PROTOCOL
    assert not bad, f"{rel(path)} imports {sorted(bad)}; protocol/ does no I/O and takes time as now_ms"


def test_the_forbidden_import_check_catches_each_form() -> None:
    for source in ("import os", "import os.path", "from time import monotonic", "import asyncio as aio",
                   "def f():\n    import socket", "__import__('sqlite3')", "from aiohttp.web import App"):
        assert imported_roots(ast.parse(source)) & FORBIDDEN_IN_PROTOCOL, source
    allowed = imported_roots(ast.parse("from .records import Record\nimport hashlib"))
    assert not allowed & FORBIDDEN_IN_PROTOCOL


def public_imports(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            names += [(a.asname or a.name).split(".")[0] for a in node.names]
    return [n for n in names if not n.startswith("_") and n != "*"]


def defines_all(tree: ast.Module) -> bool:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign | ast.AugAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


INITS = [ROOT / p / "__init__.py" for p in PACKAGES if (ROOT / p / "__init__.py").exists()]


@pytest.mark.parametrize("path", INITS, ids=rel)
def test_package_init_declares_all(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if public_imports(tree):
        assert defines_all(tree), f"{rel(path)} imports public names but has no __all__"


def test_protocol_all_names_exist() -> None:
    import protocol

    missing = [name for name in protocol.__all__ if not hasattr(protocol, name)]
    assert not missing


def test_the_all_check_sees_imports() -> None:
    assert public_imports(ast.parse("from .x import A, _b\nimport json")) == ["A", "json"]
    assert not defines_all(ast.parse("from .x import A"))
    assert defines_all(ast.parse("from .x import A\n__all__ = ['A']"))


@pytest.mark.parametrize("path", [p for pkg in PACKAGES for p in modules(pkg)], ids=rel)
def test_modules_stay_under_600_lines(path: Path) -> None:
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{rel(path)} has {n} lines; split it (STYLE.md: small modules)"
