"""A training's loss and Dice curves, from its logged metrics (Lightning's ``metrics.csv``), as inline SVG.

``metrics.csv`` has one row per logging call and a column per metric, empty where a row did not log it
(``epoch, step, train/loss, val/loss, val/dice_<class>, val/dice_mean, ...``). The charts are drawn on the server
(no chart library in the page, nothing for the Content-Security-Policy to allow): plain ``<polyline>`` elements whose
colours are SVG attributes, the classes' own colours from :mod:`semcoat.classes`.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass

from semcoat.classes import BACKGROUND, CLASSES

MAX_CSV_BYTES = 20_000_000
MAX_POINTS = 2000
LOSS_SERIES = (("train/loss", "training loss", (47, 111, 219)), ("val/loss", "validation loss", (230, 120, 20)))
MEAN_DICE = ("val/dice_mean", "mean Dice", (29, 36, 48))
WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


@dataclass(frozen=True)
class Series:
    """One curve: its column, label, colour and (step, value) points in step order."""

    column: str
    label: str
    rgb: tuple[int, int, int]
    points: tuple[tuple[float, float], ...]


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def read_series(csv_text: str, columns: tuple[tuple[str, str, tuple[int, int, int]], ...]) -> list[Series]:
    """The curves of ``columns`` (column, label, colour) that hold at least one number, against ``step`` (the row
    number where a row has no step). Non-numbers, NaN and infinities are skipped; long runs are thinned evenly to
    :data:`MAX_POINTS`."""
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    found = []
    for column, label, rgb in columns:
        points = []
        for index, row in enumerate(rows):
            value = _number(row.get(column))
            if value is not None:
                step = _number(row.get("step"))
                points.append((step if step is not None else float(index), value))
        if points:
            points.sort(key=lambda p: p[0])
            if len(points) > MAX_POINTS:
                keep = {round(i * (len(points) - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)}
                points = [p for i, p in enumerate(points) if i in keep]
            found.append(Series(column, label, rgb, tuple(points)))
    return found


def dice_columns() -> tuple[tuple[str, str, tuple[int, int, int]], ...]:
    """The validation Dice columns: the mean, then each class but the background, in the class table's colours."""
    return (MEAN_DICE, *((f"val/dice_{c.name}", c.label, c.color_rgb) for c in CLASSES if c.id != BACKGROUND))


def curves(csv_text: str) -> tuple[list[Series], list[Series]]:
    """(loss curves, Dice curves) of a metrics CSV; empty lists where nothing was logged."""
    return read_series(csv_text, LOSS_SERIES), read_series(csv_text, dice_columns())


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    span = high - low
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _label(value: float) -> str:
    return f"{value:.3g}"


def chart_svg(series: list[Series], title: str, y_label: str, y_range: tuple[float, float] | None = None) -> str:
    """An SVG line chart of ``series`` against the training step: axes, grid, tick labels, a title (the page shows
    the legend). ``y_range`` fixes the value axis (Dice: 0 to 1); otherwise it spans the values."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y_low, y_high = y_range if y_range is not None else ((min(ys), max(ys)) if ys else (0.0, 1.0))
    if x_high == x_low:
        x_high = x_low + 1
    if y_high == y_low:
        y_high = y_low + 1
    y_ticks = _ticks(y_low, y_high)
    y_low, y_high = min(y_low, y_ticks[0]), max(y_high, y_ticks[-1])
    x_ticks = [t for t in _ticks(x_low, x_high, 6) if x_low <= t <= x_high]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def py(y: float) -> float:
        return TOP + (1 - (y - y_low) / (y_high - y_low)) * plot_h

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}">',
             f"<title>{html.escape(title)}</title>"]
    for t in y_ticks:
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py(t):.1f}" y2="{py(t):.1f}"/>'
                     f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{_label(t)}</text>')
    for t in x_ticks:
        parts.append(f'<text x="{px(t):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{_label(t)}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>'
                 f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" '
                 f'y2="{HEIGHT - BOTTOM}"/>'
                 f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle">step</text>'
                 f'<text x="14" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {TOP + plot_h / 2:.0f})">{html.escape(y_label)}</text>')
    for s in series:
        red, green, blue = s.rgb
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        width = 3 if s.column == MEAN_DICE[0] else 2
        parts.append(f'<polyline class="series" stroke="rgb({red},{green},{blue})" stroke-width="{width}" '
                     f'points="{points}"><title>{html.escape(s.label)}</title></polyline>')
        if len(s.points) == 1:
            (x, y), = s.points
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="rgb({red},{green},{blue})"/>')
    parts.append("</svg>")
    return "".join(parts)
