"""Pictures on the staff pages, as server-rendered SVG: geometry here (pure functions), drawing in
``templates/charts.html`` (Jinja macros, so every label from a record is escaped like any other text).

- :func:`bar`: a horizontal bar against marks (an offer's pledges against its price tiers and minimum; a
  proposal's votes against its quorum). The governance pages reuse it through the ``bar`` macro.
- :func:`region_map`: Wales' 22 principal areas (``static/wales.svg``, simplified from open data, see
  docs/dev/wales_map.py), the areas a co-op serves hatched.
- :func:`peer_graph`: this hub and its peers, each link drawn in the line style of the peer's state.

Every picture is readable without colour (patterns, line styles, symbols and words repeat what colour shows,
WCAG 1.4.1) and carries a text equivalent (``role="img"`` with a name and a description; the page's table or
list says the same in full). No JavaScript, nothing fetched from elsewhere: the pages' CSP forbids it anyway.
"""

from __future__ import annotations

import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["BAR_WIDTH", "Bar", "Mark", "bar", "match_regions", "peer_graph", "pledge_bar", "region_map"]

HERE = Path(__file__).resolve().parent
#: The bar's drawing width in SVG units (the picture scales to its box; 400 keeps labels legible on a phone).
BAR_WIDTH = 400
BAR_TRACK_Y = 34
BAR_TRACK_HEIGHT = 26
#: Room a mark's label needs before the next one on the same row (SVG units; 16-unit text).
LABEL_GAP = 104
#: Peers drawn in the graph at most; the table below it lists them all.
MAX_GRAPH_PEERS = 12


@dataclass(frozen=True)
class Mark:
    """A line across the bar at ``value``: ``style`` is ``solid`` (a price tier), ``dashed`` (a minimum or a
    quorum); ``above`` puts its label over the bar, else under it."""

    value: int
    label: str
    style: str = "solid"
    above: bool = False
    reached: bool = False


@dataclass
class Bar:
    value: int
    maximum: int
    fill: float
    height: int
    marks: list[dict[str, Any]] = field(default_factory=list)
    track_y: int = BAR_TRACK_Y
    track_height: int = BAR_TRACK_HEIGHT
    width: int = BAR_WIDTH


def _x(value: int, maximum: int) -> float:
    return round(min(value, maximum) * BAR_WIDTH / maximum, 1) if maximum > 0 else 0.0


def bar(value: int, marks: list[Mark], maximum: int | None = None) -> Bar:
    """The bar's geometry: the filled length for ``value``, each mark's x, and rows for labels that would
    overlap (a second row under the first). The scale runs to ``maximum``, else a little past the largest of
    the value and the marks, so the last mark never sits on the edge."""
    top = max([value, *(m.value for m in marks), 1])
    scale = maximum if maximum is not None and maximum > 0 else math.ceil(top * 1.15)
    placed: list[dict[str, Any]] = []
    last_x: dict[tuple[bool, int], float] = {}
    for m in sorted(marks, key=lambda m: m.value):
        x = _x(m.value, scale)
        row = 0
        while (m.above, row) in last_x and x - last_x[(m.above, row)] < LABEL_GAP:
            row += 1
        last_x[(m.above, row)] = x
        anchor = "end" if x > BAR_WIDTH - LABEL_GAP / 2 else "start" if x < LABEL_GAP / 2 else "middle"
        y = BAR_TRACK_Y - 8 - 18 * row if m.above else BAR_TRACK_Y + BAR_TRACK_HEIGHT + 20 + 18 * row
        placed.append({"x": x, "label": m.label, "style": m.style, "above": m.above, "row": row,
                       "reached": m.reached, "label_y": y, "anchor": anchor})
    rows_below = max((p["row"] + 1 for p in placed if not p["above"]), default=0)
    rows_above = max((p["row"] + 1 for p in placed if p["above"]), default=0)
    shift = 18 * max(0, rows_above - 1)
    for p in placed:
        p["label_y"] += shift
    return Bar(value=value, maximum=scale, fill=_x(value, scale),
               height=BAR_TRACK_Y + shift + BAR_TRACK_HEIGHT + 8 + 18 * rows_below,
               marks=placed, track_y=BAR_TRACK_Y + shift)


def pledge_bar(total: int, min_total: int, tiers: list[dict[str, Any]], tier_label: Any,
               minimum_label: str) -> Bar:
    """An offer's tally as a bar: ``tiers`` are offer_view's (min, price, reached); ``tier_label(tier)`` words a
    tier's mark (its quantity and price, in the page's language)."""
    marks = [Mark(int(t["min"]), str(tier_label(t)), "solid", False, bool(t["reached"])) for t in tiers]
    marks.append(Mark(min_total, minimum_label, "dashed", True, total >= min_total))
    return bar(total, marks)


# -- the map of Wales --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Area:
    code: str
    en: str
    cy: str
    d: str


@lru_cache(maxsize=1)
def wales() -> tuple[tuple[Area, ...], str]:
    """The 22 principal areas of static/wales.svg (our own file, parsed once) and its viewBox."""
    root = ET.parse(HERE / "static" / "wales.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    areas = tuple(Area(p.get("id", ""), p.get("data-en", ""), p.get("data-cy", ""), p.get("d", ""))
                  for p in root.iter(f"{ns}path"))
    return areas, root.get("viewBox", "0 0 300 335")


#: Groups of areas a co-op may name instead of the areas themselves: Wales, and the Welsh Government's four
#: regional economic areas (North, Mid, South West, South East — the Cardiff Capital Region).
GROUPS = {
    "wales": "*", "cymru": "*", "all wales": "*", "cymru gyfan": "*",
    "north wales": "W06000001 W06000002 W06000003 W06000004 W06000005 W06000006",
    "gogledd cymru": "W06000001 W06000002 W06000003 W06000004 W06000005 W06000006",
    "mid wales": "W06000008 W06000023", "canolbarth cymru": "W06000008 W06000023",
    "south west wales": "W06000009 W06000010 W06000011 W06000012",
    "de orllewin cymru": "W06000009 W06000010 W06000011 W06000012",
    "south east wales": "W06000013 W06000014 W06000015 W06000016 W06000018 W06000019 W06000020 W06000021 "
                        "W06000022 W06000024",
    "de ddwyrain cymru": "W06000013 W06000014 W06000015 W06000016 W06000018 W06000019 W06000020 W06000021 "
                         "W06000022 W06000024",
}
GROUPS["cardiff capital region"] = GROUPS["south east wales"]
#: Other names people write for an area.
ALIASES = {
    "anglesey": "W06000001", "ynys mon": "W06000001", "rhondda cynon taff": "W06000016", "rct": "W06000016",
    "rhondda": "W06000016", "the vale of glamorgan": "W06000014", "vale of glamorgan": "W06000014",
    "merthyr": "W06000024", "neath": "W06000012", "port talbot": "W06000012", "pembs": "W06000009",
    "carmarthen": "W06000010", "caerfyrddin": "W06000010", "denbigh": "W06000004", "flint": "W06000005",
}
_NOISE = re.compile(r"\b(county borough|city and county of|city of|county of|council|cyngor)\b")


def _fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return " ".join(re.sub(r"[^a-z ]+", " ", plain).split())


@lru_cache(maxsize=1)
def _index() -> dict[str, frozenset[str]]:
    areas, _ = wales()
    index: dict[str, frozenset[str]] = {}
    everything = frozenset(a.code for a in areas)
    for a in areas:
        for name in (a.en, a.cy):
            index[_fold(name)] = frozenset({a.code})
    for name, code in ALIASES.items():
        index[_fold(name)] = frozenset({code})
    for name, codes in GROUPS.items():
        index[_fold(name)] = everything if codes == "*" else frozenset(codes.split())
    return index


def match_regions(regions: list[str]) -> tuple[set[str], list[str]]:
    """The area codes that ``regions`` (free text from a profile) name, and the regions that name none."""
    index = _index()
    codes: set[str] = set()
    unmatched: list[str] = []
    for region in regions:
        folded = _fold(str(region))
        found = index.get(folded) or index.get(" ".join(_NOISE.sub(" ", folded).split()))
        if found:
            codes |= found
        else:
            unmatched.append(str(region))
    return codes, unmatched


def region_map(regions: list[str], locale: str) -> dict[str, Any] | None:
    """The map's areas (name in ``locale``, covered or not), the covered names and the regions not on the map;
    None when no region names an area of Wales (the page then shows its list alone)."""
    codes, unmatched = match_regions(regions)
    if not codes:
        return None
    areas, view_box = wales()
    named = [{"code": a.code, "name": a.cy if locale == "cy" else a.en, "d": a.d, "covered": a.code in codes}
             for a in areas]
    return {
        "view_box": view_box,
        "areas": named,
        "covered": sorted(a["name"] for a in named if a["covered"]),
        "total": len(areas),
        "unmatched": unmatched,
    }


# -- the network graph ---------------------------------------------------------------------------------------

GRAPH_WIDTH = 480
GRAPH_HEIGHT = 290
GRAPH_RADIUS = 105
GRAPH_RADIUS_X = 175
#: About how wide one character of a 15-unit label is, to keep labels inside the picture.
CHAR_WIDTH = 8.2
#: Line style per peer state: the same words as the table, drawn without relying on colour.
EDGE_STYLES = {"healthy": "solid", "failing": "dashed", "new": "dotted", "dropped": "dashdot"}


def _label(text: str, width: int = 18) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def peer_graph(name: str, peers: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any] | None:
    """This hub in the middle, its peers around it (at most :data:`MAX_GRAPH_PEERS`), each link in the line style
    of the peer's state. None when there are no peers (the page says so in words)."""
    if not peers:
        return None
    shown = peers[:MAX_GRAPH_PEERS]
    cx, cy = GRAPH_WIDTH / 2, GRAPH_HEIGHT / 2
    # With an even number of peers, turn by half a step so that no peer sits straight below this hub, where
    # its name goes.
    start = -math.pi / 2 + (math.pi / len(shown) if len(shown) % 2 == 0 else 0.0)
    nodes = []
    for i, p in enumerate(shown):
        angle = start + 2 * math.pi * i / len(shown)
        x, y = cx + GRAPH_RADIUS_X * math.cos(angle), cy + GRAPH_RADIUS * math.sin(angle)
        hub = p.get("hub")
        label = _label(names.get(hub or "") or str(p.get("label") or p.get("url", ""))
                       .removeprefix("https://").removeprefix("http://"))
        state = str(p.get("state") or "")
        # Labels go above nodes in the upper half and at the sides, below those in the lower half, centred
        # on the node but kept inside the picture.
        half = len(label) * CHAR_WIDTH / 2
        label_x = min(max(x, half + 4), GRAPH_WIDTH - half - 4)
        nodes.append({
            "x": round(x, 1), "y": round(y, 1), "label": label, "state": state,
            "style": EDGE_STYLES.get(state, "dotted"),
            "label_x": round(label_x, 1), "label_y": round(y + 30 if y > cy + 10 else y - 18, 1), "anchor": "middle",
        })
    name = _label(name, 22)
    return {"width": GRAPH_WIDTH, "height": GRAPH_HEIGHT, "cx": cx, "cy": cy, "name": name,
            "name_width": round(len(name) * CHAR_WIDTH + 12, 1), "nodes": nodes, "more": len(peers) - len(shown)}
