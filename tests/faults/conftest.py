"""The fault tests' two sizes (tests/faults/harness.py ``SIZES``): `make test` runs every scenario's short
version; the long ones, marked ``chaos``, run under `make test-chaos` (``-m chaos``) and are deselected otherwise
— reported, never silently: pytest counts them as deselected and the summary names the target that runs them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import LIVE, figures_path, stop_all

_DESELECTED: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "chaos" in config.getoption("markexpr"):  # a -m that names chaos decides (`make test-chaos`: -m chaos)
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


@pytest.fixture(autouse=True)
def _no_hub_left_running() -> Iterator[None]:
    """Stop every hub process a test started, whether it passed or failed."""
    yield
    hubs, LIVE[:] = list(LIVE), []
    stop_all(hubs)
