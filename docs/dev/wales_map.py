"""Make hub/static/wales.svg, the map of Wales' 22 principal areas on the hub pages, from open boundary data.

    python docs/dev/wales_map.py topo_lad.json > hub/static/wales.svg

The input is ``json/administrative/wal/topo_lad.json`` of Martin Chorley's UK-GeoJSON collection
(github.com/martinjc/UK-GeoJSON; CC BY 4.0), a TopoJSON conversion of the ONS / Ordnance Survey generalised
clipped boundaries of the 2013 local authority districts (Open Government Licence v3; Wales' 22 principal areas
have not changed since 1996). It is not kept in this repository: fetch it yourself to rebuild the map.

How: TopoJSON stores each border once (an "arc"), so simplifying each arc once (Douglas–Peucker) keeps
neighbouring areas' borders identical — no gaps or overlaps. Small islands are dropped. Coordinates are
projected with longitude scaled by cos(52.4°) (an equirectangular projection centred on Wales) and rounded
to 0.1 of a unit of the 300-unit-wide viewBox.
"""

from __future__ import annotations

import json
import math
import sys

#: Douglas–Peucker tolerance in degrees of latitude (about 670 m); islands under this area (deg²) are dropped.
TOLERANCE = 0.006
MIN_ISLAND = 0.0008
WIDTH = 300.0
COS = math.cos(math.radians(52.4))

NAMES = {
    "W06000001": ("Isle of Anglesey", "Ynys Môn"), "W06000002": ("Gwynedd", "Gwynedd"),
    "W06000003": ("Conwy", "Conwy"), "W06000004": ("Denbighshire", "Sir Ddinbych"),
    "W06000005": ("Flintshire", "Sir y Fflint"), "W06000006": ("Wrexham", "Wrecsam"),
    "W06000008": ("Ceredigion", "Ceredigion"), "W06000009": ("Pembrokeshire", "Sir Benfro"),
    "W06000010": ("Carmarthenshire", "Sir Gaerfyrddin"), "W06000011": ("Swansea", "Abertawe"),
    "W06000012": ("Neath Port Talbot", "Castell-nedd Port Talbot"),
    "W06000013": ("Bridgend", "Pen-y-bont ar Ogwr"), "W06000014": ("Vale of Glamorgan", "Bro Morgannwg"),
    "W06000015": ("Cardiff", "Caerdydd"), "W06000016": ("Rhondda Cynon Taf", "Rhondda Cynon Taf"),
    "W06000018": ("Caerphilly", "Caerffili"), "W06000019": ("Blaenau Gwent", "Blaenau Gwent"),
    "W06000020": ("Torfaen", "Tor-faen"), "W06000021": ("Monmouthshire", "Sir Fynwy"),
    "W06000022": ("Newport", "Casnewydd"), "W06000023": ("Powys", "Powys"),
    "W06000024": ("Merthyr Tydfil", "Merthyr Tudful"),
}


def decode(topo: dict) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def simplify(points: list[tuple[float, float]], tolerance: float) -> list[tuple[float, float]]:
    if len(points) < 3:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        (ax, ay), (bx, by) = points[first], points[last]
        ax, bx = ax * COS, bx * COS
        length = math.hypot(bx - ax, by - ay)
        worst, index = 0.0, 0
        for i in range(first + 1, last):
            px, py = points[i][0] * COS, points[i][1]
            if length == 0:
                d = math.hypot(px - ax, py - ay)
            else:
                d = abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / length
            if d > worst:
                worst, index = d, i
        if worst > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [p for p, k in zip(points, keep, strict=True) if k]


def ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for i in indexes:
        points = arcs[i] if i >= 0 else arcs[~i][::-1]
        out += points if not out else points[1:]
    return out


def area(points: list[tuple[float, float]]) -> float:
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True))) / 2


def main(path: str) -> None:
    topo = json.load(open(path, encoding="utf-8"))
    raw = decode(topo)
    arcs = [simplify(a, TOLERANCE) for a in raw]
    geometries = topo["objects"]["lad"]["geometries"]
    lons = [x for a in raw for x, _ in a]
    lats = [y for a in raw for _, y in a]
    west, east, north = min(lons), max(lons), max(lats)
    scale = WIDTH / ((east - west) * COS)
    height = (north - min(lats)) * scale

    def xy(p: tuple[float, float]) -> str:
        return f"{(p[0] - west) * COS * scale:.1f},{(north - p[1]) * scale:.1f}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0f} {height:.0f}">',
           "<!-- Wales' 22 principal areas, simplified by docs/dev/wales_map.py. Contains OS data (c) Crown "
           "copyright and database right 2014; contains National Statistics data (c) Crown copyright and "
           "database right 2014 (Open Government Licence v3.0). Boundaries converted by Martin Chorley, "
           "github.com/martinjc/UK-GeoJSON (CC BY 4.0). -->"]
    for g in sorted(geometries, key=lambda g: g["properties"]["LAD13CD"]):
        code = g["properties"]["LAD13CD"]
        polygons = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
        d = []
        for polygon in polygons:
            rings = [ring(arcs, r) for r in polygon]
            if area(ring(raw, polygon[0])) < MIN_ISLAND and len(polygons) > 1:
                continue
            for r in rings:
                if len(r) >= 4:
                    d.append("M" + " ".join(xy(p) for p in r[:-1]) + "Z")
        en, cy = NAMES[code]
        out.append(f'<path id="{code}" data-en="{en}" data-cy="{cy}" d="{"".join(d)}"/>')
    out.append("</svg>")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
