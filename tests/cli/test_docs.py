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


def _documented_counters() -> set[str]:
    """The counter names in the table under docs/api.md's "GET /api/v1/status"."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    section = text.split("### `GET /api/v1/status`", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))


def _counters_in_the_code() -> set[str]:
    """Every counter federation/ can put in ``traffic()``: its ``stats["…"]`` keys, ``served_<op>`` for each
    session request, and the keys of the dicts written in ``Federation.traffic`` itself (the client's totals)."""
    import ast

    from federation.session import OPS

    root = DOCS.parent / "federation"
    keys = {m for path in root.glob("*.py") for m in re.findall(r'stats\["([a-z_]+)"\]', path.read_text("utf-8"))}
    tree = ast.parse((root / "driver.py").read_text("utf-8"))
    traffic = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "traffic")
    made = {k.value for d in ast.walk(traffic) if isinstance(d, ast.Dict) for k in d.keys
            if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    assert "requests" in made, "Federation.traffic no longer writes its client's totals as a dict literal"
    return keys | made | {f"served_{op}" for op in OPS}


async def test_the_federation_counters_in_docs_are_the_ones_status_returns(tmp_path: Path) -> None:
    """Two real hubs exchange a record; every counter their GET /api/v1/status returns is documented, and
    every documented counter is one the code keeps (the docs once named `served_records`, `served_bytes_in`…)."""
    import random

    from tests.federation.network import Network, eventually, guide_body, lacking

    documented = _documented_counters()
    assert len(documented) >= 20, documented
    assert documented <= _counters_in_the_code(), sorted(documented - _counters_in_the_code())
    net = Network(tmp_path, random.SystemRandom().randrange(2**32))
    try:
        a, b = net.hub("docs-a"), net.hub("docs-b")
        net.found([a, b])
        net.link(a, b)
        await net.start()
        guide = await a.publish("guide", guide_body("Counted"))
        await eventually(lambda: lacking([b], [guide]), "b gets the guide")
        seen: set[str] = set()
        for hub in (a, b):
            async with net.http.get(f"{hub.url}/api/v1/status") as resp:
                returned = set((await resp.json())["federation"])
            assert {"sessions", "requests", "wire_bytes_out"} <= returned, returned
            assert returned <= documented, f"docs/api.md lacks {sorted(returned - documented)}"
            seen |= returned
        assert {"served_requests", "served_push", "push_records"} <= seen, seen  # b served a's push
    finally:
        await net.close()
