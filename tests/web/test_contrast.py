"""Colour contrast of hub/static/style.css (WCAG 2.2 SC 1.4.3 text 4.5:1, SC 1.4.11 non-text 3:1).

Colours live in custom properties in :root; the pairs below are every text-on-background combination the style
sheet uses, and every rule that sets both ``color`` and ``background`` is checked as well, so a new pairing
cannot slip in unchecked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parents[2] / "hub" / "static" / "style.css").read_text(encoding="utf-8")
ROOT = re.search(r":root\s*{([^}]*)}", CSS)
assert ROOT is not None
VARS = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", ROOT.group(1)))

TEXT = 4.5
NON_TEXT = 3.0
#: (foreground, background, minimum): text first, then borders and focus indicators.
PAIRS = [
    *[
        (fg, bg, TEXT)
        for fg in ("text", "muted", "link", "link-visited", "error", "none-text")
        for bg in ("bg", "surface")
    ],
    ("header-text", "header-bg", TEXT),
    ("header-link", "header-bg", TEXT),
    ("button-text", "button-bg", TEXT),
    ("focus-text", "focus", TEXT),
    ("ok-text", "ok-bg", TEXT),
    ("warn-text", "warn-bg", TEXT),
    ("bad-text", "bad-bg", TEXT),
    ("none-text", "none-bg", TEXT),
    ("link", "bg", TEXT),
    # Field borders, card borders and focus rings against what surrounds them.
    ("text", "surface", NON_TEXT),
    ("border", "bg", NON_TEXT),
    ("border", "surface", NON_TEXT),
    ("focus", "header-bg", NON_TEXT),
    ("focus-text", "focus", NON_TEXT),
    ("error", "bg", NON_TEXT),
    ("ok-text", "bg", NON_TEXT),
    ("warn-text", "bg", NON_TEXT),
    ("bad-text", "bg", NON_TEXT),
]


def luminance(hex_colour: str) -> float:
    """Relative luminance (WCAG 2.2 definition, sRGB)."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_known_answers() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near miss


@pytest.mark.parametrize(("fg", "bg", "minimum"), PAIRS, ids=[f"{f}-on-{b}" for f, b, _ in PAIRS])
def test_pairs_meet_wcag_aa(fg: str, bg: str, minimum: float) -> None:
    ratio = contrast(VARS[fg], VARS[bg])
    assert ratio >= minimum, f"--{fg} {VARS[fg]} on --{bg} {VARS[bg]} is {ratio:.2f}:1, needs {minimum}:1"


def test_every_rule_setting_both_colours_is_a_checked_pair() -> None:
    checked = {(f, b) for f, b, m in PAIRS if m == TEXT}
    for block in re.findall(r"{([^{}]*)}", CSS):
        fg = re.search(r"(?<![-\w])color:\s*var\(--([\w-]+)\)", block)
        bg = re.search(r"background(?:-color)?:\s*var\(--([\w-]+)\)", block)
        if fg and bg:
            assert (fg.group(1), bg.group(1)) in checked, block.strip()


def test_the_style_sheet_uses_no_literal_colours_outside_root() -> None:
    body = CSS.replace(ROOT.group(0), "")
    assert not re.findall(r"#[0-9a-fA-F]{3,6}\b", body)
