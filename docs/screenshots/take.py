"""Save screenshots of the staff web pages from the demo association, for the README and docs/web.md.

    .venv/bin/python docs/screenshots/take.py

Runs ``coophub demo`` (five real hubs on 127.0.0.1, built through the CLI and gossip; see cli/demo.py), waits
until every hub holds every record, and drives Debian's Chromium (/usr/bin/chromium) through Playwright against
Gofal Gwynedd's hub: no browser is downloaded. Writes, for each page, ``NAME.png`` at desktop width (1280 px)
and ``NAME-phone.png`` at phone width (390 px), both cropped to the top of the page and saved as 8-bit palette
PNGs when Pillow or ImageMagick is installed (smaller files for the repository). ``*-cy`` pages are in Welsh.
The demo is stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.web.site import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

OUT = Path(__file__).resolve().parent
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Crop heights (CSS px): the first screens of each page, enough to show what it is for.
DESKTOP_CLIP = 1100
PHONE_CLIP = 1500
#: The demo builds its association in about a minute; give it five.
DEMO_START_S = 300


def pages(info: dict[str, Any]) -> dict[str, str]:
    hubs, ids = info["hubs"], info["ids"]
    gofal, powys = hubs[0]["hub_id"], hubs[2]["hub_id"]
    return {
        "directory": "/?q=care",
        "hub": f"/hubs/{gofal}",
        "guide": f"/guides/{ids['guide:meetings']}",
        "offer": f"/offers/{ids['offer:gloves']}",
        "marks": f"/marks?hub={powys}&scheme=care-quality",
        "network": "/network",
        "hub-cy": f"/hubs/{gofal}?lang=cy",
        "guide-cy": f"/guides/{ids['guide:lone-working-cy']}?lang=cy",
    }


def shrink(path: Path) -> None:
    """Re-save as an 8-bit palette PNG (about a third of the size; the pages use few colours)."""
    try:
        from PIL import Image
    except ImportError:
        convert = shutil.which("convert")  # ImageMagick, if installed
        if convert:
            subprocess.run([convert, str(path), "-dither", "None", "-colors", "96", f"PNG8:{path}"], check=True)
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=96, dither=Image.Dither.NONE).save(path, optimize=True)


def start_demo(folder: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``coophub demo --json``: its one JSON line says the hubs are ready, with their URLs and record ids."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "demo", "--json", "--dir", str(folder), "--base-port", "0",
         "--minutes", "15"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert demo.stdout is not None
    line = demo.stdout.readline()  # blocks until the demo is ready (or has died)
    if not line:
        raise SystemExit(f"coophub demo stopped before it was ready (exit {demo.wait(DEMO_START_S)})")
    return demo, json.loads(line)


def take(out: Path = OUT) -> list[Path]:
    saved = []
    with tempfile.TemporaryDirectory() as tmp:
        demo, info = start_demo(Path(tmp) / "demo")
        try:
            base = info["hubs"][0]["url"]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                for suffix, viewport, clip in (("", DESKTOP, DESKTOP_CLIP), ("-phone", PHONE, PHONE_CLIP)):
                    page = browser.new_page(viewport=viewport, device_scale_factor=1, locale="en-GB")
                    for name, path in pages(info).items():
                        page.goto(base + path)
                        height = min(clip, page.evaluate("document.documentElement.scrollHeight"))
                        target = out / f"{name}{suffix}.png"
                        page.screenshot(path=str(target), full_page=True,
                                        clip={"x": 0, "y": 0, "width": viewport["width"], "height": height})
                        shrink(target)
                        saved.append(target)
                        if name.endswith("-cy"):
                            page.goto(base + "/?lang=en")  # the switch's cookie: back to English
                    page.close()
                browser.close()
        finally:
            demo.send_signal(signal.SIGTERM)  # the demo stops its hubs on SIGTERM as on Ctrl-C
            demo.wait(60)
    return saved


if __name__ == "__main__":
    for path in take():
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB")
