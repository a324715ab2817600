"""A training's curves on their own: ``metrics.csv`` read per column against the step (blanks, non-numbers and
NaN skipped, long runs thinned), the Dice columns in the class table's colours, and the SVG chart's geometry."""

from __future__ import annotations

import re

from render_service.dashboard.curves import MAX_POINTS, chart_svg, curves, read_series
from semcoat.classes import CLASSES, PORE

METRICS = """epoch,lr-AdamW,step,train/loss,val/dice_fe2al5,val/dice_pore,val/dice_mean,val/loss
,0.002,0,,,,,
0,,9,1.5,,,,
0,,19,1.2,,,,
0,,19,,0.61,0.20,0.40,1.30
1,,29,0.9,,,,
1,,39,nan,,,,
1,,39,,0.82,0.45,0.63,0.95
"""


def test_curves_are_read_per_column_against_the_step_skipping_blanks_and_non_numbers() -> None:
    loss, dice = curves(METRICS)
    assert [s.column for s in loss] == ["train/loss", "val/loss"]
    assert loss[0].points == ((9.0, 1.5), (19.0, 1.2), (29.0, 0.9))  # nan skipped
    assert loss[1].points == ((19.0, 1.3), (39.0, 0.95))
    assert [s.column for s in dice] == ["val/dice_mean", "val/dice_fe2al5", "val/dice_pore"]  # classes logged only
    assert dice[2].rgb == CLASSES[PORE].color_rgb and dice[2].label == CLASSES[PORE].label
    assert curves("") == ([], []) and curves("not,a\ncsv") == ([], [])


def test_a_long_run_is_thinned_to_the_point_limit_keeping_both_ends() -> None:
    text = "step,train/loss\n" + "".join(f"{i},{1 / (i + 1)}\n" for i in range(5 * MAX_POINTS))
    (series,) = read_series(text, (("train/loss", "loss", (0, 0, 0)),))
    assert len(series.points) == MAX_POINTS
    assert series.points[0][0] == 0 and series.points[-1][0] == 5 * MAX_POINTS - 1


def test_the_chart_draws_one_polyline_per_series_inside_its_frame() -> None:
    loss, dice = curves(METRICS)
    svg = chart_svg(dice, "Validation Dice", "Dice", (0.0, 1.0))
    lines = re.findall(r'<polyline [^>]*points="([^"]+)"', svg)
    assert len(lines) == len(dice)
    coords = [tuple(map(float, p.split(","))) for line in lines for p in line.split()]
    assert all(0 <= x <= 720 and 0 <= y <= 300 for x, y in coords)
    mean = [tuple(map(float, p.split(","))) for p in lines[0].split()]
    assert mean[0][1] > mean[1][1]  # 0.40 then 0.63: the later point is higher up (smaller y)
    r, g, b = CLASSES[PORE].color_rgb
    assert f'stroke="rgb({r},{g},{b})"' in svg and "<script" not in svg and "style=" not in svg
    assert chart_svg([], "empty", "loss").startswith("<svg")
