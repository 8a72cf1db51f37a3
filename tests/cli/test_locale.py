"""The CLI speaks the locale's language (hub.i18n.locale_from_env): Welsh for ``LANG=cy_GB.UTF-8`` or
``LANGUAGE=cy``, else English; ``--json`` is the same in every locale, and help texts stay English."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WELSH = {"LANG": "cy_GB.UTF-8"}
ENGLISH = {"LANG": "en_GB.UTF-8"}


def coophub(*args: str, env: dict[str, str], home: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("COOPHUB_") and k not in ("LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    argv = [sys.executable, "-m", "cli.main", *args, *(["--home", str(home)] if home else [])]
    return subprocess.run(argv, cwd=REPO, env={**base, **env}, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hub") / "a"
    assert coophub("init", "--name", "Gofal Gwynedd", env=ENGLISH, home=path).returncode == 0
    created = coophub("charter", "create", "--association", "Cymdeithas", env=ENGLISH, home=path)
    assert created.returncode == 0, created.stderr
    return path


def test_status_in_welsh_and_english(home: Path) -> None:
    welsh = coophub("status", env=WELSH, home=home)
    assert welsh.returncode == 0, welsh.stderr
    assert "aelod:" in welsh.stdout and "cofnodion:" in welsh.stdout and "ddim yn rhedeg" in welsh.stdout
    english = coophub("status", env=ENGLISH, home=home)
    assert "member:" in english.stdout and "not running" in english.stdout


@pytest.mark.parametrize("env", [{"LANGUAGE": "cy", "LANG": "en_US.UTF-8"}, {"LC_ALL": "cy_GB.UTF-8"}])
def test_errors_are_one_line_in_welsh(home: Path, env: dict[str, str]) -> None:
    result = coophub("verify-mark", "hub_typo", "care-quality", env=env, home=home)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("coophub: error: Nid yw 'hub_typo' yn ddynodydd hyb")
    assert "copïwch ddynodydd yr hyb" in result.stderr


def test_search_and_peers_in_welsh(home: Path) -> None:
    search = coophub("search", "nothing-like-this", env=WELSH, home=home)
    assert search.returncode == 0 and search.stdout.strip() == "dim canlyniadau"
    peers = coophub("peers", "list", env=WELSH, home=home)
    assert "dim cymheiriaid; ychwanegwch un gyda `coophub peers add URL`" in peers.stdout


def test_json_is_the_same_in_every_language(home: Path) -> None:
    outputs = [coophub("status", "--json", env=env, home=home) for env in (WELSH, ENGLISH, {"LANG": "C"})]
    parsed = [json.loads(o.stdout) for o in outputs]
    for p in parsed:
        p.pop("now", None)  # the one field that changes between the runs
    assert parsed[0] == parsed[1] == parsed[2]


def test_help_stays_english(home: Path) -> None:
    # Help texts stay English in every locale for now (argparse's own words would stay English anyway, as in
    # pip and most Python tools); the commands' messages above are what changes.
    result = coophub("status", "--help", env=WELSH)
    assert result.returncode == 0 and "usage:" in result.stdout and "--home" in result.stdout
