"""Figures of a report that compares models: each model a coloured series, the ground truth in black.

matplotlib's object API (no pyplot state, no display); figures come back as PNG bytes, as in :mod:`analysis.plots`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analysis import plots
from semcoat.measurements import label

# One colour per model, in the order the models are given (colour-blind-safe Okabe-Ito hues); truth is black.
MODEL_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
TRUTH_COLOUR = "#000000"

Pairs = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def model_colour(index: int) -> str:
    """The colour of the ``index``-th model (cycling after six)."""
    return MODEL_COLOURS[index % len(MODEL_COLOURS)]


def series_colour(series: Sequence[str], name: str, truth_series: str | None) -> str:
    """The colour of series ``name``: black for the truth, else its model's colour by its place among the models
    (the truth left out), so a model keeps its colour in every figure whether or not it has values there."""
    if name == truth_series:
        return TRUTH_COLOUR
    return model_colour([s for s in series if s != truth_series].index(name))


def _plain_ticks(ax: Any) -> None:
    ax.ticklabel_format(axis="both", style="plain", useOffset=False)


def series_legend(model: str, mae: float, r2: float) -> str:
    """A parity series' legend entry: the model, its MAE and (when defined) R²."""
    r2_text = f", R² {r2:.2f}" if math.isfinite(r2) else ""
    return f"{model}: MAE {mae:.3g}{r2_text}"


def parity_compare_figure(pairs_by_model: Mapping[str, Pairs]) -> bytes:
    """Predicted vs true per measurement, one panel each, every model a series ({model: {name: (predicted, true)}}),
    with the identity line and each model's MAE and R² in the legend."""
    names = [n for n in dict.fromkeys(n for pairs in pairs_by_model.values() for n in pairs)]
    fig, axes = plots._figure(len(names), panel_in=3.6, columns=3)
    for ax, name in zip(axes, names, strict=False):
        values: list[float] = []
        for i, (model, pairs) in enumerate(pairs_by_model.items()):
            if name not in pairs:
                continue
            predicted, true = pairs[name]
            mae, r2 = plots.regression_metrics(predicted, true)
            ax.scatter(true, predicted, s=16, alpha=0.75, color=model_colour(i), label=series_legend(model, mae, r2))
            values += [*predicted, *true]
        low, high = plots.parity_limits(values)
        ax.plot([low, high], [low, high], color="0.5", lw=1, ls="--")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        _plain_ticks(ax)
        ax.set_xlabel(f"true {label(name)}")
        ax.set_ylabel("predicted")
        ax.legend(fontsize=7, loc="upper left")
    return plots._png(fig)


def histogram_compare_figure(values_by_series: Mapping[str, Mapping[str, Sequence[float]]],
                             truth_series: str | None = None) -> bytes:
    """One panel per measurement with a step histogram of each series ({series: {name: values}}), on shared bins;
    ``truth_series`` names the series drawn in black."""
    names = [n for n in dict.fromkeys(n for v in values_by_series.values() for n in v)]
    fig, axes = plots._figure(len(names), panel_in=3.4, columns=3)
    for ax, name in zip(axes, names, strict=False):
        every = [float(x) for v in values_by_series.values() for x in v.get(name, [])]
        low, high = (min(every), max(every)) if every else (0.0, 1.0)
        if high <= low:
            low, high = low - 0.5, high + 0.5
        bins = np.linspace(low, high, min(20, max(6, len(every) // 3)) + 1)
        for series, values in values_by_series.items():
            if name not in values or not values[name]:
                continue
            colour, width = series_colour(list(values_by_series), series, truth_series), 1.3
            if series == truth_series:
                width = 1.8
            ax.hist(np.asarray(values[name], float), bins=bins, histtype="step", lw=width, color=colour, label=series)
        _plain_ticks(ax)
        ax.set_xlabel(label(name))
        ax.set_ylabel("images")
        ax.legend(fontsize=7)
    return plots._png(fig)


def profiles_figure(thickness_by_series: Mapping[str, np.ndarray], pixel_size_um: float, title: str,
                    truth_series: str | None = None, order: Sequence[str] | None = None) -> bytes:
    """Fe2Al5 thickness along the width of one image, one line per series ({series: thickness per column, µm, NaN
    where not measured}); ``truth_series`` is drawn in black, behind the models. ``order``: every series of the
    report, for the colours (default: those given)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 2.6), layout="constrained")
    ax = fig.subplots()
    for series, thickness in thickness_by_series.items():
        x_um = np.arange(thickness.size) * pixel_size_um
        truth = series == truth_series
        ax.plot(x_um, thickness, color=series_colour(order or list(thickness_by_series), series, truth_series),
                lw=1.8 if truth else 1.0, label=series, zorder=1 if truth else 2)
    ax.set_xlabel("position along the surface (µm)")
    ax.set_ylabel("Fe2Al5 thickness (µm)")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return plots._png(fig)
