"""Figures of the report, drawn with matplotlib's object API (no pyplot state, no display) and returned as PNG bytes."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from semcoat.measurements import label


def _figure(n_panels: int, panel_in: float = 3.2, columns: int = 4) -> tuple[Any, np.ndarray]:
    from matplotlib.figure import Figure

    cols = max(1, min(columns, n_panels))
    rows = max(1, math.ceil(n_panels / cols))
    fig = Figure(figsize=(panel_in * cols, panel_in * rows * 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


# R² is only defined (else NaN, shown as "–") with at least R2_MIN_POINTS pairs and a truth that varies: its
# population standard deviation must exceed R2_MIN_RELATIVE_STD x |mean| + R2_MIN_ABSOLUTE_STD. Below that the
# denominator sum((t - mean t)²) is rounding noise or sub-resolution jitter, and R² becomes a meaningless large
# negative number (e.g. -1.01e+03 for a FeAl thickness that is the same in every image).
R2_MIN_POINTS = 3
R2_MIN_RELATIVE_STD = 1e-3
R2_MIN_ABSOLUTE_STD = 1e-9


def truth_varies(truth: Sequence[float] | np.ndarray) -> bool:
    """Whether R² of predictions against ``truth`` is meaningful (see ``R2_MIN_*``)."""
    t = np.asarray(truth, float)
    if t.size < R2_MIN_POINTS:
        return False
    return float(t.std()) > R2_MIN_RELATIVE_STD * abs(float(t.mean())) + R2_MIN_ABSOLUTE_STD


def regression_metrics(predicted: Sequence[float], truth: Sequence[float]) -> tuple[float, float]:
    """Mean absolute error and coefficient of determination R² of predicted against true values.

    R² = 1 - sum((p - t)²) / sum((t - mean t)²); NaN unless :func:`truth_varies` (at least ``R2_MIN_POINTS`` pairs
    and a truth standard deviation above ``R2_MIN_RELATIVE_STD`` x |mean| + ``R2_MIN_ABSOLUTE_STD``). MAE is NaN for
    no pairs.
    """
    p, t = np.asarray(predicted, float), np.asarray(truth, float)
    if p.size == 0:
        return math.nan, math.nan
    mae = float(np.mean(np.abs(p - t)))
    if not truth_varies(t):
        return mae, math.nan
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return mae, 1.0 - float(np.sum((p - t) ** 2)) / ss_tot


def parity_title(mae: float, r2: float, n: int) -> str:
    """Title of one parity panel: MAE, R² when it is defined (see :func:`regression_metrics`), number of pairs."""
    r2_text = f"   R² {r2:.3f}" if math.isfinite(r2) else ""
    return f"MAE {mae:.3g}{r2_text}   n={n}"


def parity_limits(values: Sequence[float]) -> tuple[float, float]:
    """Axis range of a parity panel: the values with 5 % of their span on each side, and never narrower than
    ±5 % of their centre (±1 when the centre is 0), so that a single point or identical values get a readable range.
    """
    if not values:
        return 0.0, 1.0
    low, high = float(min(values)), float(max(values))
    centre = (low + high) / 2
    half = max(0.55 * (high - low), 0.05 * abs(centre) or 1.0)
    return centre - half, centre + half


def _plain_ticks(ax: Any) -> None:
    """Tick labels written out in full: no offset ("+2.89e1") or power of ten above the axis, where the title is."""
    ax.ticklabel_format(axis="both", style="plain", useOffset=False)


def parity_axes_figure(pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> Any:
    """The matplotlib Figure of :func:`parity_figure`."""
    fig, axes = _figure(len(pairs))
    for ax, (name, (pred, true)) in zip(axes, pairs.items(), strict=False):
        mae, r2 = regression_metrics(pred, true)
        ax.scatter(true, pred, s=14, alpha=0.7, color="#2b6cb0")
        low, high = parity_limits([*pred, *true])
        ax.plot([low, high], [low, high], color="0.5", lw=1, ls="--")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        _plain_ticks(ax)
        ax.set_xlabel(f"true {label(name)}")
        ax.set_ylabel("predicted")
        ax.set_title(parity_title(mae, r2, len(pred)), fontsize=9)
    return fig


def parity_figure(pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> bytes:
    """Predicted vs true scatter per measurement ({name: (predicted, truth)}), with the identity line, MAE and R².

    Tick labels are plain numbers (no offset); see :func:`parity_limits` for the range.
    """
    return _png(parity_axes_figure(pairs))


def histogram_figure(values: Mapping[str, Sequence[float]]) -> bytes:
    """One histogram per measurement ({name: values over the images})."""
    fig, axes = _figure(len(values))
    for ax, (name, vals) in zip(axes, values.items(), strict=False):
        ax.hist(np.asarray(vals, float), bins=min(30, max(5, len(vals) // 2)), color="#2f855a", alpha=0.85)
        _plain_ticks(ax)
        ax.set_xlabel(label(name))
        ax.set_ylabel("images")
    return _png(fig)


def thickness_profile_figure(
    thickness_um: np.ndarray, pixel_size_um: float, line_depth_um: float | None, title: str
) -> bytes:
    """Fe2Al5 thickness along the width (NaN columns left blank), with its mean and the pore line's depth."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 2.4), layout="constrained")
    ax = fig.subplots()
    x_um = np.arange(thickness_um.size) * pixel_size_um
    ax.plot(x_um, thickness_um, color="#2b6cb0", lw=1, label="Fe2Al5 band")
    if np.any(np.isfinite(thickness_um)):
        ax.axhline(float(np.nanmean(thickness_um)), color="0.3", lw=1, ls="--", label="mean")
    if line_depth_um is not None:
        ax.axhline(line_depth_um, color="#c53030", lw=1, ls=":", label="pore line depth")
    ax.set_xlabel("position along the surface (µm)")
    ax.set_ylabel("thickness (µm)")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)
