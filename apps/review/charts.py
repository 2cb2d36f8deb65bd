"""Server-rendered SVG charts for the review analytics page.

Each function returns one self-contained ``<svg>`` string: no JavaScript, no external
assets, a ``viewBox`` with ``width="100%"`` so it scales with its column. Text and grid
lines use ``currentColor``, so a chart follows the page's text colour (light or dark).
For screen readers the ``<svg>`` is ``role="img"`` with an ``aria-label`` holding the title
and the values; sighted readers get a ``<title>`` tooltip with the exact value on every bar,
point and segment.

Every piece of label text is escaped here: labels come from user data (document titles,
judge versions), and templates mark the result safe.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from html import escape

# Okabe & Ito's palette, told apart by readers with any common colour-vision deficiency.
# Yellow is left out: it vanishes on a white page.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#666666",  # grey
)
# Low to high scores: red to blue through grey (ColorBrewer RdBu). Red to green would be
# the obvious choice, and the one a red-green colour-blind reader cannot read.
SCORE_SCALE: tuple[str, ...] = ("#B2182B", "#EF8A62", "#A6A6A6", "#67A9CF", "#2166AC")

_WIDTH = 640
_PAD = 8
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_TITLE_SIZE = 15
_LABEL_SIZE = 12
# Average advance of a sans-serif glyph in ems: there are no font metrics on the server,
# so widths are estimates, erring wide.
_CHAR_EM = 0.6
_TITLE_BASELINE = 20
_MAX_LABEL_CHARS = 32  # horizontal bar labels; the full text stays in the tooltip
_SUMMARY_ITEMS = 24  # values spelled out in aria-label before "and N more"
_DASHES = ("", "7 4", "2 3", "9 3 2 3")
_MUTED = 'fill="currentColor" fill-opacity="0.72"'
_GRID = 'stroke="currentColor" stroke-opacity="0.14" stroke-width="1"'
_BASELINE = 'stroke="currentColor" stroke-opacity="0.5" stroke-width="1"'
# Characters XML 1.0 refuses even when escaped; one in a document title would break the page.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def score_color(score: float, *, low: float = 0.0, high: float = 5.0) -> str:
    """The ``SCORE_SCALE`` colour for a score between ``low`` and ``high`` (clamped)."""
    if high <= low:
        raise ValueError(f"high ({high}) must be above low ({low})")
    fraction = min(1.0, max(0.0, (score - low) / (high - low)))
    return SCORE_SCALE[min(len(SCORE_SCALE) - 1, int(fraction * len(SCORE_SCALE)))]


def empty_chart(title: str, message: str = "No data yet") -> str:
    """An empty frame the same width as a chart, so the page does not jump when data comes."""
    height = 120
    body = [
        f'<rect x="{_PAD}" y="34" width="{_WIDTH - 2 * _PAD}" height="{height - 42}" rx="6" '
        'fill="currentColor" fill-opacity="0.04" stroke="currentColor" stroke-opacity="0.2" '
        'stroke-dasharray="4 4"/>',
        f'<text x="{_WIDTH / 2:g}" y="{34 + (height - 42) / 2 + 5:g}" text-anchor="middle" '
        f'font-size="{_LABEL_SIZE + 1}" {_MUTED}>{_text(message)}</text>',
    ]
    return _svg(title=title, summary=message, height=height, body=body)


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    value_format: str = "{:g}",
    colors: Sequence[str] | None = None,
    y_max: float | None = None,
) -> str:
    """Vertical bars, one per ``(label, value)``, in the order given.

    ``colors`` gives one fill per bar (e.g. ``score_color`` per score band); by default all
    bars are the first ``PALETTE`` colour. ``y_max`` fixes the top of the axis (it is raised
    if a value is higher, so no bar is ever clipped); otherwise a round number above the
    largest value is used. Value labels are drawn above the bars when they fit.
    """
    if not items:
        return empty_chart(title)
    labels = [str(label) for label, _ in items]
    values = _finite([value for _, value in items])
    if colors is not None and len(colors) != len(items):
        raise ValueError(f"{len(colors)} colors for {len(items)} bars")
    fills = list(colors) if colors is not None else [PALETTE[0]] * len(items)
    low, high, ticks = _axis(
        min(values), max(values), fixed_high=y_max, integer=_all_integers(values)
    )
    tick_labels = [_tick_label(tick) for tick in ticks]

    height = 300
    top = _TITLE_BASELINE + 36  # title, then room for the tallest bar's value label
    bottom = height - 32  # x labels below
    left = _PAD + max(_width(label) for label in tick_labels) + 8
    right = _WIDTH - _PAD
    slot = (right - left) / len(items)
    bar_width = min(slot * 0.72, 64.0)

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (bottom - top)

    formatted = [value_format.format(value) for value in values]
    show_values = max(_width(text) for text in formatted) <= slot - 2
    # Thin the x labels so that each shown label has room for about 10 characters.
    wanted = min(max(len(label) for label in labels), 10) * _LABEL_SIZE * _CHAR_EM + 6
    every = max(1, math.ceil(wanted / slot))

    body = _horizontal_grid(ticks, tick_labels, y, left=left, right=right)
    zero = y(0.0)
    for index, (label, value, text, fill) in enumerate(
        zip(labels, values, formatted, fills, strict=True)
    ):
        center = left + slot * (index + 0.5)
        bar_top, bar_bottom = sorted((y(value), zero))
        parts = [
            f"<g><title>{_text(label)}: {_exact(value)}</title>",
            _hit_area(left + slot * index, top, slot, bottom - top),
            f'<rect class="bar" x="{_num(center - bar_width / 2)}" y="{_num(bar_top)}" '
            f'width="{_num(bar_width)}" height="{_num(bar_bottom - bar_top)}" '
            f'fill="{_text(fill)}"/>',
        ]
        if show_values:
            label_y = bar_top - 5 if value >= 0 else bar_bottom + _LABEL_SIZE + 2
            parts.append(
                f'<text class="value" x="{_num(center)}" y="{_num(label_y)}" '
                f'text-anchor="middle" font-size="{_LABEL_SIZE}" fill="currentColor">'
                f"{_text(text)}</text>"
            )
        if index % every == 0:
            parts.append(
                f'<text class="label" x="{_num(center)}" y="{_num(bottom + 18)}" '
                f'text-anchor="middle" font-size="{_LABEL_SIZE}" {_MUTED}>'
                f"{_text(_truncate(label, _chars_around(center, slot * every - 6)))}</text>"
            )
        parts.append("</g>")
        body.append("".join(parts))
    body.append(_line(left, zero, right, zero, _BASELINE))
    summary = _summary([f"{label}: {text}" for label, text in zip(labels, formatted, strict=True)])
    return _svg(title=title, summary=summary, height=height, body=body)


def horizontal_bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    value_format: str = "{:.2f}",
    x_max: float | None = None,
) -> str:
    """One row per ``(label, value)``, in the order given; the chart grows with the rows.

    Labels longer than 32 characters end in an ellipsis (the tooltip has the full text).
    ``x_max`` fixes the end of the axis, as ``y_max`` does in ``bar_chart``.
    """
    if not items:
        return empty_chart(title)
    labels = [str(label) for label, _ in items]
    values = _finite([value for _, value in items])
    formatted = [value_format.format(value) for value in values]
    shown = [_truncate(label, _MAX_LABEL_CHARS) for label in labels]
    low, high, ticks = _axis(
        min(values), max(values), fixed_high=x_max, integer=_all_integers(values)
    )
    tick_labels = [_tick_label(tick) for tick in ticks]

    row, bar_height = 26, 16
    top = _TITLE_BASELINE + 16
    bottom = top + row * len(items)
    height = bottom + 26  # tick labels under the rows
    left = _PAD + max(_width(label) for label in shown) + 10
    # Room on the right for the longest value label, and for half of the last tick label.
    right = _WIDTH - _PAD - max(max(_width(text) for text in formatted) + 6, _width("100") / 2)

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * (right - left)

    body = []
    for tick, tick_label in zip(ticks, tick_labels, strict=True):
        body.append(_line(x(tick), top, x(tick), bottom, _GRID))
        body.append(
            f'<text x="{_num(x(tick))}" y="{bottom + 17}" text-anchor="middle" '
            f'font-size="{_LABEL_SIZE}" {_MUTED}>{_text(tick_label)}</text>'
        )
    zero = x(0.0)
    for index, (label, short, value, text) in enumerate(
        zip(labels, shown, values, formatted, strict=True)
    ):
        row_top = top + row * index
        middle = row_top + row / 2
        bar_left, bar_right = sorted((zero, x(value)))
        value_x, anchor = (bar_right + 6, "start") if value >= 0 else (bar_left - 6, "end")
        body.append(
            f"<g><title>{_text(label)}: {_exact(value)}</title>"
            + _hit_area(_PAD, row_top, _WIDTH - 2 * _PAD, row)
            + f'<text class="label" x="{_num(left - 10)}" y="{_num(middle + 4)}" '
            f'text-anchor="end" font-size="{_LABEL_SIZE}" fill="currentColor">'
            f"{_text(short)}</text>"
            f'<rect class="bar" x="{_num(bar_left)}" y="{_num(middle - bar_height / 2)}" '
            f'width="{_num(bar_right - bar_left)}" height="{bar_height}" fill="{PALETTE[0]}"/>'
            f'<text class="value" x="{_num(value_x)}" y="{_num(middle + 4)}" '
            f'text-anchor="{anchor}" font-size="{_LABEL_SIZE}" fill="currentColor">'
            f"{_text(text)}</text></g>"
        )
    body.append(_line(zero, top, zero, bottom, _BASELINE))
    summary = _summary([f"{label}: {text}" for label, text in zip(labels, formatted, strict=True)])
    return _svg(title=title, summary=summary, height=height, body=body)


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[str, float | None]]]],
    *,
    title: str,
    y_min: float | None = None,
    y_max: float | None = None,
) -> str:
    """One line per ``(name, [(x_label, value), ...])`` over a shared category x axis.

    The x axis lists x labels in order of first appearance, so give every series the same
    labels in order (``None`` where it has no value) when they cover different ranges. A
    ``None`` breaks the line; a point with no neighbour still shows as a dot. X labels are
    thinned to those that fit. The y axis spans ``y_min``..``y_max`` (widened to fit the
    data), by default 0 to a round number above the largest value.
    """
    x_labels: list[str] = []
    seen: set[str] = set()
    lookups: list[dict[str, float | None]] = []
    for _, points in series:
        lookup: dict[str, float | None] = {}
        for x_label, value in points:
            key = str(x_label)
            if key not in seen:
                seen.add(key)
                x_labels.append(key)
            lookup[key] = None if value is None else float(value)
        lookups.append(lookup)
    present = _finite([v for lookup in lookups for v in lookup.values() if v is not None])
    if not present:
        return empty_chart(title)
    names = [str(name) for name, _ in series]
    colors = [PALETTE[index % len(PALETTE)] for index in range(len(series))]
    # Lines differ by dash as well as colour: for readers who see colours poorly, and so that
    # no two of the first 28 series look alike.
    dashes = [_DASHES[index % len(_DASHES)] for index in range(len(series))]

    legend, legend_height = _legend(
        [
            (name, _swatch_line(color, dash))
            for name, color, dash in zip(names, colors, dashes, strict=True)
        ],
        top=_TITLE_BASELINE + 14,
    )
    low, high, ticks = _axis(min(present), max(present), fixed_low=y_min, fixed_high=y_max)
    tick_labels = [_tick_label(tick) for tick in ticks]

    top = _TITLE_BASELINE + 14 + legend_height + 12
    bottom = top + 220
    height = bottom + 30
    longest = min(max(len(label) for label in x_labels), 14)
    label_room = longest * _LABEL_SIZE * _CHAR_EM
    left = max(_PAD + max(_width(label) for label in tick_labels) + 8, _PAD + label_room / 2)
    right = _WIDTH - max(_PAD, _PAD + label_room / 2)
    inset = 6  # keeps end points off the plot's edges

    def x(index: int) -> float:
        if len(x_labels) == 1:
            return (left + right) / 2
        return left + inset + index * (right - left - 2 * inset) / (len(x_labels) - 1)

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (bottom - top)

    body = [*legend, *_horizontal_grid(ticks, tick_labels, y, left=left, right=right)]
    spacing = (right - left) / max(1, len(x_labels))
    every = max(1, math.ceil((label_room + 10) / spacing))
    for index, x_label in enumerate(x_labels):
        if index % every == 0:
            body.append(
                f'<text class="label" x="{_num(x(index))}" y="{_num(bottom + 18)}" '
                f'text-anchor="middle" font-size="{_LABEL_SIZE}" {_MUTED}>'
                f"{_text(_truncate(x_label, 14))}</text>"
            )
    radius = 3.5 if len(x_labels) <= 40 else 2.5
    described = []
    for name, lookup, color, dash in zip(names, lookups, colors, dashes, strict=True):
        commands: list[str] = []
        markers: list[str] = []
        pen_down = False
        for index, x_label in enumerate(x_labels):
            value = lookup.get(x_label)
            if value is None:
                pen_down = False
                continue
            commands.append(f"{'L' if pen_down else 'M'}{_num(x(index))} {_num(y(value))}")
            pen_down = True
            markers.append(
                f'<circle class="point" cx="{_num(x(index))}" cy="{_num(y(value))}" '
                f'r="{radius}" fill="{color}"><title>{_text(name)} · {_text(x_label)}: '
                f"{_exact(value)}</title></circle>"
            )
            described.append(f"{name} {x_label}: {_tick_label(value)}")
        dash_attribute = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(
            f'<g class="series"><title>{_text(name)}</title>'
            f'<path class="line" d="{" ".join(commands)}" fill="none" stroke="{color}" '
            f'stroke-width="2.25" stroke-linejoin="round" stroke-linecap="round"'
            f"{dash_attribute}/>{''.join(markers)}</g>"
        )
    return _svg(title=title, summary=_summary(described), height=height, body=body)


def stacked_share_bar(parts: Sequence[tuple[str, float, str]], *, title: str) -> str:
    """One bar split by share of the total: ``(label, count, color)`` per part.

    Percentages are whole numbers that add up to 100 (largest remainder), inside a segment
    when they fit and always in the legend; the tooltip has the exact count and share.
    """
    if not parts:
        return empty_chart(title)
    labels = [str(label) for label, _, _ in parts]
    counts = _finite([count for _, count, _ in parts])
    colors = [str(color) for _, _, color in parts]
    if any(count < 0 for count in counts):
        raise ValueError("stacked_share_bar counts must not be negative")
    total = math.fsum(counts)
    percents = _whole_percents(counts) if total > 0 else None

    left, right = _PAD, _WIDTH - _PAD
    top, bar_height = _TITLE_BASELINE + 14, 36
    body = []
    if percents is None:
        body.append(
            f'<rect x="{left}" y="{top}" width="{right - left}" height="{bar_height}" '
            'fill="currentColor" fill-opacity="0.06"/>'
            f'<text x="{_WIDTH / 2:g}" y="{top + bar_height / 2 + 4:g}" text-anchor="middle" '
            f'font-size="{_LABEL_SIZE}" {_MUTED}>No data yet</text>'
        )
    else:
        start: float = left
        for label, count, color, percent in zip(labels, counts, colors, percents, strict=True):
            width = count / total * (right - left)
            share = f"{count / total * 100:.1f}%"
            segment = (
                f"<g><title>{_text(label)}: {_exact(count)} of {_exact(total)} ({share})</title>"
                f'<rect class="segment" x="{_num(start)}" y="{top}" width="{_num(width)}" '
                f'height="{bar_height}" fill="{_text(color)}"/>'
            )
            if width >= _width(f"{percent}%") + 8:
                segment += (
                    f'<text x="{_num(start + width / 2)}" y="{top + bar_height / 2 + 4:g}" '
                    f'text-anchor="middle" font-size="{_LABEL_SIZE}" font-weight="600" '
                    f"{_ink_on(color)}>{percent}%</text>"
                )
            body.append(segment + "</g>")
            start += width
    legend, legend_height = _legend(
        [
            (
                f"{label} {_exact(count)}" + ("" if percents is None else f" ({percent}%)"),
                _swatch_box(color),
            )
            for label, count, color, percent in zip(
                labels, counts, colors, percents or [0] * len(parts), strict=True
            )
        ],
        top=top + bar_height + 10,
    )
    body.extend(legend)
    height = top + bar_height + 10 + legend_height + 6
    summary = _summary(
        [
            f"{label}: {_exact(count)}" + ("" if percents is None else f" ({percent}%)")
            for label, count, percent in zip(
                labels, counts, percents or [0] * len(parts), strict=True
            )
        ]
    )
    return _svg(title=title, summary=summary, height=height, body=body)


# --- building blocks ---------------------------------------------------------------------


def _svg(*, title: str, summary: str, height: float, body: list[str]) -> str:
    label = f"{title}. {summary}" if summary else title
    visible_title = _truncate(title, int((_WIDTH - 2 * _PAD) / (_TITLE_SIZE * _CHAR_EM)))
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" '
            f'viewBox="0 0 {_WIDTH} {_num(height)}" width="100%" role="img" '
            f'aria-label="{_text(label)}" font-family="{_FONT}" '
            'style="display:block;height:auto;max-width:100%">',
            f"<title>{_text(title)}</title>",
            f"<desc>{_text(summary)}</desc>" if summary else "",
            f'<text x="{_PAD}" y="{_TITLE_BASELINE}" font-size="{_TITLE_SIZE}" '
            f'font-weight="600" fill="currentColor">{_text(visible_title)}</text>',
            *body,
            "</svg>",
        ]
    )


def _axis(
    low: float,
    high: float,
    *,
    fixed_low: float | None = None,
    fixed_high: float | None = None,
    integer: bool = False,
) -> tuple[float, float, list[float]]:
    """The axis range and round tick values within it.

    Unless fixed, an end includes 0 and is rounded out to a tick. A fixed end that would cut
    off data is treated as not fixed: a chart must never hide a value.
    """
    low_fixed = fixed_low is not None and fixed_low <= low
    high_fixed = fixed_high is not None and fixed_high >= high
    low = fixed_low if fixed_low is not None and low_fixed else min(0.0, low)
    high = fixed_high if fixed_high is not None and high_fixed else max(0.0, high)
    if high <= low:  # all zero, or a fixed range of width 0
        high = low + 1.0
    step = _nice_step((high - low) / 5, integer=integer)
    if not low_fixed:
        low = math.floor(low / step + 1e-9) * step
    if not high_fixed:
        high = math.ceil(high / step - 1e-9) * step
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return low, high, [round(i * step, 10) for i in range(first, last + 1)]


def _nice_step(raw: float, *, integer: bool) -> float:
    magnitude = 10 ** math.floor(math.log10(raw))
    # Counts get no 2.5 steps and no fractional ticks.
    factors = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(factor * magnitude for factor in factors if factor * magnitude >= raw * 0.999)
    return max(step, 1.0) if integer else step


def _horizontal_grid(
    ticks: list[float],
    tick_labels: list[str],
    y: Callable[[float], float],
    *,
    left: float,
    right: float,
) -> list[str]:
    body = []
    for tick, tick_label in zip(ticks, tick_labels, strict=True):
        body.append(_line(left, y(tick), right, y(tick), _GRID))
        body.append(
            f'<text x="{_num(left - 6)}" y="{_num(y(tick) + 4)}" text-anchor="end" '
            f'font-size="{_LABEL_SIZE}" {_MUTED}>{_text(tick_label)}</text>'
        )
    return body


def _legend(entries: list[tuple[str, str]], *, top: float) -> tuple[list[str], float]:
    """Legend entries (text, swatch markup drawn in a 14x12 box at 0,0) flowing in rows."""
    row_height = 18
    body, x, row = [], float(_PAD), 0
    for text, swatch in entries:
        shown = _truncate(text, 40)
        width = 14 + 6 + _width(shown) + 16
        if x + width > _WIDTH - _PAD and x > _PAD:
            x, row = float(_PAD), row + 1
        y = top + row * row_height
        body.append(
            f'<g class="legend" transform="translate({_num(x)} {_num(y)})">{swatch}'
            f'<text x="20" y="10" font-size="{_LABEL_SIZE}" fill="currentColor">'
            f"{_text(shown)}</text></g>"
        )
        x += width
    return body, (row + 1) * row_height


def _swatch_line(color: str, dash: str) -> str:
    dash_attribute = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="0" y1="6" x2="14" y2="6" stroke="{color}" stroke-width="2.5"{dash_attribute}/>'
    )


def _swatch_box(color: str) -> str:
    return f'<rect x="0" y="0" width="12" height="12" rx="2" fill="{_text(color)}"/>'


def _hit_area(x: float, y: float, width: float, height: float) -> str:
    # Invisible but hoverable (fill-opacity 0 still takes the pointer): a short bar is hard
    # to point at, so its whole column shows the tooltip.
    return (
        f'<rect class="hit" x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" '
        f'height="{_num(height)}" fill="#fff" fill-opacity="0"/>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, style: str) -> str:
    return f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" {style}/>'


def _ink_on(color: str) -> str:
    """Text paint for a label on ``color``: black or white, whichever contrasts more."""
    match = re.fullmatch(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", color.strip())
    if not match:  # a named or functional colour: dark text with a light halo reads on any
        return 'fill="#111" stroke="#fff" stroke-width="3" paint-order="stroke"'
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # WCAG contrast: white wins when 1.05 / (L + 0.05) > (L + 0.05) / 0.05.
    return 'fill="#fff"' if 1.05 / (luminance + 0.05) > (luminance + 0.05) / 0.05 else 'fill="#000"'


def _chars_around(center: float, room: float) -> int:
    """How many characters fit in ``room`` centred on ``center`` without leaving the chart."""
    room = min(room, 2 * (center - _PAD), 2 * (_WIDTH - _PAD - center))
    return max(1, int(room / (_LABEL_SIZE * _CHAR_EM)))


def _whole_percents(counts: list[float]) -> list[int]:
    """Whole percentages that sum to 100: floor each share, then hand the points left over to
    the largest remainders (so a 1/3 1/3 1/3 split reads 34 33 33, not 33 33 33)."""
    total = math.fsum(counts)
    exact = [count / total * 100 for count in counts]
    whole = [math.floor(share) for share in exact]
    by_remainder = sorted(range(len(counts)), key=lambda i: exact[i] - whole[i], reverse=True)
    for index in by_remainder[: 100 - sum(whole)]:
        whole[index] += 1
    return whole


def _finite(values: Sequence[float]) -> list[float]:
    floats = [float(value) for value in values]
    for value in floats:
        if not math.isfinite(value):
            raise ValueError(f"chart values must be finite numbers, not {value!r}")
    return floats


def _all_integers(values: list[float]) -> bool:
    return all(value.is_integer() for value in values)


def _summary(items: list[str]) -> str:
    shown = items[:_SUMMARY_ITEMS]
    rest = len(items) - len(shown)
    return "; ".join(shown) + (f"; and {rest} more" if rest else "")


def _text(value: object) -> str:
    return escape(_XML_INVALID.sub("", str(value)), quote=True)


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - 1)].rstrip() + "…"


def _width(text: str, size: int = _LABEL_SIZE) -> float:
    return len(text) * size * _CHAR_EM


def _num(value: float) -> str:
    """A coordinate: two decimals at most, trailing zeros dropped, small output."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _tick_label(value: float) -> str:
    return f"{round(value, 6):g}"


def _exact(value: float) -> str:
    """The value as it is (shortest round-trip form), without a trailing ``.0``."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
