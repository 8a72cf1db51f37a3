"""`coophub peers list` and `coophub status` show each peer session's state, score, last contact and lag
(issue 8 item 5, docs/cli.md "Peer sessions") — with two real `coophub serve` processes on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.home import Home
from tests.cli.test_cli import coophub, ok, ok_json, start_serve, stop

#: A bounded poll: a session opens within a sync interval (300 ms here); the margin is for a loaded machine.
DEADLINE_S = 30.0


def wait_for(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail after DEADLINE_S with ``what``."""
    deadline = time.monotonic() + DEADLINE_S
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"after {DEADLINE_S:.0f} s: {what}")


def fast(home: Path) -> None:
    """Short anti-entropy and backoff intervals, in config.toml's [limits]."""
    h = Home.open(home)
    h.config.limits = {"sync_interval_ms": 300, "backoff_base_ms": 100, "backoff_max_ms": 1000}
    h.save_config()


def row(home: Path, match: Callable[[dict[str, Any]], bool], *args: str) -> dict[str, Any] | None:
    peers = ok_json(*(args or ("peers", "list")), home=home)
    rows = peers["peer_sessions"] if "peer_sessions" in peers else peers["peers"]
    return next((r for r in rows if match(r)), None)


def test_peers_list_and_status_show_live_sessions_then_the_saved_table(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    ok("init", "--name", "Alpha Care", home=a)
    b_id = ok("init", "--name", "Beta Care", home=b)
    association = ok("charter", "create", "--association", "Sessions", "--founder", b_id, home=a)
    fast(a)
    fast(b)
    proc_a, url_a = start_serve(a, tmp_path / "a.log")
    proc_b = None
    try:
        ok("join", association, "--peer", url_a, home=b)
        ok("publish", "profile", "--description", "Care at home.", home=b)  # a name, and no URL
        before = time.time_ns() // 1_000_000
        proc_b, _ = start_serve(b, tmp_path / "b.log")

        # A never had B's URL (B's config has none, and B published no profile): B's session is A's only way
        # to reach it, listed by hub id.
        def b_on_a() -> dict[str, Any] | None:
            found = row(a, lambda r: r.get("hub") == b_id)
            return found if found and found["session_state"] == "open" and found["name"] == "Beta Care" else None

        seen = wait_for(b_on_a, "A lists B's inbound session as open")
        assert seen["direction"] == "inbound" and seen["inbound_only"] is True, seen
        assert seen["url"] == f"session:{b_id}" and seen["role"] == "member", seen
        assert seen["score"] == 100 and seen["state"] in ("new", "healthy"), seen
        assert seen["last_contact_ms"] >= before and seen["last_contact"].endswith("Z"), seen
        assert isinstance(seen["queued"], int) and isinstance(seen["pending"], int), seen

        on_b = row(b, lambda r: r["url"] == url_a)
        assert on_b is not None and on_b["session_state"] == "open" and on_b["direction"] == "outbound", on_b
        assert on_b["configured"] is True and on_b["hub"] and on_b["last_contact_ms"] >= before, on_b

        status = ok_json("status", home=a)
        assert status["sessions_known"] is True and status["peers"] == 1, status
        in_status = next(r for r in status["peer_sessions"] if r.get("hub") == b_id)
        assert in_status["session_state"] == "open" and in_status["score"] == 100, in_status

        text = ok("peers", "list", home=a)
        assert f"Beta Care ({b_id})" in text and "open inbound" in text and "sessions unknown" not in text, text
        assert "open inbound" in ok("status", home=a)
        assert "open outbound" in ok("peers", "list", home=b)

        # B stops: A's row leaves "open" (closed, or in backoff once A tries to push to it and cannot).
        stop(proc_b)
        proc_b = None
        gone = wait_for(lambda: (r := row(a, lambda r: r.get("hub") == b_id)) and r["session_state"] != "open"
                        and r, "A sees B's session end")
        assert gone["session_state"] in ("closed", "backoff"), gone
        assert gone["direction"] == "", gone
    finally:
        if proc_b is not None:
            stop(proc_b)
        stop(proc_a)

    # No hub running: the saved table, and it says so (no traceback, exit 0).
    listed = coophub("peers", "list", home=a)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert "sessions unknown" in listed.stdout and b_id in listed.stdout, listed.stdout
    assert f"session:{b_id}" not in listed.stdout  # an inbound-only peer is named by its hub id
    saved = json.loads(ok("--json", "peers", "list", home=a))
    assert saved["sessions_known"] is False
    assert [r["session_state"] for r in saved["peers"]] == ["unknown"], saved
    assert saved["peers"][0]["last_contact_ms"] >= before and saved["peers"][0]["score"] == 100
    status = ok_json("status", home=a)
    assert status["sessions_known"] is False and status["peer_sessions"][0]["session_state"] == "unknown"
