"""`coophub check`, `check --repair`, `restore` and `init --key` end to end: real homes, real subprocesses, a
real `coophub serve` to catch up from (docs/operations.md "Checking and repairing", "Restoring a hub")."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path

from tests.cli.test_cli import assert_one_error_line, coophub, ok, ok_json, start_serve, stop


def _hub(tmp_path: Path, name: str = "a") -> Path:
    home = tmp_path / name
    ok("init", "--name", "Gofal Gwynedd", "--region", "Gwynedd", home=home)
    ok("charter", "create", "--association", "North Wales Care", home=home)
    ok("publish", "profile", "--description", "Home care in Gwynedd", "--region", "Gwynedd", "--service",
       "Home care:care", home=home)
    guide = tmp_path / f"{name}-guide.md"
    guide.write_text("# Lone working\n\nCheck in before and after each visit.\n")
    ok("publish", "guide", "--title", "Safe lone working", "--summary", "Staying safe", "--license",
       "CC-BY-4.0", str(guide), home=home)
    return home


def test_check_passes_then_finds_damage_and_repair_fixes_it(tmp_path: Path) -> None:
    home = _hub(tmp_path)
    out = coophub("check", "--progress", home=home)
    assert out.returncode == 0, out.stderr
    for row in ("integrity", "records", "eligibility", "search index", "directory", "members", "directory_fts"):
        assert row in out.stdout, row
    assert "PROBLEM" not in out.stdout
    report = ok_json("check", home=home)
    assert report["ok"] and report["records"] >= 3 and all(t["ok"] for t in report["tables"])

    conn = sqlite3.connect(home / "hub.sqlite3")
    conn.execute("ATTACH DATABASE ? AS search", (str(home / "hub-search.sqlite3"),))  # the full-text index's file
    conn.execute("UPDATE directory SET title = 'Tampered'")
    conn.execute("DELETE FROM search.directory_fts_data WHERE id > 10")
    conn.commit()
    conn.close()
    damaged = coophub("check", home=home)
    assert_one_error_line(damaged, ("check damaged",))
    assert "PROBLEM" in damaged.stdout and "coophub check --repair" in damaged.stderr

    proc, _url = start_serve(home, tmp_path / "serve.log")
    try:
        running = coophub("check", "--repair", home=home)
        assert_one_error_line(running, ("repair while serving",))
        assert "stop `coophub serve` first" in running.stderr
    finally:
        stop(proc)
    repaired = coophub("check", "--repair", home=home)
    assert repaired.returncode == 0, repaired.stderr
    assert "0 invalid records removed" in repaired.stdout
    assert ok_json("check", home=home)["ok"]
    assert "Safe lone working" in ok("search", "lone", home=home)


def test_restore_from_a_backup_brings_the_hub_back_with_its_key(tmp_path: Path) -> None:
    old = _hub(tmp_path)
    before = ok_json("status", home=old)
    backup = tmp_path / "backup.jsonl"
    ok("export", "--format", "jsonl", "--output", str(backup), home=old)
    key = tmp_path / "kept-hub.key"
    shutil.copy(old / "hub.key", key)
    key.chmod(0o600)
    shutil.rmtree(old)  # the machine is lost; the key and the backup were kept elsewhere

    new = tmp_path / "restored"
    result = ok_json("restore", "--key", str(key), "--backup", str(backup), home=new)
    assert result["hub_id"] == before["hub_id"] and result["name"] == "Gofal Gwynedd"
    assert result["received"] == before["records"] and result["own_records"] == before["records"]
    status = ok_json("status", home=new)
    assert status["association_id"] == before["association_id"] and status["records"] == before["records"]
    assert stat.S_IMODE((new / "hub.key").stat().st_mode) == 0o600
    assert (new / "api.token").read_text() != ""  # a fresh token
    assert ok_json("check", home=new)["ok"]
    # it publishes again as itself
    ok("publish", "profile", "--description", "Back after the fire", home=new)
    assert ok_json("status", home=new)["records"] == before["records"] + 1


def test_restore_from_a_peer_catches_up_through_federation(tmp_path: Path) -> None:
    old = _hub(tmp_path)
    before = ok_json("status", home=old)
    backup = tmp_path / "backup.jsonl"
    ok("export", "--format", "jsonl", "--output", str(backup), home=old)
    peer = tmp_path / "peer"  # another hub of the association, holding the old hub's records
    ok("init", "--name", "Cardiff Carers", home=peer)
    ok("join", before["association_id"], "--peer", "http://127.0.0.1:9", "--no-sync", home=peer)
    ok("import", str(backup), home=peer)
    key = tmp_path / "kept-hub.key"
    shutil.copy(old / "hub.key", key)
    key.chmod(0o644)  # kept loosely: restore warns, and its own copy is 0600
    proc, url = start_serve(peer, tmp_path / "peer.log")
    try:
        new = tmp_path / "restored"
        result = coophub("restore", "--key", str(key), "--peer", url, "--json", home=new)
        assert result.returncode == 0, result.stderr
        assert "readable by other users" in result.stderr
    finally:
        stop(proc)
    status = ok_json("status", home=new)
    assert status["hub_id"] == before["hub_id"] and status["records"] == before["records"]
    assert status["association_id"] == before["association_id"] and status["name"] == "Gofal Gwynedd"
    assert stat.S_IMODE((new / "hub.key").stat().st_mode) == 0o600


def test_init_with_a_key_and_restore_refusals(tmp_path: Path) -> None:
    old = _hub(tmp_path)
    hub_id = ok_json("status", home=old)["hub_id"]
    again = tmp_path / "again"
    assert ok("init", "--name", "Gofal Gwynedd", "--key", str(old / "hub.key"), home=again) == hub_id
    bad_key = tmp_path / "short.key"
    bad_key.write_bytes(b"x" * 31)
    for args in (
        ("init", "--name", "X", "--key", str(bad_key)),
        ("restore", "--key", str(bad_key), "--backup", str(tmp_path / "none.jsonl")),
        ("restore", "--key", str(old / "hub.key")),
        ("restore", "--key", str(old / "hub.key"), "--backup", str(tmp_path / "none.jsonl")),
    ):
        target = tmp_path / "target"
        assert_one_error_line(coophub(*args, home=target), args)
        assert not (target / "hub.key").exists(), args
    # a home that already holds a hub is never overwritten
    assert_one_error_line(coophub("restore", "--key", str(old / "hub.key"), "--backup", str(tmp_path / "x"),
                                  home=again), ("restore over a hub",))


def test_a_damaged_file_is_one_clear_line_and_check_says_restore(tmp_path: Path) -> None:
    home = _hub(tmp_path)
    conn = sqlite3.connect(home / "hub.sqlite3")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'records'").fetchone()[0]
    conn.close()
    with open(home / "hub.sqlite3", "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)  # the records table's root page
    exported = coophub("export", "--format", "jsonl", home=home)
    assert_one_error_line(exported, ("export damaged",))
    assert "the database is damaged" in exported.stderr and "coophub check" in exported.stderr
    checked = coophub("check", home=home)
    assert_one_error_line(checked, ("check damaged file",))
    assert "STOPPED" in checked.stdout and "coophub restore" in checked.stderr
