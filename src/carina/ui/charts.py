"""Charts drawn on the server as SVG: no JavaScript, no chart library, readable by screen
readers (each chart has a title and a description, each bar a tooltip, and the figures are
also given as a table beside it).

:func:`column_chart` draws vertical (optionally stacked) bars over categories, such as days
or hours; :func:`bar_list` draws horizontal bars, one per labelled value, such as modalities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Colours are CSS classes (``series-0`` …), defined in carina.css.
SERIES_CLASSES = 6


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class Chart:
    """What the SVG template draws."""

    width: int
    height: int
    title: str
    description: str
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    grid: list[Line] = field(default_factory=list)
    axis: list[Line] = field(default_factory=list)
    #: (css class, name) of each series, for the legend (empty for one series).
    legend: list[tuple[str, str]] = field(default_factory=list)
    #: Header and rows of the table that gives the same figures.
    table_head: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(bar.height > 0 or bar.width > 0 for bar in self.bars)


def nice_scale(largest: float, steps: int = 4) -> tuple[float, float]:
    """A round top for the value axis and its step (1, 2 or 5 × 10ⁿ), at least 1."""
    if largest <= 0:
        return float(steps), 1.0
    raw = largest / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        step = factor * magnitude
        if step * steps >= largest:
            break
    step = max(step, 1.0)
    return step * math.ceil(largest / step), step


def _fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def column_chart(
    categories: list[str],
    series: list[tuple[str, list[int]]],
    *,
    title: str,
    description: str,
    label_every: int = 1,
    unit: str = "",
    width: int = 720,
    height: int = 240,
) -> Chart:
    """Vertical bars, one column per category, the series stacked in each column."""
    left, right, top, bottom = 44, 8, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    top_value, step = nice_scale(max(totals, default=0))
    chart = Chart(width, height, title, description)
    value = 0.0
    while value <= top_value + 1e-9:
        y = top + plot_h - value / top_value * plot_h
        chart.grid.append(Line(left, y, width - right, y))
        chart.labels.append(Label(left - 6, y + 4, _fmt(value), "end"))
        value += step
    chart.axis.append(Line(left, top + plot_h, width - right, top + plot_h))
    slot = plot_w / max(len(categories), 1)
    bar_w = max(slot * 0.7, 1.0)
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar_w) / 2
        base = float(top + plot_h)
        for s, (name, values) in enumerate(series):
            count = values[i]
            if count <= 0:
                continue
            h = count / top_value * plot_h
            base -= h
            what = f"{name}: " if len(series) > 1 else ""
            chart.bars.append(
                Bar(
                    x,
                    base,
                    bar_w,
                    h,
                    f"series-{s % SERIES_CLASSES}",
                    f"{category}: {what}{count:,}{unit}",
                )
            )
        if i % label_every == 0:
            chart.labels.append(Label(x + bar_w / 2, height - 10, category))
    if len(series) > 1:
        chart.legend = [
            (f"series-{s % SERIES_CLASSES}", name) for s, (name, _) in enumerate(series)
        ]
    chart.table_head = ["", *(name for name, _ in series)]
    chart.table_rows = [
        [category, *(f"{values[i]:,}" for _, values in series)]
        for i, category in enumerate(categories)
    ]
    return chart


def bar_list(
    items: list[tuple[str, int]],
    *,
    title: str,
    description: str,
    value_label: str,
    width: int = 480,
    row_height: int = 26,
) -> Chart:
    """Horizontal bars, one row per (label, value), largest first as given."""
    left, right = 60, 70
    height = max(len(items), 1) * row_height + 8
    largest = max((v for _, v in items), default=0) or 1
    chart = Chart(width, height, title, description)
    plot_w = width - left - right
    for i, (label, value) in enumerate(items):
        y = 4 + i * row_height
        w = value / largest * plot_w
        chart.bars.append(
            Bar(
                left,
                y + 3,
                w,
                row_height - 8,
                f"series-{i % SERIES_CLASSES}",
                f"{label}: {value:,}",
            )
        )
        chart.labels.append(Label(left - 8, y + row_height / 2 + 4, label or "(none)", "end"))
        chart.labels.append(Label(left + w + 6, y + row_height / 2 + 4, f"{value:,}", "start"))
    chart.table_head = ["", value_label]
    chart.table_rows = [[label or "(none)", f"{value:,}"] for label, value in items]
    return chart
