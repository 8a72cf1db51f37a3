"""Docs tested like code (sqlite-utils' test_docs.py): every CLI command and option has help text and is in
docs/cli.md under its own heading; every /api/v1 route of the app is in docs/api.md."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import build_parser
from hub.app import make_app
from hub.home import Home
from hub.store import Store

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMON_OPTIONS = {"-h", "--help", "--home", "--json"}  # documented once, at the top of docs/cli.md


def commands(
    parser: argparse.ArgumentParser, prefix: str = "coophub"
) -> Iterator[tuple[str, str | None, argparse.ArgumentParser]]:
    """(full command, its help text, its parser) for every leaf command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    assert helps.get(name), f"{prefix} {name} has no help text"
                    yield from commands(sub, f"{prefix} {name}")
                else:
                    yield f"{prefix} {name}", helps.get(name), sub


def sections(text: str) -> dict[str, str]:
    """docs/cli.md's text under each "### `coophub ...`" heading."""
    parts = re.split(r"^### `(coophub[^`]*)`\s*$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


ALL = list(commands(build_parser()))


@pytest.mark.parametrize("command,help_text,parser", ALL, ids=[c for c, _, _ in ALL])
def test_command_has_help_and_docs(
    command: str, help_text: str | None, parser: argparse.ArgumentParser
) -> None:
    assert help_text, f"{command} has no help text"
    assert parser.description, f"{command} has no description"
    section = sections((DOCS / "cli.md").read_text(encoding="utf-8")).get(command)
    assert section is not None, f"docs/cli.md has no '### `{command}`' section"
    for action in parser._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help text"
        names = [o for o in action.option_strings if o not in COMMON_OPTIONS]
        for name in names[:1]:
            assert f"`{name}" in section, f"docs/cli.md's {command} section does not mention {name}"


def test_common_options_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert "`--home DIR`" in text and "`--json`" in text and "COOPHUB_HOME" in text


def test_every_api_route_is_documented(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "h", "Docs")
    store = Store(home.db_path, blobs_dir=home.blobs_dir)
    try:
        app = make_app(home, store, web_pages=False, federation=False)
        routes = {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.resource is not None
            and route.resource.canonical.startswith("/api/v1")
            and route.method != "HEAD"
        }
    finally:
        store.close()
    assert len(routes) >= 9
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    for method, path in sorted(routes):
        assert f"{method} {path}" in text, f"docs/api.md does not document {method} {path}"
