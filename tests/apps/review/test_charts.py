from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from apps.review.charts import (
    PALETTE,
    SCORE_SCALE,
    bar_chart,
    empty_chart,
    horizontal_bar_chart,
    line_chart,
    score_color,
    stacked_share_bar,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert('x')</script> & \"co\""


def parse(svg: str) -> ET.Element:
    """The chart as XML, after checking what every chart must carry."""
    root = ET.fromstring(svg)  # raises unless well-formed
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.get("width") == "100%"
    assert re.fullmatch(r"0 0 \d+(\.\d+)? \d+(\.\d+)?", root.get("viewBox", ""))
    assert root.find(f"{SVG}title") is not None
    assert all(element.tag.startswith(SVG) for element in root.iter())  # no foreign elements
    assert "<script" not in svg and "javascript:" not in svg
    return root


def marks(root: ET.Element, tag: str, css_class: str) -> list[ET.Element]:
    return [element for element in root.iter(f"{SVG}{tag}") if element.get("class") == css_class]


def tooltips_of(root: ET.Element, tag: str, css_class: str) -> list[str]:
    """The <title> tooltip of each mark: its own, or that of the <g> wrapping it."""
    found = []
    for group in root.iter():
        for child in group:
            if child.tag == f"{SVG}{tag}" and child.get("class") == css_class:
                title = child.find(f"{SVG}title")
                if title is None:
                    title = group.find(f"{SVG}title")
                assert title is not None, f"{tag}.{css_class} without a tooltip"
                found.append(title.text or "")
    return found


def texts(root: ET.Element, css_class: str | None = None) -> list[str]:
    return [
        element.text or ""
        for element in root.iter(f"{SVG}text")
        if css_class is None or element.get("class") == css_class
    ]


CHARTS: dict[str, Callable[[], str]] = {
    "bar": lambda: bar_chart([("1", 3), ("2", 5)], title="Scores"),
    "horizontal": lambda: horizontal_bar_chart([("Doc", 3.5)], title="Per document"),
    "line": lambda: line_chart([("v1", [("Mon", 3.0), ("Tue", None)])], title="Per day"),
    "share": lambda: stacked_share_bar([("up", 3, "#2166AC")], title="Feedback"),
    "empty": lambda: empty_chart("Nothing"),
}


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_is_accessible_standalone_svg(name: str) -> None:
    parse(CHARTS[name]())


def test_bar_heights_are_proportional_to_values() -> None:
    values = [4, 10, 25, 61, 33]
    root = parse(bar_chart([(str(i + 1), v) for i, v in enumerate(values)], title="User scores"))
    heights = [float(rect.get("height", "")) for rect in marks(root, "rect", "bar")]
    assert len(heights) == len(values)
    per_unit = heights[3] / 61
    assert heights == pytest.approx([v * per_unit for v in values], abs=0.01)
    assert texts(root, "value") == ["4", "10", "25", "61", "33"]
    assert texts(root, "label") == ["1", "2", "3", "4", "5"]


def test_bar_chart_y_max_fixes_the_scale_and_colours_follow_bars() -> None:
    colors = [score_color(score) for score in (0, 2.5, 5)]
    root = parse(
        bar_chart([("low", 0.5), ("mid", 2.5), ("top", 5)], title="t", colors=colors, y_max=5)
    )
    bars = marks(root, "rect", "bar")
    heights = [float(rect.get("height", "")) for rect in bars]
    assert heights[2] == pytest.approx(2 * heights[1], abs=0.01)
    assert heights[2] == pytest.approx(10 * heights[0], abs=0.01)
    assert [rect.get("fill") for rect in bars] == [SCORE_SCALE[0], SCORE_SCALE[2], SCORE_SCALE[4]]
    # A value above y_max widens the axis rather than overflowing it.
    root = parse(bar_chart([("a", 2), ("b", 8)], title="t", y_max=5))
    assert max(float(tick) for tick in texts(root) if re.fullmatch(r"\d+", tick)) >= 8
    with pytest.raises(ValueError, match="2 colors for 3 bars"):
        bar_chart([("a", 1), ("b", 2), ("c", 3)], title="t", colors=PALETTE[:2])


def test_tooltips_carry_exact_values() -> None:
    mean = 10 / 3
    root = parse(bar_chart([("Doc", mean)], title="t", value_format="{:.2f}"))
    assert texts(root, "value") == ["3.33"]
    (tooltip,) = tooltips_of(root, "rect", "bar")
    assert tooltip.startswith("Doc: ") and float(tooltip.removeprefix("Doc: ")) == mean

    root = parse(horizontal_bar_chart([("Doc", mean), ("Other", 4)], title="t"))
    assert tooltips_of(root, "rect", "bar") == [f"Doc: {mean!r}", "Other: 4"]

    root = parse(line_chart([("judge v2", [("2025-05-01", mean)])], title="t"))
    assert tooltips_of(root, "circle", "point") == [f"judge v2 · 2025-05-01: {mean!r}"]

    root = parse(stacked_share_bar([("down", 1, "#B2182B"), ("up", 2, "#2166AC")], title="t"))
    assert tooltips_of(root, "rect", "segment") == ["down: 1 of 3 (33.3%)", "up: 2 of 3 (66.7%)"]


def test_user_text_is_escaped_everywhere() -> None:
    charts = [
        bar_chart([(HOSTILE, 1)], title=HOSTILE),
        horizontal_bar_chart([(HOSTILE, 1)], title=HOSTILE),
        line_chart([(HOSTILE, [(HOSTILE, 1.0)])], title=HOSTILE),
        stacked_share_bar([(HOSTILE, 1, '"><script>x</script>')], title=HOSTILE),
        empty_chart(HOSTILE, HOSTILE),
    ]
    for svg in charts:
        root = parse(svg)
        assert "&lt;script&gt;" in svg
        assert not list(root.iter(f"{SVG}script"))
        assert not list(root.iter("script"))
        # The text reads back exactly as given: escaped, not mangled.
        assert root.findtext(f"{SVG}title") == HOSTILE
        assert root.get("aria-label", "").startswith(HOSTILE)


def test_long_labels_are_truncated_with_full_text_in_tooltip() -> None:
    title = "UFC 3-600-01 Fire Protection Engineering for Facilities, with Change 7"
    root = parse(horizontal_bar_chart([(title, 4.25), ("Short", 2.125)], title="t", x_max=5))
    shown = texts(root, "label")
    assert shown[0].endswith("…") and len(shown[0]) <= 32 and title.startswith(shown[0][:-1])
    assert shown[1] == "Short"
    assert tooltips_of(root, "rect", "bar")[0] == f"{title}: 4.25"
    widths = [float(rect.get("width", "")) for rect in marks(root, "rect", "bar")]
    assert widths[0] == pytest.approx(2 * widths[1], abs=0.01)
    assert texts(root, "value") == ["4.25", "2.12"]  # round half to even, as format() does


@pytest.mark.parametrize(
    "svg",
    [
        pytest.param(bar_chart([], title="t"), id="bar"),
        pytest.param(horizontal_bar_chart([], title="t"), id="horizontal"),
        pytest.param(line_chart([], title="t"), id="line"),
        pytest.param(line_chart([("v1", [])], title="t"), id="line-no-points"),
        pytest.param(line_chart([("v1", [("Mon", None)])], title="t"), id="line-all-gaps"),
        pytest.param(stacked_share_bar([], title="t"), id="share"),
    ],
)
def test_empty_input_renders_the_empty_chart(svg: str) -> None:
    root = parse(svg)
    assert "No data yet" in texts(root)
    assert not marks(root, "rect", "bar") and not marks(root, "circle", "point")


def test_all_zero_values_render_without_dividing_by_zero() -> None:
    root = parse(bar_chart([("a", 0), ("b", 0)], title="t"))
    assert [rect.get("height") for rect in marks(root, "rect", "bar")] == ["0", "0"]
    root = parse(horizontal_bar_chart([("a", 0.0)], title="t"))
    assert [rect.get("width") for rect in marks(root, "rect", "bar")] == ["0"]
    root = parse(line_chart([("v1", [("Mon", 0.0), ("Tue", 0.0)])], title="t"))
    assert len({point.get("cy") for point in marks(root, "circle", "point")}) == 1
    root = parse(stacked_share_bar([("down", 0, "#B2182B"), ("up", 0, "#2166AC")], title="t"))
    assert not marks(root, "rect", "segment")
    assert "No data yet" in texts(root) and not any("%" in text for text in texts(root))


def test_gaps_split_the_line() -> None:
    points = [("d1", 1.0), ("d2", 2.0), ("d3", None), ("d4", 3.0), ("d5", 4.0)]
    root = parse(line_chart([("v1", points)], title="t", y_min=0, y_max=5))
    (path,) = marks(root, "path", "line")
    commands = re.findall(r"[ML]", path.get("d", ""))
    assert commands == ["M", "L", "M", "L"]  # two runs: d1-d2 and d4-d5
    assert len(marks(root, "circle", "point")) == 4
    # A point between two gaps has no line, but still shows as a dot.
    root = parse(line_chart([("v1", [("a", 1.0), ("b", None), ("c", 2.0)])], title="t"))
    (path,) = marks(root, "path", "line")
    assert re.findall(r"[ML]", path.get("d", "")) == ["M", "M"]
    assert len(marks(root, "circle", "point")) == 2


def test_line_chart_shares_the_x_axis_and_thins_its_labels() -> None:
    days = [f"2025-03-{day:02d}" for day in range(1, 32)] + [
        f"2025-04-{day:02d}" for day in range(1, 31)
    ]
    v1 = [(day, 3.0 + (index % 4) / 2) for index, day in enumerate(days)]
    v2 = [(day, None if index < 30 else 4.0) for index, day in enumerate(days)]
    root = parse(line_chart([("v1", v1), ("v2", v2)], title="t", y_min=0, y_max=5))
    labels = texts(root, "label")
    assert 2 <= len(labels) < len(days) and labels[0] == days[0]
    assert len(marks(root, "circle", "point")) == len(days) + 31
    paths = marks(root, "path", "line")
    assert [path.get("stroke") for path in paths] == [PALETTE[0], PALETTE[1]]
    assert paths[0].get("stroke-dasharray") != paths[1].get("stroke-dasharray")
    # v2 starts where its values start: at the x of v1's 31st point.
    v1_points = [p for p in marks(root, "circle", "point") if p.get("fill") == PALETTE[0]]
    v2_points = [p for p in marks(root, "circle", "point") if p.get("fill") == PALETTE[1]]
    assert v2_points[0].get("cx") == v1_points[30].get("cx")


def test_share_bar_percentages_add_up_to_100() -> None:
    parts = [("negative", 1, "#B2182B"), ("neutral", 1, "#A6A6A6"), ("positive", 1, "#2166AC")]
    root = parse(stacked_share_bar(parts, title="Feedback"))
    segments = marks(root, "rect", "segment")
    widths = [float(rect.get("width", "")) for rect in segments]
    assert widths == pytest.approx([widths[0]] * 3, abs=0.01)
    shown = [text for text in texts(root) if re.fullmatch(r"\d+%", text)]
    assert sorted(shown) == ["33%", "33%", "34%"]
    root = parse(stacked_share_bar([("a", 12, "#B2182B"), ("b", 88, "#2166AC")], title="t"))
    widths = [float(rect.get("width", "")) for rect in marks(root, "rect", "segment")]
    assert widths[1] / widths[0] == pytest.approx(88 / 12, rel=1e-3)
    with pytest.raises(ValueError, match="negative"):
        stacked_share_bar([("a", -1, "#000")], title="t")


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        bar_chart([("a", float("nan"))], title="t")
    with pytest.raises(ValueError, match="finite"):
        line_chart([("v1", [("Mon", float("inf"))])], title="t")


def test_score_color_runs_low_to_high() -> None:
    assert score_color(0) == SCORE_SCALE[0]
    assert score_color(5) == SCORE_SCALE[-1]
    assert score_color(2.5) == SCORE_SCALE[2]
    assert score_color(-3) == SCORE_SCALE[0] and score_color(9) == SCORE_SCALE[-1]
