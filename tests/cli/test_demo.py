"""`coophub demo` end to end, as a newcomer runs it: six real hub processes on loopback, the sample
association built through the CLI, queried through the API and the web pages, a guide published on one hub and
found on another, then Ctrl-C stops every hub."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 180.0


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    return json.loads(body) if "/api/" in url else body.decode("utf-8")


def eventually(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def read_ready_line(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The demo's one JSON line (printed once every hub holds every record); bounded wait."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited with {process.returncode}: {process.stderr.read()}")  # type: ignore[union-attr]
        if selector.select(timeout=0.5):
            line = process.stdout.readline()
            if line.strip():
                return dict(json.loads(line))
    raise AssertionError("the demo was not ready in time")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    with subprocess.Popen(
        [sys.executable, "-m", "cli.main", "demo", "--json", "--base-port", "0", "--minutes", "5",
         "--dir", str(tmp_path / "demo")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:  # closes the pipes at the end
        try:
            yield process, read_ready_line(process)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def test_demo_association_works_and_stops_cleanly(
    demo: tuple[subprocess.Popen[str], dict[str, Any]], tmp_path: Path
) -> None:
    process, info = demo
    hubs = info["hubs"]
    assert len(hubs) == 6 and len({h["url"] for h in hubs}) == 6
    assert all(h["url"].startswith("http://127.0.0.1:") for h in hubs)
    assert [h["member"] for h in hubs] == [True] * 6, "the applicant and the council were admitted"

    # Every hub holds the same records (the demo waited for it), and answers for the whole association.
    statuses = [get(h["url"] + "/api/v1/status") for h in hubs]
    assert {s["records"] for s in statuses} == {info["records"]}
    assert {s["association_id"] for s in statuses} == {info["association_id"]}
    assert all(s["members"] == 6 for s in statuses)

    # The members' vote: passed by weight with Cardiff voting by proxy through Powys; the council, a
    # non-voting associate, is not on the roll-call; the amendment is in force and the new scheme's first mark
    # is valid on a hub that took no part.
    vote = get(f"{hubs[5]['url']}/api/v1/proposals/{info['ids']['proposal:user-led-standard']}")
    assert (vote["status"], vote["amendment"]["state"], vote["recount"]["matches"]) == ("passed", "adopted", True)
    assert [(o["option"], o["weight"]) for o in vote["options"]] == [("adopt", 4), ("reject", 1)]
    roll = {v["hub"]: v for v in vote["roll_call"]}
    assert roll[hubs[1]["hub_id"]]["proxy"] == hubs[2]["hub_id"] and hubs[5]["hub_id"] not in roll
    council = get(f"{hubs[0]['url']}/api/v1/hubs/{hubs[5]['hub_id']}")
    assert (council["class"], council["weight"]) == ("council", 0)
    mark = get(f"{hubs[4]['url']}/api/v1/marks/{hubs[2]['hub_id']}?scheme=user-led-standard")
    assert mark["status"] == "valid"
    assert "Roll-call" in get(f"{hubs[3]['url']}/proposals/{info['ids']['proposal:user-led-standard']}")

    # The gloves offer, published on Cardiff's hub, has the same tally on the applicant's hub: 35+60+40+15.
    offer = get(f"{hubs[4]['url']}/api/v1/offers/{info['ids']['offer:gloves']}")
    assert offer["tally"]["total"] == 150 and offer["tally"]["tier"] == {"min_quantity": 100, "unit_price": 800}
    assert len(offer["tally"]["pledges"]) == 4
    aprons = get(f"{hubs[2]['url']}/api/v1/offers/{info['ids']['offer:aprons']}")
    assert aprons["tally"]["status"] == "awarded" and aprons["tally"]["total"] == 45

    # Marks: valid for Gofal Gwynedd, revoked (with the assessor's reason) for Powys, asked of other hubs.
    gofal = get(f"{hubs[3]['url']}/api/v1/marks/{hubs[0]['hub_id']}")["marks"]
    powys = get(f"{hubs[1]['url']}/api/v1/marks/{hubs[2]['hub_id']}")["marks"]
    assert [m["status"] for m in gofal] == ["valid"]
    powys = [m for m in powys if m["scheme"] == "care-quality"]  # it holds the new scheme's mark too
    assert [m["status"] for m in powys] == ["revoked"] and "re-inspection" in powys[0]["reason"]

    # Time credits: each payee's hub booked its payment; every hub shows the same balances, summing to zero.
    ledgers = [get(h["url"] + "/api/v1/credit") for h in hubs]
    assert all(led["accounts"] == ledgers[0]["accounts"] and led["total_minutes"] == 0 for led in ledgers)
    balances = {a["hub_id"]: a["balance_minutes"] for a in ledgers[0]["accounts"]}
    assert [balances[h["hub_id"]] for h in hubs] == [-360, 270, -30, 0, 120, 0]  # the council paid nothing
    # The solidarity fund: Newport's claim approved by two members, Powys paid its share (60.00 / 3 = 20.00).
    fund = get(f"{hubs[1]['url']}/api/v1/funds/{info['ids']['fund']}")
    (claim,) = fund["claims"]
    assert (claim["status"], claim["approvals"], claim["paid"], claim["owed"]) == ("approved", 2, 2000, 4000)
    assert "Cronfa Salwch" in get(f"{hubs[3]['url']}/funds/{info['ids']['fund']}")

    # The superseded guide shows once, in its 2nd edition; the directory page in a browser lists the offer.
    guides = get(f"{hubs[1]['url']}/api/v1/directory?q=lone+working&kind=guide")["results"]
    assert [g["id"] for g in guides] == [info["ids"]["guide:lone-working-v2"]]
    assert "Nitrile gloves" in get(f"{hubs[0]['url']}/?q=gloves&open=1")

    # A newcomer publishes on one hub (through its running serve) and finds it on another within seconds.
    note = tmp_path / "hello.md"
    note.write_text("# Hello from Newport\n\nA test of the demo's gossip.\n", encoding="utf-8")
    published = subprocess.run(
        [sys.executable, "-m", "cli.main", "publish", "guide", str(note), "--title", "Hello from Newport",
         "--license", "CC0-1.0", "--home", hubs[4]["home"], "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert published.returncode == 0, published.stderr
    new_id = json.loads(published.stdout)["id"]
    eventually(lambda: any(r["id"] == new_id for r in
                           get(f"{hubs[0]['url']}/api/v1/directory?q=hello&kind=guide")["results"]),
               "the new guide to reach Gofal Gwynedd's hub")

    # Ctrl-C: the demo stops every hub and exits 0; nothing listens on the hubs' ports any more.
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    for hub in hubs:
        with pytest.raises(urllib.error.URLError):
            get(hub["url"] + "/api/v1/status")
        assert not (Path(hub["home"]) / "serve.json").exists(), "each hub shut down cleanly"


def test_demo_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = subprocess.run([sys.executable, "-m", "cli.main", "demo", "--dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "is not empty" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["something"]


@pytest.mark.parametrize("args", [["--base-port", "-5"], ["--base-port", "65534"], ["--base-port", "x"],
                                  ["--minutes", "0"], ["--minutes", "abc"]])
def test_demo_bad_options_are_one_line(args: list[str], tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cli.main", "demo", "--dir", str(tmp_path / "d"), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("coophub: error:")]
    assert not (tmp_path / "d").exists()
