"""Save screenshots of the staff web pages, for the README and docs/web.md.

    .venv/bin/python docs/screenshots/take.py

Serves a real hub holding the sample association of tests/web/site.py on 127.0.0.1 and drives Debian's
Chromium (/usr/bin/chromium) through Playwright: no browser is downloaded. Writes, for each page, ``NAME.png``
at desktop width (1280 px) and ``NAME-phone.png`` at phone width (390 px), both cropped to the top of the page
and saved as 8-bit palette PNGs when Pillow or ImageMagick is installed (smaller files for the repository).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.web.site import CHROMIUM, CHROMIUM_ARGS, build, serving  # noqa: E402

OUT = Path(__file__).resolve().parent
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Crop heights (CSS px): the first screens of each page, enough to show what it is for.
DESKTOP_CLIP = 1100
PHONE_CLIP = 1500


def pages(site: object) -> dict[str, str]:
    s = site.sample  # type: ignore[attr-defined]
    f0, f2 = s.a.founders[0], s.a.founders[2]
    return {
        "directory": "/?q=care",
        "hub": f"/hubs/{f0.hub_id}",
        "guide": f"/guides/{s['guide_access'].id_hex}",
        "offer": f"/offers/{s['offer'].id_hex}",
        "marks": f"/marks?hub={f2.hub_id}&scheme=care-quality",
        "network": "/network",
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


def take(out: Path = OUT) -> list[Path]:
    saved = []
    with tempfile.TemporaryDirectory() as tmp:
        site = build(Path(tmp))
        try:
            with serving(site.app) as base, sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                for suffix, viewport, clip in (("", DESKTOP, DESKTOP_CLIP), ("-phone", PHONE, PHONE_CLIP)):
                    page = browser.new_page(viewport=viewport, device_scale_factor=1)
                    for name, path in pages(site).items():
                        page.goto(base + path)
                        height = min(clip, page.evaluate("document.documentElement.scrollHeight"))
                        target = out / f"{name}{suffix}.png"
                        page.screenshot(
                            path=str(target),
                            full_page=True,
                            clip={"x": 0, "y": 0, "width": viewport["width"], "height": height},
                        )
                        shrink(target)
                        saved.append(target)
                    page.close()
                browser.close()
        finally:
            site.store.close()
    return saved


if __name__ == "__main__":
    for path in take():
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB")
