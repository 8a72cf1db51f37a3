"""The test suite needs nothing outside this repository (DEVELOPERS.md: a fresh clone with nothing beside it
passes ``make test``).

A test once read ``../shared/negentropy/vectors.json``: it passed on a developer's machine and failed on every
fresh clone. This check walks every test module's AST and fails on the ways a path can leave the repository:
``Path(__file__).parents[N]`` (or ``.parent`` chains) climbing above the repository root, a string naming the
sibling ``shared`` folder, or a relative path that starts with ``..``. Data a test needs is vendored under
``tests/`` (see tests/federation/data/README.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent


def _test_modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def _depth(path: Path) -> int:
    """How many ``.parent`` steps lead from the file ``path`` to the repository root."""
    return len(path.relative_to(REPO).parts)


def _escapes(tree: ast.AST, depth: int) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        # Path(__file__)...parents[N]: N + 1 steps up from the file.
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "parents" and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, int) and node.slice.value + 1 > depth):
            found.append(f"line {node.lineno}: parents[{node.slice.value}] climbs above the repository")
        # .parent.parent.parent…: count a chain of .parent attributes.
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            steps, inner = 0, node
            while isinstance(inner, ast.Attribute) and inner.attr == "parent":
                steps, inner = steps + 1, inner.value
            if steps > depth:
                found.append(f"line {node.lineno}: {steps} x .parent climbs above the repository")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith("../") or "/shared/" in text or text in ("shared", "../shared"):
                found.append(f"line {node.lineno}: {text[:60]!r} names a path outside the repository")
    return found


@pytest.mark.parametrize("path", _test_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_reads_nothing_outside_the_repository(path: Path) -> None:
    if path.name == Path(__file__).name:
        return  # this file names the patterns it looks for
    problems = _escapes(ast.parse(path.read_text(encoding="utf-8")), _depth(path))
    assert not problems, f"{path.relative_to(REPO)}: " + "; ".join(problems)


def test_the_check_catches_the_old_dependency() -> None:
    old = 'VECTORS = Path(__file__).resolve().parents[3] / "shared" / "negentropy" / "vectors.json"'
    problems = _escapes(ast.parse(old), depth=3)  # tests/federation/x.py
    assert len(problems) == 2
