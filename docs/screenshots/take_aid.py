"""Save screenshots of the mutual-aid pages (time credits, solidarity funds) for docs/web.md.

    .venv/bin/python docs/screenshots/take_aid.py

Like take.py (same browser, widths, crop and palette PNGs), over the sample association plus the mutual-aid
records of tests/web/aid_site.py.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from playwright.sync_api import sync_playwright  # noqa: E402
from take import DESKTOP, DESKTOP_CLIP, OUT, PHONE, PHONE_CLIP, shrink  # noqa: E402

from tests.web.aid_site import build_aid  # noqa: E402
from tests.web.site import CHROMIUM, CHROMIUM_ARGS, serving  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        site = build_aid(Path(tmp), xss=False)
        pages = {"credit": "/credit", "credit-account": f"/credit/{site.a.founders[0].hub_id}",
                 "fund": f"/funds/{site.extra['fund'].id_hex}"}  # type: ignore[attr-defined]
        try:
            with serving(site.app) as base, sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                for suffix, viewport, clip in (("", DESKTOP, DESKTOP_CLIP), ("-phone", PHONE, PHONE_CLIP)):
                    page = browser.new_page(viewport=viewport, device_scale_factor=1)
                    for name, path in pages.items():
                        page.goto(base + path)
                        height = min(clip, page.evaluate("document.documentElement.scrollHeight"))
                        target = OUT / f"{name}{suffix}.png"
                        page.screenshot(path=str(target), full_page=True,
                                        clip={"x": 0, "y": 0, "width": viewport["width"], "height": height})
                        shrink(target)
                        print(f"wrote {target.relative_to(ROOT)}")
                    page.close()
                browser.close()
        finally:
            site.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
