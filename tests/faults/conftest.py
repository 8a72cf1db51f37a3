"""The fault tests' two sizes (tests/faults/harness.py ``SIZES``): `make test` runs every scenario's short
version; the long ones, marked ``chaos``, run under `make test-chaos` (``-m chaos``) and are deselected otherwise
— reported, never silently: pytest counts them as deselected and the summary names the target that runs them."""

from __future__ import annotations

import pytest

from .harness import figures_path

_DESELECTED: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("markexpr"):  # an explicit -m decides, e.g. `make test-chaos` passes -m chaos
        return
    long = [item for item in items if item.get_closest_marker("chaos") is not None]
    if long:
        _DESELECTED[:] = [item.nodeid for item in long]
        items[:] = [item for item in items if item.get_closest_marker("chaos") is None]
        config.hook.pytest_deselected(items=long)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _DESELECTED:
        terminalreporter.write_line(f"tests/faults: {len(_DESELECTED)} long fault tests (marked chaos) were "
                                    "deselected; `make test-chaos` runs them")
    path = figures_path()
    if path.exists():
        terminalreporter.write_line(f"tests/faults: figures in {path}")
