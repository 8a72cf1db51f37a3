"""The `coophub` CLI end to end, through subprocesses on temporary homes (docs/cli.md, PRODUCT.md §4).

Records move between hubs with `export --format jsonl` / `import` (no federation needed). Every bad-input case
must print one error line on stderr (plus argparse's usage), no traceback, exit non-zero, and change nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAY = 86_400_000

# Required fields of the Open Referral HSDS 3.0 schemas (github.com/openreferral/specification, branch 3.0,
# schema/*.json "required", plus "tabular_required" for the tabular form we export): organization.json
# requires id, name, description; service.json requires id, name, status and, in tabular form,
# organization_id; service_area.json, contact.json and attribute.json require id (attribute's tabular form
# also link_id, taxonomy_term_id, link_entity); taxonomy_term.json requires id, name, description.
HSDS_REQUIRED = {
    "organization": ("id", "name", "description"),
    "service": ("id", "organization_id", "name", "status"),
    "service_area": ("id",),
    "contact": ("id",),
    "attribute": ("id", "link_id", "taxonomy_term_id", "link_entity"),
    "taxonomy_term": ("id", "name", "description"),
}
HSDS_SERVICE_STATUSES = {"active", "inactive", "defunct", "temporarily closed"}


def coophub(*args: str, home: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPHUB_")}
    argv = [sys.executable, "-m", "cli.main", *args]
    if home is not None:
        argv += ["--home", str(home)]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def ok(*args: str, home: Path | None = None) -> str:
    result = coophub(*args, home=home)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout.strip()


def ok_json(*args: str, home: Path | None = None) -> Any:
    return json.loads(ok(*args, "--json", home=home))


def assert_one_error_line(result: subprocess.CompletedProcess[str], args: tuple[str, ...]) -> None:
    assert result.returncode != 0, (args, result.stdout)
    assert "Traceback" not in result.stderr, (args, result.stderr)
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("coophub: error:")]
    assert len(errors) == 1, (args, result.stderr)
    others = [line for line in lines if line not in errors]
    # argparse's usage line (possibly wrapped onto indented lines) is the only other thing allowed
    assert all(line.startswith("usage:") or line.startswith(" ") for line in others), (args, result.stderr)
    if others:
        assert result.returncode == 2, args


@dataclass
class Association:
    """A founding hub A (also the assessor), a second founder B and a newcomer C, on temporary homes."""

    root: Path
    a: Path
    b: Path
    c: Path
    ids: dict[str, str] = field(default_factory=dict)

    def move(self, source: Path, target: Path) -> dict[str, int]:
        """Copy every record of ``source`` into ``target`` through export/import (a backup and restore)."""
        dump = self.root / "dump.jsonl"
        ok("export", "--format", "jsonl", "--output", str(dump), home=source)
        return ok_json("import", str(dump), home=target)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def assoc(tmp_path_factory: pytest.TempPathFactory) -> Association:
    root = tmp_path_factory.mktemp("assoc")
    s = Association(root, root / "a", root / "b", root / "c")
    s.ids["A"] = ok("init", "--name", "Alpha Care", "--region", "Leeds", home=s.a)
    s.ids["B"] = ok("init", "--name", "Beta Meals", home=s.b)
    s.ids["C"] = ok_json("init", "--name", "Gamma Newcomers", home=s.c)["hub_id"]
    assert all(v.startswith("hub_") for v in s.ids.values())
    s.ids["assoc"] = ok(
        "charter",
        "create",
        "--association",
        "Care Co-ops",
        "--founder",
        s.ids["B"],
        "--scheme",
        "care-quality:Care Quality",
        "--assessor",
        s.ids["A"],
        home=s.a,
    )
    assert len(s.ids["assoc"]) == 64
    assert ok("join", s.ids["assoc"], "--peer", "http://127.0.0.1:9", home=s.b) == s.ids["assoc"]
    assert ok("join", s.ids["assoc"], "--peer", "http://127.0.0.1:9", home=s.c) == s.ids["assoc"]
    ok(
        "publish",
        "profile",
        "--description",
        "Home care in Leeds",
        "--service",
        "Home care:care",
        "--region",
        "Leeds",
        "--email",
        "hello@alpha.example",
        "--website",
        "https://alpha.example",
        home=s.a,
    )
    guide = root / "lifting.md"
    guide.write_text("# Safe lifting\n\nHow our carers lift safely.\n\nSteps follow.\n", encoding="utf-8")
    attachment = root / "checklist.txt"
    attachment.write_bytes(b"1. bend your knees\n")
    s.ids["guide"] = ok_json(
        "publish",
        "guide",
        str(guide),
        "--title",
        "Safe lifting",
        "--license",
        "CC-BY-4.0",
        "--tag",
        "safety",
        "--attach",
        str(attachment),
        home=s.a,
    )["id"]
    s.ids["offer"] = ok(
        "publish",
        "offer",
        "--title",
        "Nitrile gloves",
        "--unit",
        "box",
        "--tier",
        "1:9",
        "--tier",
        "100:4.50",
        "--currency",
        "GBP",
        "--min-total",
        "50",
        "--deadline",
        "2099-01-01",
        "--region",
        "Leeds",
        home=s.a,
    )
    s.move(s.a, s.b)
    ok(
        "publish",
        "profile",
        "--name",
        "Beta Meals",
        "--service",
        "Meals on wheels:food",
        "--region",
        "York",
        home=s.b,
    )
    s.ids["pledge_b"] = ok("pledge", s.ids["offer"], "70", home=s.b)
    s.ids["pledge_a"] = ok("pledge", s.ids["offer"], "40", home=s.a)
    s.move(s.b, s.a)
    s.ids["attest"] = ok(
        "attest",
        s.ids["B"],
        "--scheme",
        "care-quality",
        "--level",
        "gold",
        "--valid-until",
        "2099-01-01",
        "--evidence",
        "https://assessor.example/r/1",
        home=s.a,
    )
    # the newcomer applies: its profile waits on its own hub (an applicant's, quarantined) until A sponsors it
    # by its hub id; the sponsorship reaches C, C's profile lands there and travels to A; B endorses too
    s.move(s.a, s.c)
    ok("publish", "profile", "--name", "Gamma Newcomers", "--service", "Day centre:care", home=s.c)
    assert s.move(s.c, s.a)["accepted"] == 0
    s.ids["endorse_a"] = ok("endorse", s.ids["C"], "--statement", "We know them well", home=s.a)
    s.move(s.a, s.c)
    s.move(s.c, s.a)
    s.move(s.a, s.b)
    ok("endorse", s.ids["C"], home=s.b)
    s.move(s.b, s.a)
    return s


def test_status_json_has_the_contract_fields(assoc: Association) -> None:
    status = ok_json("status", home=assoc.a)
    assert status["hub_id"] == assoc.ids["A"]
    assert status["association_id"] == assoc.ids["assoc"]
    assert status["member"] is True
    assert status["records"] >= 10
    assert "peers" in status
    assert ok_json("status", home=assoc.b)["peers"] == 1
    text = ok("status", home=assoc.a)
    assert assoc.ids["A"] in text and "Care Co-ops" in text


def test_offer_pledges_from_two_hubs_and_close(assoc: Association) -> None:
    shown = ok_json("show", assoc.ids["offer"], home=assoc.a)
    assert shown["body"]["tiers"] == [[1, 900], [100, 450]]
    assert shown["tally"]["total"] == 110
    assert shown["tally"]["tier"] == {"min_quantity": 100, "unit_price": 450}
    # B never receives the close: `search --open` on B still lists the offer (test_search_table_and_json)
    closed = ok_json("close-offer", assoc.ids["offer"], "--outcome", "awarded", home=assoc.a)
    assert sorted(closed["pledges"]) == sorted([assoc.ids["pledge_a"], assoc.ids["pledge_b"]])
    view = ok_json("show", assoc.ids["offer"], home=assoc.a)
    assert view["tally"]["status"] == "awarded" and view["tally"]["total"] == 110
    again = coophub("close-offer", assoc.ids["offer"], "--outcome", "cancelled", home=assoc.a)
    assert_one_error_line(again, ("close-offer twice",))


def test_marks_membership_and_revocation(assoc: Association) -> None:
    check = ok_json("verify-mark", assoc.ids["B"], "care-quality", home=assoc.a)
    assert check["status"] == "valid" and check["attestation"]["id"] == assoc.ids["attest"]
    assert ok("verify-mark", assoc.ids["B"], "care-quality", home=assoc.a).startswith("valid:")
    assert ok_json("verify-mark", assoc.ids["C"], "care-quality", home=assoc.a)["status"] == "none"
    hub_c = ok_json("show", assoc.ids["C"], home=assoc.a)
    assert hub_c["member"] is True and len(hub_c["endorsers"]) == 2
    text = ok("show", assoc.ids["C"], home=assoc.a)
    assert "Gamma Newcomers" in text
    ok("revoke", assoc.ids["attest"], "--reason", "Issued in error", home=assoc.a)
    revoked = ok_json("verify-mark", assoc.ids["B"], "care-quality", home=assoc.a)
    assert revoked["status"] == "revoked" and "Issued in error" in revoked["reason"]
    ok("revoke", assoc.ids["endorse_a"], "--reason", "Changed our mind", home=assoc.a)
    assert ok_json("show", assoc.ids["C"], home=assoc.a)["member"] is False


def test_pledges_that_would_not_count_are_refused_with_the_reason(assoc: Association) -> None:
    late = ok("publish", "offer", "--title", "Past gloves", "--unit", "box", "--tier", "1:9", "--currency", "GBP",
              "--min-total", "5", "--deadline", "2026-01-01", home=assoc.a)
    result = coophub("pledge", late, "5", home=assoc.a)
    assert_one_error_line(result, ("pledge late",))
    assert "deadline passed" in result.stderr
    soon = ok("publish", "offer", "--title", "Soon gloves", "--unit", "box", "--tier", "1:9", "--currency",
              "GBP", "--min-total", "5", "--deadline", "2099-01-01", home=assoc.a)
    ok("close-offer", soon, "--outcome", "cancelled", home=assoc.a)
    result = coophub("pledge", soon, "5", home=assoc.a)
    assert_one_error_line(result, ("pledge closed",))
    assert "closed (cancelled)" in result.stderr


def test_a_date_only_deadline_is_the_end_of_that_day_in_the_hubs_time_zone(assoc: Association) -> None:
    offer = ok("publish", "offer", "--title", "Summer aprons", "--unit", "pack", "--tier", "1:2", "--currency",
               "GBP", "--min-total", "5", "--deadline", "2099-07-01", home=assoc.a)
    deadline = ok_json("show", offer, home=assoc.a)["body"]["deadline"]
    # 2099-07-01 is in British Summer Time (UTC+1): the day ends at 22:59:59.999 UTC
    assert deadline == 4086629999999, deadline


def test_search_table_and_json(assoc: Association) -> None:
    found = ok_json("search", "lifting", home=assoc.a)
    assert found["total"] >= 1 and found["results"][0]["id"] == assoc.ids["guide"]
    hubs = ok_json("search", "--kind", "hub", "--region", "York", home=assoc.a)
    assert [r["title"] for r in hubs["results"]] == ["Beta Meals"]
    offers = ok_json("search", "--kind", "offer", "--open", home=assoc.b)
    assert [r["id"] for r in offers["results"]] == [assoc.ids["offer"]]
    care = ok_json("search", "--kind", "hub", "--service", "care", home=assoc.a)
    assert "Alpha Care" in {r["title"] for r in care["results"]}
    table = ok("search", home=assoc.a)
    assert "Safe lifting" in table and "Nitrile gloves" in table and "\x1b[" not in table
    assert "no matches" in ok("search", "zzzznothing", home=assoc.a)


def in_terminal(*args: str, home: Path, columns: int = 80) -> str:
    """Run coophub on a pseudo-terminal of ``columns`` columns (what a person sees), return what it printed."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPHUB_") and k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", *args, "--home", str(home)], cwd=REPO, env=env,
                            stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_search_in_a_narrow_terminal_shows_whole_ids_and_statuses(assoc: Association) -> None:
    shown = in_terminal("search", home=assoc.a, columns=80)
    found = ok_json("search", home=assoc.a)["results"]
    for result in found:
        assert result["id"] in shown, (result["id"], shown)  # whole, on one line, copyable
    assert "valid" in shown or "open" in shown  # mark status and offer status are not cut off
    assert "…" not in "".join(line for line in shown.splitlines() if line.strip().startswith("id "))


def test_show_a_guide_with_its_attachment(assoc: Association) -> None:
    guide = ok_json("show", assoc.ids["guide"], home=assoc.a)
    assert guide["kind"] == "guide" and guide["body"]["license"] == "CC-BY-4.0"
    assert guide["body"]["summary"] == "How our carers lift safely."
    (attachment,) = guide["body"]["attachments"]
    assert attachment["name"] == "checklist.txt" and attachment["size"] == 19
    assert (assoc.a / "blobs").exists()
    text = ok("show", assoc.ids["guide"], home=assoc.a)
    assert "Safe lifting" in text and "bend" not in text


def test_export_hsds_has_the_required_fields(assoc: Association, tmp_path: Path) -> None:
    out = tmp_path / "directory.json"
    ok("export", "--format", "hsds", "--output", str(out), home=assoc.a)
    data = json.loads(out.read_text(encoding="utf-8"))
    for table, required in HSDS_REQUIRED.items():
        for row in data[table]:
            missing = [name for name in required if not row.get(name)]
            assert not missing, (table, row, missing)
    names = {o["name"] for o in data["organization"]}
    assert {"Alpha Care", "Beta Meals"} <= names
    assert all(s["status"] in HSDS_SERVICE_STATUSES for s in data["service"])
    orgs = {o["id"] for o in data["organization"]}
    assert all(s["organization_id"] in orgs for s in data["service"])
    assert {a["name"] for a in data["service_area"]} >= {"Leeds", "York"}
    # stable ids: a second export is identical
    again = json.loads(ok("export", "--format", "hsds", home=assoc.a))
    assert again == data


def test_jsonl_round_trip_into_a_fresh_home(assoc: Association, tmp_path: Path) -> None:
    dump = tmp_path / "backup.jsonl"
    ok("export", "--format", "jsonl", "--output", str(dump), home=assoc.a)
    lines = dump.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert all("raw" in r and "id" in r and "kind" in r for r in records)
    assert [(r["created_ms"], r["id"]) for r in records] == sorted(
        (r["created_ms"], r["id"]) for r in records
    )
    fresh = tmp_path / "fresh"
    ok("init", "--name", "Restored", home=fresh)
    counts = ok_json("import", str(dump), "--progress", home=fresh)
    assert counts["accepted"] == len(lines) and counts["refused"] == 0
    assert ok_json("import", str(dump), home=fresh)["duplicate"] == len(lines)
    assert ok("export", "--format", "jsonl", home=fresh).splitlines() == lines


def _snapshot(home: Path) -> tuple[int, bytes, list[str]]:
    records = ok_json("status", home=home)["records"]
    blobs = sorted(p.name for p in (home / "blobs").rglob("*") if p.is_file())
    return records, (home / "config.toml").read_bytes(), blobs


def test_bad_input_one_line_and_nothing_changes(assoc: Association, tmp_path: Path) -> None:
    md = tmp_path / "g.md"
    md.write_text("# G\n\nText.\n", encoding="utf-8")
    bad_jsonl = tmp_path / "bad.jsonl"
    good_line = ok("export", "--format", "jsonl", home=assoc.a).splitlines()[-1]
    bad_jsonl.write_text(good_line + "\n{not json\n", encoding="utf-8")
    offer, unknown = assoc.ids["offer"], "ab" * 32
    offer_args = "publish offer --title T --unit u --currency GBP --min-total 5 --deadline 2099-01-01"
    guide_args = f"publish guide {md} --title G --license CC0-1.0"
    attest_args = f"attest {assoc.ids['B']} --scheme care-quality --level gold"
    lines = [
        f"{offer_args} --tier 100:4.505",
        f"{offer_args} --tier -5:1",
        f"{offer_args} --tier 100:-1",
        f"{offer_args} --tier 0:1",
        f"{offer_args} --tier 100:1 --deadline 2099-13-45",
        f"{offer_args} --tier 100:1 --currency pounds",
        f"{offer_args} --tier 100:1 --min-total -5",
        f"publish guide {md} --title G --license proprietary",
        f"publish guide {tmp_path / 'missing.md'} --title G --license CC0-1.0",
        f"{guide_args} --attach {md} --tag Not-A-Tag",
        f"{guide_args} --attach {tmp_path / 'missing.pdf'}",
        f"{guide_args} --supersedes nothex",
        "publish profile --service nocategory",
        "publish profile --service Rockets:spaceflight",
        "publish profile --url not-a-url",
        "publish kite",
        "pledge nothex 5",
        f"pledge {offer} -3",
        f"pledge {offer} many",
        f"pledge {unknown} 5",
        f"close-offer {unknown} --outcome awarded",
        f"close-offer {offer} --outcome maybe",
        "attest hub_bad --scheme care-quality --level gold --valid-until 2099-01-01",
        f"{attest_args} --valid-until 2000-01-01",
        f"{attest_args} --valid-until 2099-01-01 --valid-from 2100-01-01",
        f"attest {assoc.ids['B']} --scheme Care! --level gold --valid-until 2099-01-01",
        "endorse garbage",
        f"endorse {assoc.ids['A']}",  # oneself
        f"revoke {offer}",
        f"revoke {assoc.ids['pledge_b']} --reason not-ours",  # another hub's record
        f"revoke {assoc.ids['pledge_a']} --reason not-revocable",  # a pledge is replaced, not revoked
        f"revoke {unknown} --reason no-such-record",
        f"show {unknown}",
        "show garbage",
        "show hub_" + "a" * 55,
        "verify-mark hub_x care-quality",
        f"verify-mark {assoc.ids['B']} no-such-scheme",
        f"attest {assoc.ids['B']} --scheme no-such-scheme --level gold --valid-until 2099-01-01",
        f"export --format jsonl --output {tmp_path / 'no-such-dir' / 'out.jsonl'}",
        "search --limit 0",
        "search --kind charter",
        f"import {tmp_path / 'missing.jsonl'}",
        f"import {bad_jsonl}",
        "export --format csv",
        "charter create --association Again",
        "join nothex --peer http://127.0.0.1:9",
        f"join {'cd' * 32} --peer http://127.0.0.1:9",
        "peers add ftp://example.org",
        "peers remove http://127.0.0.1:9",
        "init --name Twice",
        "serve --port 99999",
        "frobnicate",
    ]
    cases = [tuple(shlex.split(line)) for line in lines]
    before = _snapshot(assoc.a)
    for args in cases:
        assert_one_error_line(coophub(*args, home=assoc.a), args)
    assert _snapshot(assoc.a) == before
    # the --output error names the file asked for, not the temporary file written first
    out = coophub("export", "--format", "jsonl", "--output", str(tmp_path / "no-such-dir" / "out.jsonl"),
                  home=assoc.a)
    assert "out.jsonl" in out.stderr and ".tmp" not in out.stderr
    # a plain typo reads as English ("an association id")
    assert "not an association id" in coophub("join", "nothex", "--peer", "http://127.0.0.1:9", home=assoc.a).stderr
    # endorsing the same hub twice (the fixture's B endorsed C already) says so
    assert_one_error_line(coophub("endorse", assoc.ids["C"], home=assoc.b), ("endorse twice",))
    # only the offer's author can close it
    assert_one_error_line(coophub("close-offer", offer, "--outcome", "awarded", home=assoc.b), ("close B",))


def test_homes_that_cannot_be_used(tmp_path: Path) -> None:
    assert_one_error_line(coophub("status", home=tmp_path / "nowhere"), ("no home",))
    home = tmp_path / "unsafe"
    ok("init", "--name", "Unsafe", home=home)
    (home / "hub.key").chmod(0o644)
    result = coophub("status", home=home)
    assert_one_error_line(result, ("unsafe",))
    assert "chmod 600" in result.stderr
    newcomer = tmp_path / "newcomer"
    ok("init", "--name", "Newcomer", home=newcomer)
    result = coophub("publish", "profile", "--description", "hello", home=newcomer)
    assert_one_error_line(result, ("no association",))
    assert "coophub join" in result.stderr


def test_help_for_every_command() -> None:
    assert "search" in ok("--help")
    assert "--tier" in ok("publish", "offer", "--help")


# -- with `coophub serve` running on the same home ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def start_serve(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `coophub serve` on a port the kernel picks (port 0: no race with other tests for a "free" port);
    return it once serve.json names it and the API answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPHUB_")}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--home", str(home), "--port", "0"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {log.read_text()}")
        try:
            info = json.loads((home / "serve.json").read_text())
            url = str(info["url"])
            if info["pid"] == proc.pid and http("GET", f"{url}/api/v1/status", timeout=2)[0] == 200:
                return proc, url
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    stop(proc)
    raise AssertionError(f"serve did not start within 20 s: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_publish_through_a_running_hub_and_concurrently(tmp_path: Path) -> None:
    home = tmp_path / "served"
    hub_id = ok("init", "--name", "Served Care", home=home)
    ok("charter", "create", "--association", "Served", home=home)
    token = (home / "api.token").read_text().strip()
    proc, url = start_serve(home, tmp_path / "serve.log")
    try:
        assert_one_error_line(coophub("serve", "--port", str(free_port()), home=home), ("second serve",))
        other = tmp_path / "other"
        ok("init", "--name", "Other", home=other)
        taken = coophub("serve", "--port", url.rsplit(":", 1)[1], home=other)
        assert_one_error_line(taken, ("port taken",))
        assert "already in use" in taken.stderr and not (other / "serve.json").exists()
        record_id = ok("publish", "profile", "--description", "via the API", home=home)
        assert http("GET", f"{url}/api/v1/records/{record_id}")[1]["body"]["description"] == "via the API"
        # a pledge to an unknown offer is refused before signing (hub.publishing), and nothing is counted...
        assert_one_error_line(coophub("pledge", "ab" * 32, "1", home=home), ("pledge unknown",))
        # ...while a record the store refuses carries the path it came by: "api", not "local"
        status, _ = http("POST", f"{url}/api/v1/publish", {"record": "00"}, token=token)
        assert status == 422
        from hub.home import Home
        from hub.store import Store

        with Store(home / "hub.sqlite3") as store:
            assert {row["source"] for row in store.refused_summary()} == {"api"}
        assert http("GET", f"{url}/api/v1/status")[1]["hub_id"] == hub_id

        api_ids: list[str] = []
        direct_ids: list[str] = []

        def post_many() -> None:
            for i in range(40):
                status, data = http(
                    "POST",
                    f"{url}/api/v1/publish",
                    {
                        "kind": "guide",
                        "body": {
                            "title": f"API guide {i}",
                            "summary": "s",
                            "body": "b",
                            "license": "CC0-1.0",
                            "tags": [],
                            "language": "en",
                        },
                    },
                    token,
                )
                assert status == 200, data
                api_ids.append(data["id"])

        def ingest_directly() -> None:
            from protocol import build_record

            h = Home.open(home)
            with Store(h.db_path, limits=h.limits(), blobs_dir=h.blobs_dir) as store:
                assoc = store.association_id()
                assert assoc is not None
                for i in range(40):
                    record = build_record(
                        h.key,
                        assoc,
                        "guide",
                        {
                            "title": f"Direct {i}",
                            "summary": "s",
                            "body": "b",
                            "license": "CC0-1.0",
                            "tags": [],
                            "language": "en",
                        },
                        time.time_ns() // 1_000_000,
                    )
                    assert (
                        store.ingest([record.raw], now_ms=time.time_ns() // 1_000_000)[0].status == "accepted"
                    )
                    direct_ids.append(record.id_hex)

        threads = [threading.Thread(target=post_many), threading.Thread(target=ingest_directly)]
        for t in threads:
            t.start()
        cli_ids = [
            ok(
                "publish",
                "offer",
                "--title",
                f"CLI offer {i}",
                "--unit",
                "box",
                "--tier",
                "1:1",
                "--currency",
                "EUR",
                "--min-total",
                "1",
                "--deadline",
                "2099-01-01",
                home=home,
            )
            for i in range(8)
        ]
        for t in threads:
            t.join(timeout=60)
        assert len(api_ids) == 40 and len(direct_ids) == 40
        for record_id in api_ids + direct_ids + cli_ids:
            assert http("GET", f"{url}/api/v1/records/{record_id}")[0] == 200, record_id
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert not (home / "serve.json").exists()
    log = (tmp_path / "serve.log").read_text()
    assert "serving http://127.0.0.1:" in log and "Traceback" not in log


def test_home_and_json_may_come_before_the_command(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    hub_id = ok("init", "--name", "Early Options", home=home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPHUB_")}
    result = subprocess.run([sys.executable, "-m", "cli.main", "--home", str(home), "--json", "status"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hub_id"] == hub_id
    # Given at both places, the one after the command wins (it is the more specific).
    other = tmp_path / "other"
    ok("init", "--name", "Other", home=other)
    status = ok_json("--home", str(home), "status", home=other)
    assert status["name"] == "Other"


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    ok("init", "--name", "Piped", home=home)
    ok("charter", "create", "--association", "Pipes", home=home)
    guide = tmp_path / "long.md"
    guide.write_text("# Long\n\n" + "word " * 8000, encoding="utf-8")  # its export line outgrows a 64 KiB pipe
    ok("publish", "guide", str(guide), "--title", "Long", "--license", "CC0-1.0", home=home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPHUB_")}
    command = (f"{shlex.quote(sys.executable)} -m cli.main export --format jsonl --home {shlex.quote(str(home))}"
               " | head -c 1")
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "{"
    assert result.stderr == "", result.stderr


def test_serve_shuts_down_cleanly_even_when_signalled_twice(tmp_path: Path) -> None:
    """Ctrl-C pressed twice (or systemd's SIGTERM plus an impatient operator's) must not kill the hub half-way
    through its clean shutdown: it exits 0, saves its peers and removes serve.json."""
    home = tmp_path / "hub"
    ok("init", "--name", "Twice", home=home)
    ok("charter", "create", "--association", "Signals", home=home)
    ok("peers", "add", "http://127.0.0.1:9", home=home)  # a peer that never answers: something to save
    proc, _ = start_serve(home, tmp_path / "serve.log")
    try:
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        for _ in range(5):
            time.sleep(0.02)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()
    finally:
        stop(proc)
    assert not (home / "serve.json").exists()
    assert "http://127.0.0.1:9" in ok("peers", "list", home=home)
