"""The HTML of a report: summary, parity against truth, distributions, per-image views, all results.

Pure formatting of a gathered :class:`analysis.report_data.ReportData`; figures come back as PNG bytes to embed and to
save beside the page.
"""

from __future__ import annotations

import base64
import html
import math
from typing import Any

import numpy as np

from analysis import files, plots
from analysis.measure import column_profile
from analysis.report_data import ReportData, Table, count_text, truth_match
from semcoat import measurements
from semcoat.measurements import MEASUREMENT_NAMES, NUMERIC_NAMES, PIXEL_SIZE_COLUMN, YES_NO_NAMES
from semcoat.predictions import OVERLAY_ALPHA, PIXEL_SIZE_FROM_OPTION


def fmt(value: Any) -> str:
    """A value for a table cell: "–" for none or NaN, yes/no for booleans, 3 significant digits, HTML-escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def numeric_values(table: Table, name: str) -> list[float]:
    """The values of measurement ``name`` over the images of ``table`` that have one."""
    return [float(v[name]) for v in table.values() if v.get(name) is not None]


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` embedding PNG bytes as a data URL (the page stays one self-contained file)."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def html_table(header: list[str], rows: list[list[str]]) -> str:
    """A table of escaped header texts and rows of ready HTML cells."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _truth_sections(data: ReportData, figures: dict[str, bytes]) -> list[str]:
    assert data.truth is not None
    common = [k for k in data.results if k in data.truth]
    _, reasons = truth_match(data)
    parts = [
        f"<h2>Against ground truth</h2><p>{len(common)} images matched in {html.escape(data.truth_source or '')}"
        f" ({len(data.results)} results, {len(data.truth)} truths).</p>",
        *(f'<p class="warning">{html.escape(r)}.</p>' for r in reasons),
    ]
    pairs: dict[str, tuple[list[float], list[float]]] = {}
    rows = []
    for name in NUMERIC_NAMES:
        both = [(data.results[k][name], data.truth[k][name]) for k in common]
        both = [(float(p), float(t)) for p, t in both if p is not None and t is not None]
        if not both:
            continue
        pairs[name] = ([p for p, _ in both], [t for _, t in both])
        mae, r2 = plots.regression_metrics(*pairs[name])
        rows.append([label_html(name), str(len(both)), fmt(mae), fmt(r2)])
    for name in YES_NO_NAMES:
        both = [(data.results[k][name], data.truth[k][name]) for k in common]
        both = [(p, t) for p, t in both if p is not None and t is not None]
        if both:
            agree = sum(p == t for p, t in both) / len(both)
            missed = sum(t and not p for p, t in both)
            false = sum(p and not t for p, t in both)
            rows.append([label_html(name), str(len(both)), f"accuracy {agree:.1%}", f"{missed} missed, {false} false"])
    parts.append(html_table(["measurement", "n", "MAE", "R²"], rows))
    if pairs:
        figures["parity.png"] = plots.parity_figure(pairs)
        parts.append(img_tag(figures["parity.png"], "parity plots"))
    return parts


def label_html(name: str) -> str:
    """The human label of a measurement (as in the Summary), HTML-escaped; files keep the machine names."""
    return html.escape(measurements.label(name))


def error_text(predicted: Any, true: Any) -> str:
    """Predicted minus true for numbers, agrees/differs for yes/no values, "–" when either is missing."""
    if predicted is None or true is None:
        return "–"
    if isinstance(predicted, bool) or isinstance(true, bool):
        return "agrees" if predicted == true else "differs"
    return f"{float(predicted) - float(true):+.3g}"


def overlay_legend() -> str:
    """The overlays' colour key: every class's colour swatch and label (from :data:`semcoat.classes.CLASSES`)."""
    from semcoat.classes import BACKGROUND, CLASSES

    items = []
    for c in sorted(CLASSES, key=lambda c: c.id):
        if c.id == BACKGROUND:
            continue
        r, g, b = c.color_rgb
        items.append(
            f'<span class="key"><span class="swatch" style="background: rgb({r}, {g}, {b})"></span>'
            f"{html.escape(c.label)}</span>"
        )
    background = next(c.label for c in CLASSES if c.id == BACKGROUND)
    return (
        f'<p class="legend">Overlay colours (blended at {OVERLAY_ALPHA:.0%} over the micrograph): {" ".join(items)}; '
        f"{html.escape(background)}: not coloured.</p>"
    )


def _image_sections(data: ReportData, figures: dict[str, bytes], max_images: int) -> list[str]:
    parts = []
    legend_shown = False
    for name in list(data.results)[:max_images]:
        values = data.results[name]
        block = [f"<h3>{html.escape(name)}</h3>"]
        record = data.predictions.get(name)
        if record is not None and record.failed:
            block.append(f'<p class="warning">Failed: {html.escape(str(record.error or "unknown error"))}</p>')
        if name in data.overlays:
            if not legend_shown:
                block.append(overlay_legend())
                legend_shown = True
            block.append(img_tag(data.overlays[name].read_bytes(), f"overlay {name}"))
        size = data.pixel_size_um.get(name)
        if name in data.masks and size is not None:
            profile = column_profile(files.read_mask(data.masks[name]), size)
            key = f"profile_{name}.png"
            figures[key] = plots.thickness_profile_figure(
                profile.thickness_um, size, values.get("pore_line_depth_um"), f"{name}: thickness along the width"
            )
            block.append(img_tag(figures[key], f"thickness profile {name}"))
        truth = data.truth.get(name) if data.truth is not None else None
        if truth is not None:
            cells = [
                [label_html(n), fmt(values.get(n)), fmt(truth.get(n)), error_text(values.get(n), truth.get(n))]
                for n in MEASUREMENT_NAMES
            ]
            block.append(html_table(["measurement", "predicted", "true", "error (predicted − true)"], cells))
        else:
            cells = [[label_html(n), fmt(values.get(n))] for n in MEASUREMENT_NAMES]
            block.append(html_table(["measurement", "value"], cells))
        parts.append('<div class="image">' + "".join(block) + "</div>")
    return parts


# How the page names the origin of a pixel size (the commands' option is how users gave one).
_ORIGINS = {PIXEL_SIZE_FROM_OPTION: "--pixel-size-um", "thermo-fei": "Thermo/FEI metadata", "zeiss": "Zeiss metadata"}


def provenance(data: ReportData) -> str:
    """Sentences saying where the results came from: the model, and the pixel sizes with their origins."""
    if not data.predictions:
        sizes = [v.get("pixel_size_um") for v in data.results.values()]
        counts: dict[str, int] = {}
        for size in sizes:
            if size is not None:
                counts[f"{size:.6g} µm/px"] = counts.get(f"{size:.6g} µm/px", 0) + 1
        if not counts:
            return "No record of the model or the pixel sizes (a table without them, and no predictions.json)."
        shown = "; ".join(f"{k} ({count_text(n, 'image', 'images')})" for k, n in counts.items())
        return f"Pixel sizes, from the table: {shown}. No record of the model (no predictions.json next to the table)."
    models = sorted({str(r.model) for r in data.predictions.values() if r.model})
    model = ", ".join(models) if models else "not recorded (predictions.json of an earlier version)"
    groups: dict[str, int] = {}
    for rec in data.predictions.values():
        if rec.pixel_size_um is None:
            key = "no pixel size"
        else:
            origin = _ORIGINS.get(str(rec.pixel_size_from), str(rec.pixel_size_from))
            key = f"{float(rec.pixel_size_um):.6g} µm/px from {origin}"
            meta = rec.metadata_pixel_size_um
            if rec.pixel_size_from == PIXEL_SIZE_FROM_OPTION and meta is not None:
                key += f" (the file's metadata: {float(meta):.6g} µm/px)"
        groups[key] = groups.get(key, 0) + 1
    shown = "; ".join(f"{k} ({count_text(n, 'image', 'images')})" for k, n in groups.items())
    failed = sum(r.failed for r in data.predictions.values())
    failures = f" {count_text(failed, 'image', 'images')} failed (marked below)." if failed else ""
    return f"Predicted by model {model}. Pixel sizes: {shown}.{failures}"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #1a202c; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #cbd5e0; padding: 0.25em 0.6em; text-align: right; }
th { background: #edf2f7; } img { max-width: 100%; display: block; margin: 0.5em 0; }
.warning { color: #9c4221; } .image { border-top: 1px solid #cbd5e0; margin-top: 1.5em; } .wide { overflow-x: auto; }
.key { margin-right: 1em; white-space: nowrap; }
.swatch { display: inline-block; width: 1em; height: 1em; margin-right: 0.3em; vertical-align: middle;
  border: 1px solid #4a5568; }
"""


def render_html(data: ReportData, title: str = "Coating measurements", max_images: int = 24) -> tuple[str, dict]:
    """The report page and its figures ({file name: PNG bytes})."""
    figures: dict[str, bytes] = {}
    summary_rows = []
    for name in NUMERIC_NAMES:
        vals = numeric_values(data.results, name)
        if vals:
            a = np.asarray(vals)
            summary_rows.append(
                [
                    label_html(name),
                    str(a.size),
                    fmt(float(a.mean())),
                    fmt(float(a.std())),
                    fmt(float(a.min())),
                    fmt(float(a.max())),
                ]
            )
    for name in YES_NO_NAMES:
        vals = [v[name] for v in data.results.values() if v.get(name) is not None]
        if vals:
            summary_rows.append([label_html(name), str(len(vals)), f"{sum(vals)} yes", "", "", ""])
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(data.results)} images from {html.escape(str(data.results_csv))}. {html.escape(provenance(data))}</p>",
        "<h2>Summary</h2>",
        html_table(["measurement", "n", "mean", "std", "min", "max"], summary_rows),
    ]
    if data.truth is not None:
        parts += _truth_sections(data, figures)
    histograms = {n: numeric_values(data.results, n) for n in NUMERIC_NAMES}
    histograms = {n: v for n, v in histograms.items() if v}
    if histograms:
        figures["histograms.png"] = plots.histogram_figure(histograms)
        parts += ["<h2>Distributions</h2>", img_tag(figures["histograms.png"], "histograms")]
    parts += ["<h2>Images</h2>", *_image_sections(data, figures, max_images)]
    all_rows = [
        [
            html.escape(k),
            fmt(v[PIXEL_SIZE_COLUMN] if v.get(PIXEL_SIZE_COLUMN) is not None else data.pixel_size_um.get(k)),
            *(fmt(v.get(n)) for n in MEASUREMENT_NAMES),
        ]
        for k, v in data.results.items()
    ]
    header = ["image", "Pixel size (µm)", *(measurements.label(n) for n in MEASUREMENT_NAMES)]
    parts += ["<h2>All results</h2>", '<div class="wide">', html_table(header, all_rows), "</div>"]
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    return page, figures
