"""config.toml (hub/home.py): edits by `peers add`, `join` and `charter create` keep what the operator wrote."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hub.home import Home, HomeError


def test_saving_keeps_comments_unknown_keys_and_order(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "h", "Alpha Care")
    text = home.config_path.read_text(encoding="utf-8")
    text = text.replace("port = 8470", "# the router forwards 8470 to this box\nport = 8470  # do not change")
    text += "\n[site]\n# a section this version does not know\nbanner = \"Croeso\"\n"
    home.config_path.write_text(text, encoding="utf-8")
    home = Home.open(home.path)
    home.config.peers.append("https://hub.beta.example")
    home.config.limits["push_fanout"] = 6
    home.save_config()
    saved = home.config_path.read_text(encoding="utf-8")
    assert "# the router forwards 8470 to this box" in saved and "# do not change" in saved
    assert "# a section this version does not know" in saved
    data = tomllib.loads(saved)
    assert data["peers"] == ["https://hub.beta.example"] and data["limits"] == {"push_fanout": 6}
    assert data["site"] == {"banner": "Croeso"}
    assert saved.index("name =") < saved.index("port =") < saved.index("peers =")
    # a limit removed from the config is removed from the file
    home.config.limits.clear()
    home.save_config()
    assert tomllib.loads(home.config_path.read_text(encoding="utf-8"))["limits"] == {}


def test_a_file_that_is_not_toml_is_written_afresh(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "h", "Alpha Care")
    home.config_path.write_text("name = [broken\n", encoding="utf-8")
    home.save_config()
    assert tomllib.loads(home.config_path.read_text(encoding="utf-8"))["name"] == "Alpha Care"


def test_an_unknown_time_zone_is_one_clear_error(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "h", "Alpha Care")
    assert home.config.timezone == "Europe/London"
    home.config_path.write_text(home.config_path.read_text(encoding="utf-8").replace(
        '"Europe/London"', '"Europe/Caerdydd"'), encoding="utf-8")
    with pytest.raises(HomeError, match="Europe/Caerdydd"):
        Home.open(home.path)
