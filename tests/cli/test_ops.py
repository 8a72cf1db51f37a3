"""What an operator relies on: `--version`, logs with time and level (plain or JSON), the access log, and the
systemd unit that `coophub systemd-unit` prints (issue 12, docs/operations.md)."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
from pathlib import Path

from tests.cli.test_cli import coophub, http, ok, start_serve, stop


def test_version_is_the_installed_package_version() -> None:
    from importlib.metadata import version

    assert ok("--version") == f"coophub {version('coophub')}"


def test_serve_logs_json_lines_with_time_level_and_logger_and_an_access_log(tmp_path: Path) -> None:
    home = tmp_path / "h"
    ok("init", "--name", "Logged Care", home=home)
    config = home / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('log_format = "plain"', 'log_format = "json"')
                      .replace("access_log = false", "access_log = true"), encoding="utf-8")
    log = tmp_path / "serve.log"
    proc, url = start_serve(home, log)
    try:
        assert http("GET", f"{url}/api/v1/status")[0] == 200
    finally:
        stop(proc)
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    assert all(line["ts"].endswith("Z") and line["level"] in ("debug", "info", "warning", "error") for line in lines)
    assert any(line["logger"] == "coophub.serve" and "serving http://127.0.0.1:" in line["msg"] for line in lines)
    access = [line for line in lines if line["logger"] == "coophub.access"]
    assert any('"GET /api/v1/status HTTP/1.1" 200' in line["msg"] for line in access), access


def test_plain_logs_have_a_timestamp_and_level(tmp_path: Path) -> None:
    import io
    import logging

    from hub.logs import configure

    stream = io.StringIO()
    configure("info", "plain", stream)
    try:
        logging.getLogger("coophub.test").warning("disk %d%% full", 91)
    finally:
        configure("warning", "plain")  # leave the root logger as pytest expects: nothing to this stream
    line = stream.getvalue().strip()
    stamp, level, rest = line.split(" ", 2)
    assert stamp.endswith("Z") and len(stamp) == len("2026-12-02T14:05:09.123Z")
    assert level == "WARNING" and rest == "coophub.test: disk 91% full"


def test_the_systemd_unit_names_this_install_and_home_and_verifies(tmp_path: Path) -> None:
    home = tmp_path / "h"
    ok("init", "--name", "Unit Care", home=home)
    text = ok("systemd-unit", "--user", "coophub", home=home)
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(text)
    service = unit["Service"]
    executable, command, *rest = service["ExecStart"].split()
    assert Path(executable).exists() and command == "serve" and rest == ["--home", str(home.resolve())]
    assert service["User"] == "coophub" and service["ReadWritePaths"] == str(home.resolve())
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # systemd's own checker, where the machine has it (Debian does)
        path = tmp_path / "coophub.service"
        path.write_text(text + "\n", encoding="utf-8")
        result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr


def test_a_bad_log_setting_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "h"
    ok("init", "--name", "Bad Logs", home=home)
    config = home / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('log_format = "plain"', 'log_format = "xml"'),
                      encoding="utf-8")
    result = coophub("status", home=home)
    assert result.returncode == 1 and "log_format" in result.stderr and "Traceback" not in result.stderr


def test_peers_remove_keeps_comments_and_forgets_the_saved_peer(tmp_path: Path) -> None:
    from hub.home import Home
    from hub.store import Store
    from tests.cli.test_cli import assert_one_error_line

    home = tmp_path / "h"
    ok("init", "--name", "Pruned Care", home=home)
    config = home / "config.toml"
    config.write_text("# the operator's note\n" + config.read_text(encoding="utf-8"), encoding="utf-8")
    ok("peers", "add", "http://127.0.0.1:9001", home=home)
    ok("peers", "add", "http://127.0.0.1:9002", home=home)
    h = Home.open(home)
    store = Store(h.db_path, limits=h.limits(), blobs_dir=h.blobs_dir)
    try:
        store.upsert_peer("http://127.0.0.1:9001", {"score": 40, "state": "failing"})
        store.upsert_peer("http://127.0.0.1:9003", {"score": 100, "state": "healthy", "source": "profile"})
    finally:
        store.close()
    assert ok("peers", "remove", "http://127.0.0.1:9001/", home=home) == "removed http://127.0.0.1:9001"
    ok("peers", "remove", "http://127.0.0.1:9003", home=home)  # a discovered peer: forgotten, config untouched
    text = config.read_text(encoding="utf-8")
    assert text.startswith("# the operator's note\n")
    assert "9001" not in text and "http://127.0.0.1:9002" in text
    listed = json.loads(ok("--json", "peers", "list", home=home))["peers"]
    assert [p["url"] for p in listed] == ["http://127.0.0.1:9002"]
    # removing again is an error that says how to see the peers, and changes nothing
    assert_one_error_line(coophub("peers", "remove", "http://127.0.0.1:9001", home=home), ("remove twice",))
    assert config.read_text(encoding="utf-8") == text
