"""Files and processes (issue 9 item 4): a home others can change is refused with the chmod that fixes it,
serve.json is trusted only after the server proves it holds this home's token, and an empty, foreign or missing
database is one clear error. Real homes, real modes, real `coophub serve` processes, a real impostor server."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import stat
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import assert_one_error_line, coophub, ok, ok_json, start_serve, stop


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_every_part_private(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir(mode=0o777)
    home.chmod(0o777)  # an empty directory made loosely beforehand becomes private
    ok("init", "--name", "Private Care", home=home)
    assert _mode(home) == 0o700 and _mode(home / "blobs") == 0o700
    for name in ("hub.key", "api.token", "config.toml", "hub.sqlite3"):
        assert _mode(home / name) == 0o600, name
    # saving the config (peers add) keeps it private
    ok("peers", "add", "http://127.0.0.1:9", home=home)
    assert _mode(home / "config.toml") == 0o600


def test_init_refuses_a_used_directory_others_can_write(tmp_path: Path) -> None:
    home = tmp_path / "in-use"
    home.mkdir()
    (home / "notes.txt").write_text("someone's files")
    home.chmod(0o777)
    result = coophub("init", "--name", "Shared", home=home)
    assert_one_error_line(result, ("init in a 0777 directory",))
    assert f"chmod 700 {home}" in result.stderr and not (home / "hub.key").exists()


UNSAFE = [  # (part, mode) — the three, and the rest of the rule
    ("api.token", 0o644),
    (".", 0o777),
    ("config.toml", 0o666),
    ("hub.key", 0o640),
    ("api.token", 0o620),
    ("hub.sqlite3", 0o666),
    ("blobs", 0o777),
    (".", 0o770),
]


def _fix_command(stderr: str) -> list[str]:
    match = re.search(r"run `(chmod [^`]+)`", stderr)
    assert match, stderr
    return shlex.split(match.group(1))


@pytest.mark.parametrize(("part", "mode"), UNSAFE, ids=[f"{p}-{m:o}" for p, m in UNSAFE])
def test_an_unsafe_part_is_refused_with_the_chmod_that_fixes_it(tmp_path: Path, part: str, mode: int) -> None:
    home = tmp_path / "h"
    ok("init", "--name", "Careful Care", home=home)
    ok("charter", "create", "--association", "Careful", home=home)
    target = home if part == "." else home / part
    target.chmod(mode)
    for args in (("status",), ("publish", "profile", "--description", "hi"), ("serve", "--port", "0")):
        result = coophub(*args, home=home, timeout=30)
        assert_one_error_line(result, args)
        assert str(target) in result.stderr and "chmod" in result.stderr, result.stderr
    assert not (home / "serve.json").exists()  # serve did not start
    fix = _fix_command(coophub("status", home=home).stderr)
    assert fix[-1] == str(target)
    subprocess.run(fix, check=True)
    assert ok_json("status", home=home)["name"] == "Careful Care"


# -- serve.json ---------------------------------------------------------------------------------------------


class _Impostor(http.server.BaseHTTPRequestHandler):
    """Records every request; answers the challenge by relaying it to ``relay_to`` (the real hub) if set."""

    seen: list[tuple[str, str, str | None]] = []
    relay_to: str | None = None

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        type(self).seen.append((self.command, self.path, self.headers.get("Authorization")))
        body = b'{"id": "' + b"ab" * 32 + b'"}'
        if self.relay_to is not None and self.path.startswith("/api/v1/serve-proof"):
            with urllib.request.urlopen(self.relay_to + self.path, timeout=5) as response:
                body = response.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _handle

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def impostor() -> Iterator[tuple[str, type[_Impostor]]]:
    handler = type("Impostor", (_Impostor,), {"seen": [], "relay_to": None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _plant(home: Path, url: str, pid: int) -> None:
    (home / "serve.json").write_text(json.dumps({"url": url, "pid": pid}))
    (home / "serve.json").chmod(0o600)


def test_a_planted_serve_json_never_gets_the_token(tmp_path: Path,
                                                    impostor: tuple[str, type[_Impostor]]) -> None:
    url, handler = impostor
    home = tmp_path / "h"
    ok("init", "--name", "Target Care", home=home)
    ok("charter", "create", "--association", "Target", home=home)
    _plant(home, url, os.getpid())  # a live pid (this test's), the impostor's URL
    record_id = ok("publish", "profile", "--description", "stored here", home=home)
    assert len(record_id) == 64 and record_id != "ab" * 32  # stored by the CLI itself, not "accepted" by it
    assert ok_json("status", home=home)["serving"] is None
    assert handler.seen, "the CLI asked the impostor for its proof"
    assert all(auth is None for _, _, auth in handler.seen), handler.seen
    assert all(path.startswith("/api/v1/serve-proof?nonce=") for _, path, _ in handler.seen), handler.seen


def test_a_relayed_proof_is_refused_and_the_real_hub_still_works(tmp_path: Path,
                                                                 impostor: tuple[str, type[_Impostor]]) -> None:
    url, handler = impostor
    home = tmp_path / "h"
    ok("init", "--name", "Relayed Care", home=home)
    ok("charter", "create", "--association", "Relayed", home=home)
    proc, real = start_serve(home, tmp_path / "serve.log")
    try:
        assert ok_json("status", home=home)["serving"] == real  # the real hub proves itself
        handler.relay_to = real  # the impostor forwards the challenge to the real hub and returns its answer
        _plant(home, url, proc.pid)
        ok("publish", "profile", "--description", "not via the impostor", home=home)
        assert ok_json("status", home=home)["serving"] is None
        assert all(auth is None for _, _, auth in handler.seen) and handler.seen
        # serve.json writable by others is not trusted even when it names the real hub
        _plant(home, real, proc.pid)
        (home / "serve.json").chmod(0o666)
        assert ok_json("status", home=home)["serving"] is None
        (home / "serve.json").chmod(0o600)
        assert ok_json("status", home=home)["serving"] == real
        assert _mode(home / "serve.json") == 0o600
    finally:
        stop(proc)


def test_the_proof_route_refuses_a_bad_nonce(tmp_path: Path) -> None:
    home = tmp_path / "h"
    ok("init", "--name", "Nonce Care", home=home)
    proc, real = start_serve(home, tmp_path / "serve.log")
    try:
        for nonce in ("", "zz" * 32, "ab" * 31, "ab" * 33):
            try:
                urllib.request.urlopen(f"{real}/api/v1/serve-proof?nonce={nonce}", timeout=5)
                raise AssertionError(nonce)
            except urllib.error.HTTPError as exc:
                assert exc.code == 400 and json.loads(exc.read())["error"] == "invalid"
    finally:
        stop(proc)


# -- the database --------------------------------------------------------------------------------------------


def _sqlite_foreign(path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("damage", ["empty", "garbage", "foreign", "missing"])
def test_an_unusable_database_is_one_clear_error(tmp_path: Path, damage: str) -> None:
    home = tmp_path / "h"
    ok("init", "--name", "Broken Care", home=home)
    db = home / "hub.sqlite3"
    db.unlink()
    expected = {"empty": "is empty (0 bytes)", "garbage": "is not an SQLite database",
                "foreign": "not a coophub one", "missing": "is missing"}[damage]
    if damage == "empty":
        db.write_bytes(b"")
    elif damage == "garbage":
        db.write_bytes(b"not a database at all" * 100)
    elif damage == "foreign":
        _sqlite_foreign(db)
    for args in (("status",), ("serve", "--port", "0"), ("search", "care")):
        result = coophub(*args, home=home, timeout=30)
        assert_one_error_line(result, (damage, *args))
        assert expected in result.stderr and "coophub restore" in result.stderr, result.stderr
    assert not (home / "serve.json").exists()
    assert (db.exists() and db.stat().st_size == 0) if damage == "empty" else True  # nothing was created over it
    if damage == "missing":
        assert not db.exists()
