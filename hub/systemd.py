"""The systemd unit shipped with coophub (``hub/coophub.service``), filled in for one hub.

``coophub systemd-unit`` prints it with the paths of this installation: the ``coophub`` executable next to the
running Python (so a virtual environment's is used) and the hub's home. The unit is hardened the way systemd's
own documentation suggests for a network daemon that writes only its state directory: no new privileges, a
read-only view of the system, private /tmp, writes allowed only to the home, and an open-file limit above the
hub's connection cap so that a flood of connections is refused by the hub, not by the kernel.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

__all__ = ["TEMPLATE", "unit_text"]

TEMPLATE = "coophub.service"


def _executable() -> str:
    beside = Path(sys.executable).with_name("coophub")
    if beside.exists():
        return str(beside)
    return shutil.which("coophub") or str(beside)


def unit_text(home: Path, *, user: str) -> str:
    """The unit for the hub at ``home``, run by ``user``."""
    template = resources.files("hub").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return (template.replace("@USER@", user)
            .replace("@HOME@", str(home.resolve()))
            .replace("@COOPHUB@", _executable()))
