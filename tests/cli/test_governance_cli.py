"""The governance commands (cli/governance.py, and the class options of `charter create` and `endorse`), run in
this process on real homes and stores. Bad input prints one error line, exits non-zero and stores nothing.

Records move between the three homes with the store's own ingest (as import or gossip would). The clock is
moved forward by patching the CLI's ``now_ms`` (every command reads the time there).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli import common, governance
from cli.main import main
from hub.home import Home
from hub.store import Store

HOUR = 3_600_000


@dataclass
class Homes:
    a: Path
    b: Path
    c: Path
    outsider: Path
    ids: dict[str, str]


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0
        real = common.now_ms
        for module in (common, governance):
            monkeypatch.setattr(module, "now_ms", lambda: real() + self.offset)


def run(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> Any:
    code, out, err = run(capsys, home, *argv, "--json")
    assert code == 0, (argv, out, err)
    return json.loads(out)


def refused(capsys: pytest.CaptureFixture[str], home: Path, *argv: str, words: tuple[str, ...] = ()) -> str:
    before = count(home)
    code, out, err = run(capsys, home, *argv)
    assert code != 0 and out == "", (argv, out, err)
    lines = [line for line in err.splitlines() if line.startswith("coophub: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (lines[0], word)
    assert count(home) == before, f"{argv} stored something"
    return lines[0]


def count(home: Path) -> int:
    with Store(home / "hub.sqlite3") as store:
        return store.count()


def sync(*homes: Path) -> None:
    """Every home gets every record any of them holds."""
    raws: list[bytes] = []
    for home in homes:
        with Store(home / "hub.sqlite3") as store:
            raws += [store.get_raw(i) or b"" for _, i in store.sync_items()]
    for home in homes:
        with Store(home / "hub.sqlite3") as store:
            store.ingest(raws, now_ms=common.now_ms() + 10 * HOUR)


@pytest.fixture
def homes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Homes]:
    paths = {}
    for name in ("a", "b", "c", "outsider"):
        paths[name] = tmp_path / name
        assert main(["init", "--name", f"Co-op {name.upper()}", "--home", str(paths[name])]) == 0
    ids = {name: Home.open(p).hub_id for name, p in paths.items()}
    capsys.readouterr()
    charter = ok(capsys, paths["a"], "charter", "create", "--association", "Test Co-ops",
                 "--class", "worker-coop:1", "--class", "user-led:2", "--class", "council:0",
                 "--founder", f"{ids['a']}:worker-coop", "--founder", f"{ids['b']}:user-led",
                 "--founder", f"{ids['c']}:council", "--endorsements-needed", "1")["id"]
    for name in ("b", "c", "outsider"):
        home = Home.open(paths[name])
        home.config.association_id = charter
        home.save_config()
    sync(*paths.values())
    yield Homes(paths["a"], paths["b"], paths["c"], paths["outsider"], {**ids, "charter": charter})


def test_a_charter_amendment_is_proposed_voted_by_proxy_closed_and_in_force(
        homes: Homes, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = Clock(monkeypatch)
    amendment = tmp_path / "amend.toml"
    amendment.write_text(f"""reviews_needed = 3

[[schemes]]
id = "user-led-standard"
name = "User-Led Support Standard"
assessors = ["{homes.ids['b']}"]
""", encoding="utf-8")
    terms = ok(capsys, homes.a, "charter", "terms")
    assert [c["name"] for c in terms["classes"]] == ["worker-coop", "user-led", "council"]
    closes = "2030-01-01T00:00:00Z"
    proposal = ok(capsys, homes.a, "propose", "--title", "Adopt the User-Led Support Standard",
                  "--option", "adopt", "--option", "reject", "--closes", closes,
                  "--amend-charter", str(amendment))["id"]
    sync(homes.a, homes.b, homes.c)
    view = ok(capsys, homes.a, "result", proposal)
    assert (view["rule"], view["quorum"]["percent"], view["status"]) == ("two-thirds", 50, "open")
    ok(capsys, homes.b, "vote", proposal, "ADOPT")  # options match ignoring case
    refused(capsys, homes.c, "vote", proposal, "adopt", words=("'council'", "weight 0"))
    refused(capsys, homes.c, "delegate", homes.ids["a"], words=("non-voting associate",))
    refused(capsys, homes.a, "delegate", homes.ids["a"], words=("itself",))
    refused(capsys, homes.a, "delegate", homes.ids["outsider"], words=("not a member",))
    refused(capsys, homes.a, "vote", proposal, "maybe", words=("not an option", "adopt, reject"))
    refused(capsys, homes.a, "close-proposal", proposal, words=("voting is open until",))
    sync(homes.a, homes.b)
    refused(capsys, homes.b, "close-proposal", proposal, words=("only the proposer",))
    delegation = ok(capsys, homes.a, "delegate", homes.ids["b"], "--proposal", proposal)["id"]
    assert len(delegation) == 64
    sync(homes.a, homes.b, homes.c)
    view = ok(capsys, homes.a, "result", proposal)
    lines = {v["hub"]: (v["option"], v["proxy"]) for v in view["roll_call"]}
    assert lines == {homes.ids["b"]: ("adopt", None), homes.ids["a"]: ("adopt", homes.ids["b"])}
    assert (view["outcome"], view["quorum_met"], [o["weight"] for o in view["options"]]) == ("passed", True,
                                                                                            [3, 0])
    clock.offset = 5 * 365 * 24 * HOUR  # past the closing time
    refused(capsys, homes.b, "vote", proposal, "reject", words=("voting closed",))
    closed = ok(capsys, homes.a, "close-proposal", proposal)
    assert closed["outcome"] == "passed" and len(closed["ballots"]) == 1 and closed["delegations"] == [delegation]
    view = ok(capsys, homes.a, "result", proposal)
    assert (view["status"], view["amendment"]["state"]) == ("passed", "adopted")
    terms = ok(capsys, homes.a, "charter", "terms")
    assert terms["reviews_needed"] == 3 and "user-led-standard" in {s["id"] for s in terms["schemes"]}
    code, out, _ = run(capsys, homes.a, "result", proposal)
    assert code == 0 and "passed" in out and "by proxy" in out
    code, out, _ = run(capsys, homes.a, "charter", "terms", "--toml")
    assert code == 0 and 'id = "user-led-standard"' in out and "reviews_needed = 3" in out


def test_bad_proposals_and_classes(homes: Homes, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nobody = tmp_path / "nobody.toml"
    nobody.write_text("[[classes]]\nname = 'worker-coop'\nweight = 0\n[[classes]]\nname = 'user-led'\n"
                      "weight = 0\n[[classes]]\nname = 'council'\nweight = 0\n", encoding="utf-8")
    refused(capsys, homes.a, "propose", "--title", "Associates all", "--option", "yes", "--option", "no",
            "--closes", "2030-01-01", "--amend-charter", str(nobody), words=("no voting member",))
    bad = tmp_path / "bad.toml"
    bad.write_text("founders = []\n", encoding="utf-8")
    refused(capsys, homes.a, "propose", "--title", "X", "--option", "yes", "--option", "no", "--closes",
            "2030-01-01", "--amend-charter", str(bad), words=("'founders' is not a charter term",))
    refused(capsys, homes.a, "propose", "--title", "X", "--option", "yes", "--closes", "2030-01-01",
            words=("--option",))
    refused(capsys, homes.a, "propose", "--title", "X", "--option", "yes", "--option", "no", "--closes",
            "2020-01-01", words=("not in the future",))
    refused(capsys, homes.a, "propose", "--title", "X", "--option", "yes", "--option", "no", "--closes",
            "2030-01-01", "--objection", "no", words=("only a consent proposal",))
    refused(capsys, homes.a, "endorse", homes.ids["outsider"], "--class", "investor",
            words=("'investor' is not a class",))
    fresh = tmp_path / "fresh"
    assert main(["init", "--name", "Fresh", "--home", str(fresh)]) == 0
    capsys.readouterr()
    refused(capsys, fresh, "charter", "create", "--association", "X", "--class", "council", words=("NAME:WEIGHT",))
    refused(capsys, fresh, "charter", "create", "--association", "X", "--class", "a:1",
            "--founder", f"{homes.ids['a']}:b", words=("no --class defines",))


def test_reviews_from_the_cli(homes: Homes, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = tmp_path / "guide.md"
    text.write_text("# Rotas\n\nWorkers draft the rota.\n", encoding="utf-8")
    guide = ok(capsys, homes.a, "publish", "guide", str(text), "--title", "Rotas", "--license", "CC0-1.0")["id"]
    refused(capsys, homes.a, "review", guide, words=("its own guide",))
    sync(homes.a, homes.b)
    ok(capsys, homes.b, "review", guide, "--comment", "We use it.")
    refused(capsys, homes.b, "review", guide, words=("already approved",))
    refused(capsys, homes.b, "review", "00" * 32, words=("no guide",))
