"""hub/charts.py: the pictures' geometry, the map of Wales and the regions it recognises."""

from __future__ import annotations

import re

from hub import charts
from hub.charts import Mark


def test_the_bar_scales_and_places_marks() -> None:
    b = charts.bar(135, [Mark(50, "50"), Mark(100, "100"), Mark(250, "250"), Mark(100, "min", "dashed", True)])
    assert b.maximum == 288  # 15% past the largest mark, so the last one is not on the edge
    assert b.fill == round(135 * charts.BAR_WIDTH / 288, 1)
    xs = {m["label"]: m["x"] for m in b.marks}
    assert xs["100"] == xs["min"] and xs["50"] < xs["100"] < xs["250"] <= charts.BAR_WIDTH
    assert {m["label"] for m in b.marks if m["above"]} == {"min"}


def test_labels_that_would_overlap_go_to_another_row() -> None:
    b = charts.bar(3, [Mark(1, "1+: £120.00"), Mark(2, "2+: £100.00"), Mark(5, "5+: £95.00")])
    rows = {m["label"]: m["row"] for m in b.marks}
    assert rows["1+: £120.00"] == 0 and rows["2+: £100.00"] == 1  # too close to share a row
    on_row: dict[int, list[float]] = {}
    for m in b.marks:
        on_row.setdefault(m["row"], []).append(m["x"])
    for xs in on_row.values():
        assert all(b - a >= charts.LABEL_GAP for a, b in zip(sorted(xs), sorted(xs)[1:], strict=False))
    assert b.height > charts.BAR_TRACK_Y + charts.BAR_TRACK_HEIGHT + 18  # room for the second row


def test_a_value_past_the_scale_fills_the_bar_and_no_marks_is_fine() -> None:
    assert charts.bar(500, [], maximum=100).fill == charts.BAR_WIDTH
    assert charts.bar(0, []).fill == 0 and charts.bar(0, []).maximum >= 1


def test_the_map_has_the_22_principal_areas_with_welsh_names() -> None:
    areas, view_box = charts.wales()
    assert len(areas) == 22 and len({a.code for a in areas}) == 22
    assert all(re.fullmatch(r"W060000\d\d", a.code) and a.d.startswith("M") for a in areas)
    names = {a.en: a.cy for a in areas}
    assert names["Isle of Anglesey"] == "Ynys Môn" and names["Cardiff"] == "Caerdydd"
    assert view_box.startswith("0 0 300 ")


def test_regions_are_matched_by_either_name_alias_or_group() -> None:
    codes, unmatched = charts.match_regions(["Gwynedd", "Anglesey", "Caerdydd", "Bristol"])
    assert codes == {"W06000002", "W06000001", "W06000015"} and unmatched == ["Bristol"]
    assert len(charts.match_regions(["Wales"])[0]) == 22
    assert len(charts.match_regions(["North Wales"])[0]) == 6
    assert charts.match_regions(["Rhondda Cynon Taff", "ynys môn", "Cyngor Sir Ddinbych"])[0] == {
        "W06000016", "W06000001", "W06000004"}
    assert charts.region_map(["Bristol"], "en") is None
    welsh = charts.region_map(["Cardiff", "Newport"], "cy")
    assert welsh is not None and welsh["covered"] == ["Caerdydd", "Casnewydd"] and welsh["total"] == 22


def test_the_peer_graph_keeps_labels_inside_and_caps_the_peers() -> None:
    peers = [{"url": f"https://hub{i}.example", "state": "healthy", "hub": None} for i in range(20)]
    g = charts.peer_graph("Gofal Gwynedd", peers, {})
    assert g is not None and len(g["nodes"]) == charts.MAX_GRAPH_PEERS and g["more"] == 8
    for n in g["nodes"]:
        assert 0 <= n["x"] <= g["width"] and 0 <= n["label_y"] <= g["height"]
        assert n["label"] == f"hub{g['nodes'].index(n)}.example"
    styles = {s: charts.peer_graph("x", [{"url": "u", "state": s}], {})["nodes"][0]["style"]  # type: ignore[index]
              for s in ("healthy", "failing", "new", "dropped", "odd")}
    assert styles == {"healthy": "solid", "failing": "dashed", "new": "dotted", "dropped": "dashdot", "odd": "dotted"}
    assert charts.peer_graph("x", [], {}) is None


def test_the_bar_macro_draws_a_quorum_for_other_pages() -> None:
    """The governance pages reuse the macro: votes against a quorum, with a text equivalent."""
    from hub import i18n
    from hub.webrender import make_environment

    env = make_environment()
    macro = env.from_string('{% from "charts.html" import bar %}{{ bar(chart, "votes", name, desc) }}')
    chart = charts.bar(7, [Mark(6, "quorum 6", "dashed", True, True)], maximum=10)
    with i18n.using("cy"):
        html = macro.render(chart=chart, name="Votes <b>cast</b>", desc="7 of 10 voted; the quorum is 6.")
    assert 'role="img" aria-labelledby="votes-t votes-d"' in html
    assert '<title id="votes-t">Votes &lt;b&gt;cast&lt;/b&gt;</title>' in html  # escaped like any text
    assert '<desc id="votes-d">7 of 10 voted; the quorum is 6.</desc>' in html
    assert 'class="bar-mark bar-mark-dashed"' in html and "✓ quorum 6" in html
    assert f'width="{chart.fill}"' in html and chart.fill == 280.0
