"""The HTML of a report that compares several models on the same images: which model is better at what, per-model
MAE / R² and per-class Dice against the ground truth, parity plots and distributions with a series per model, and per
image the ground truth and every model's overlay side by side.

Pure formatting of gathered :class:`analysis.report_data.ReportData` (one per model, each with its ``label``);
figures come back as PNG bytes, as in :mod:`analysis.report_html`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from analysis import files, report_plots
from analysis.measure import column_profile
from analysis.predict import overlay
from analysis.report_data import ReportData, TruthPictures, count_text, truth_match, truth_pictures
from analysis.report_html import (
    STYLE,
    error_text,
    fmt,
    html_table,
    img_tag,
    label_html,
    numeric_values,
    overlay_legend,
    provenance,
)
from analysis.report_scores import (
    DiceScore,
    MeasurementScore,
    SegmentationScores,
    aligned_truth,
    measurement_scores,
    segmentation_scores,
    value_pairs,
    who_is_better,
)
from semcoat import measurements
from semcoat.classes import CLASSES
from semcoat.measurements import MEASUREMENT_NAMES, NUMERIC_NAMES, YES_NO_NAMES
from semcoat.predictions import IMAGES_DIR, picture_path

TRUTH = "ground truth"
# Overlays side by side are shown at most this wide (pixels); the full-size ones stay in each prediction folder.
SIDE_BY_SIDE_MAX_PX = 640

_COMPARE_STYLE = """
.row { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 0.6em; }
.row figure { margin: 0; } figcaption { font-size: 0.85em; color: #4a5568; }
.best { font-weight: bold; background: #f0fff4; } ul.verdict li { margin: 0.3em 0; }
"""


def _shrunk_overlay_png(image: np.ndarray, mask: np.ndarray) -> bytes:
    import cv2

    rgb = overlay(image, mask)
    if rgb.shape[1] > SIDE_BY_SIDE_MAX_PX:
        rows = max(1, round(rgb.shape[0] * SIDE_BY_SIDE_MAX_PX / rgb.shape[1]))
        rgb = cv2.resize(rgb, (SIDE_BY_SIDE_MAX_PX, rows), interpolation=cv2.INTER_AREA)
    return files.png_bytes(np.ascontiguousarray(rgb))


def _figure_cell(png: bytes | None, caption: str, note: str = "") -> str:
    body = img_tag(png, caption) if png is not None else f'<p class="warning">{html.escape(note or "no picture")}</p>'
    return f"<figure>{body}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _names(models: Sequence[ReportData]) -> list[str]:
    """Every image of any model, in the first model's order, then the others'."""
    return list(dict.fromkeys(n for m in models for n in m.results))


def _best_cells(values: dict[str, float], higher_is_better: bool) -> set[str]:
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    if len(finite) < 2:
        return set()
    best = max(finite.values()) if higher_is_better else min(finite.values())
    return {k for k, v in finite.items() if v == best}


def _cell(text: str, best: bool) -> str:
    return f'<span class="best">{text}</span>' if best else text


def _failures(model: ReportData) -> str | None:
    failed = [r for r in model.predictions.values() if r.failed]
    if not failed:
        return None
    return (f"{html.escape(model.label)}: {count_text(len(failed), 'image', 'images')} of {len(model.predictions)} "
            f"failed ({html.escape(', '.join(r.image for r in failed[:6]))}{', …' if len(failed) > 6 else ''}); "
            "their measurements are missing from the scores")


def _verdict(models: Sequence[ReportData], scores: dict[str, dict[str, MeasurementScore]],
             dice: dict[str, dict[int, DiceScore]]) -> str:
    wins = who_is_better(scores, dice)
    class_labels = {c.name: c.label for c in CLASSES}
    items = []
    for model in models:
        won = wins.get(model.label, {"measurements": [], "classes": []})
        parts = []
        if won["measurements"]:
            parts.append("measures " + ", ".join(label_html(n) for n in won["measurements"]) + " closer to the truth")
        if won["classes"]:
            parts.append("segments " + ", ".join(html.escape(class_labels[c]) for c in won["classes"]) + " better")
        text = " and ".join(parts) if parts else "is better at nothing measured here"
        items.append(f"<li><strong>{html.escape(model.label)}</strong> {text}.</li>")
    items += [f'<li class="warning">{f}.</li>' for m in models if (f := _failures(m))]
    return ('<ul class="verdict">' + "".join(items) + "</ul><p>Closer: a lower mean absolute error (MAE) against the "
            "ground truth, or a higher accuracy for yes/no values; better segmented: a higher Dice. Differences under "
            "2 % of the MAE or 0.002 Dice count as ties.</p>")


def _measurement_table(models: Sequence[ReportData], scores: dict[str, dict[str, MeasurementScore]]) -> str:
    header = ["measurement"]
    for m in models:
        header += [f"{m.label}: n", f"{m.label}: MAE", f"{m.label}: R²"]
    rows = []
    for name in (*NUMERIC_NAMES, *YES_NO_NAMES):
        if not any(name in scores[m.label] for m in models):
            continue
        row = [label_html(name)]
        if name in YES_NO_NAMES:
            acc = {m.label: scores[m.label][name].accuracy for m in models if name in scores[m.label]}
            best = _best_cells({k: float(v) for k, v in acc.items() if v is not None}, higher_is_better=True)
            for m in models:
                s = scores[m.label].get(name)
                if s is None or s.accuracy is None:
                    row += ["0", "–", "–"]
                    continue
                row += [str(s.n), _cell(f"accuracy {s.accuracy:.0%}", m.label in best),
                        f"{s.missed} missed, {s.false} false"]
        else:
            best = _best_cells({m.label: scores[m.label][name].mae for m in models if name in scores[m.label]},
                               higher_is_better=False)
            for m in models:
                s = scores[m.label].get(name)
                if s is None:
                    row += ["0", "–", "–"]
                    continue
                row += [str(s.n), _cell(fmt(s.mae), m.label in best), fmt(s.r2)]
        rows.append(row)
    return html_table(header, rows)


def _dice_table(models: Sequence[ReportData], segmentation: dict[str, SegmentationScores]) -> str:
    header = ["class", *(f"{m.label}: Dice (images)" for m in models)]
    rows = []
    for c in CLASSES:
        scored = {m.label: segmentation[m.label].dice[c.id].mean for m in models if c.id in segmentation[m.label].dice}
        if not scored:
            continue
        best = _best_cells(scored, higher_is_better=True)
        row = [html.escape(c.label)]
        for m in models:
            d = segmentation[m.label].dice.get(c.id)
            row.append("–" if d is None else _cell(f"{d.mean:.3f} ({d.n_images})", m.label in best))
        rows.append(row)
    notes = [f"{html.escape(m.label)}: {count_text(len(s.skipped), 'image', 'images')} not scored "
             f"({html.escape('; '.join(f'{k}: {v}' for k, v in list(s.skipped.items())[:5]))})"
             for m in models if (s := segmentation[m.label]).skipped]
    return html_table(header, rows) + "".join(f'<p class="warning">{n}.</p>' for n in notes)


def _summary_without_truth(models: Sequence[ReportData]) -> str:
    header = ["measurement", *(f"{m.label}: mean ± std (n)" for m in models)]
    rows = []
    for name in NUMERIC_NAMES:
        cells = []
        for m in models:
            vals = np.asarray(numeric_values(m.results, name))
            cells.append(f"{fmt(float(vals.mean()))} ± {fmt(float(vals.std()))} ({vals.size})" if vals.size else "–")
        if any(c != "–" for c in cells):
            rows.append([label_html(name), *cells])
    for name in YES_NO_NAMES:
        cells = []
        for m in models:
            answers = [bool(v[name]) for v in m.results.values() if v.get(name) is not None]
            cells.append(f"{sum(answers)} yes of {len(answers)}" if answers else "–")
        rows.append([label_html(name), *cells])
    return html_table(header, rows)


def _truth_picture(name: str, models: Sequence[ReportData], pictures: TruthPictures) -> bytes | None:
    """The truth's overlay: its mask over its own image, or over the first model's analysed image (cropped alike)."""
    if name not in pictures.masks:
        return None
    mask = files.read_mask(pictures.masks[name])
    if name in pictures.images:
        return _shrunk_overlay_png(files.read_grey_image(pictures.images[name]), mask)
    for m in models:
        analysed = picture_path(m.results_csv.parent, IMAGES_DIR, name)
        if analysed.is_file():
            image = files.read_grey_image(analysed)
            truth = aligned_truth(image, mask)
            if truth is not None:
                return _shrunk_overlay_png(image, truth)
    return None


def _image_section(name: str, models: Sequence[ReportData], pictures: TruthPictures,
                   figures: dict[str, bytes]) -> str:
    truth = models[0].truth.get(name) if models[0].truth is not None else None
    cells = []
    if models[0].truth is not None:
        cells.append(_figure_cell(_truth_picture(name, models, pictures), TRUTH, "no true mask"))
    profiles: dict[str, np.ndarray] = {}
    size = next((m.pixel_size_um[name] for m in models if name in m.pixel_size_um), None)
    if size is not None and name in pictures.masks:
        profiles[TRUTH] = column_profile(files.read_mask(pictures.masks[name]), size).thickness_um
    for m in models:
        record = m.predictions.get(name)
        note = f"failed: {record.error}" if record is not None and record.failed else ""
        png = None
        if name in m.masks:
            analysed = picture_path(m.results_csv.parent, IMAGES_DIR, name)
            mask = files.read_mask(m.masks[name])
            image = files.read_grey_image(analysed) if analysed.is_file() else None
            if image is not None and image.shape == mask.shape:
                png = _shrunk_overlay_png(image, mask)
            if size is not None:
                profiles[m.label] = column_profile(mask, size).thickness_um
        cells.append(_figure_cell(png, m.label + (f" — {note}" if note else ""), note or "no prediction"))
    block = [f"<h3>{html.escape(name)}</h3>", '<div class="row">', *cells, "</div>"]
    if size is not None and profiles:
        key = f"profiles_{name}.png"
        figures[key] = report_plots.profiles_figure(profiles, size, f"{name}: Fe2Al5 thickness along the width",
                                                    truth_series=TRUTH, order=[TRUTH, *(m.label for m in models)])
        block.append(img_tag(figures[key], f"thickness profiles {name}"))
    header = ["measurement", *(["true"] if truth is not None else [])]
    for m in models:
        header += [m.label, *([f"{m.label} − true"] if truth is not None else [])]
    rows = []
    for n in MEASUREMENT_NAMES:
        row = [label_html(n), *([fmt(truth.get(n))] if truth is not None else [])]
        for m in models:
            value = m.results.get(name, {}).get(n)
            row += [fmt(value), *([error_text(value, truth.get(n))] if truth is not None else [])]
        rows.append(row)
    block.append(html_table(header, rows))
    return '<div class="image">' + "".join(block) + "</div>"


def _all_results(models: Sequence[ReportData]) -> str:
    header = ["image", "from", *(measurements.label(n) for n in MEASUREMENT_NAMES)]
    rows = []
    truth = models[0].truth
    for name in _names(models):
        if truth is not None and name in truth:
            rows.append([html.escape(name), TRUTH, *(fmt(truth[name].get(n)) for n in MEASUREMENT_NAMES)])
        for m in models:
            if name in m.results:
                rows.append([html.escape(name), html.escape(m.label),
                             *(fmt(m.results[name].get(n)) for n in MEASUREMENT_NAMES)])
    return '<div class="wide">' + html_table(header, rows) + "</div>"


def render_comparison_html(models: Sequence[ReportData], title: str = "Coating measurements: models compared",
                           max_images: int = 24) -> tuple[str, dict[str, bytes]]:
    """The page comparing ``models`` (gathered against the same truth, if any, each with a distinct ``label``) and its
    figures ({file name: PNG bytes})."""
    figures: dict[str, bytes] = {}
    names = _names(models)
    truth = models[0].truth
    pictures = truth_pictures(Path(models[0].truth_source)) if models[0].truth_source else TruthPictures({}, {})
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{count_text(len(names), 'image', 'images')}, {count_text(len(models), 'model', 'models')}: "
        f"{html.escape(', '.join(m.label for m in models))}"
        + (f"; ground truth from {html.escape(models[0].truth_source or '')}" if truth is not None else "") + ".</p>",
        "<ul>" + "".join(f"<li><strong>{html.escape(m.label)}</strong>: {html.escape(str(m.results_csv))}. "
                         f"{html.escape(provenance(m))}</li>" for m in models) + "</ul>",
        "<h2>Summary</h2>",
    ]
    if truth is not None:
        scores = {m.label: measurement_scores(m.results, truth) for m in models}
        segmentation = {m.label: segmentation_scores(m.masks, pictures.masks, list(m.results)) for m in models}
        dice = {label: s.dice for label, s in segmentation.items()}
        matched = [truth_match(m) for m in models]
        parts.append(_verdict(models, scores, dice))
        parts += [f'<p class="warning">{html.escape(m.label)}: {html.escape(r)}.</p>'
                  for m, (_, reasons) in zip(models, matched, strict=True) for r in reasons]
        parts += ["<h3>Measurements against ground truth</h3>",
                  "<p>Per model: images with both values (n), mean absolute error (MAE, in the measurement's unit) "
                  "and R²; the best MAE of each row is highlighted.</p>", _measurement_table(models, scores)]
        if any(s.dice for s in segmentation.values()):
            parts += ["<h3>Segmentation against the true masks</h3>",
                      "<p>Dice per class, the mean over the images whose true mask holds the class (how many in "
                      "brackets); the best of each row is highlighted.</p>", _dice_table(models, segmentation)]
        pairs = {m.label: {n: _float_pairs(m, n) for n in NUMERIC_NAMES if _float_pairs(m, n)[0]} for m in models}
        if any(pairs.values()):
            figures["parity.png"] = report_plots.parity_compare_figure(pairs)
            parts += ["<h2>Against ground truth</h2>", img_tag(figures["parity.png"], "parity plots")]
    else:
        parts.append(_summary_without_truth(models))
    series = {**({TRUTH: {n: numeric_values(truth, n) for n in NUMERIC_NAMES}} if truth is not None else {}),
              **{m.label: {n: numeric_values(m.results, n) for n in NUMERIC_NAMES} for m in models}}
    series = {k: {n: v for n, v in s.items() if v} for k, s in series.items()}
    if any(series.values()):
        figures["histograms.png"] = report_plots.histogram_compare_figure(series, truth_series=TRUTH)
        parts += ["<h2>Distributions</h2>", img_tag(figures["histograms.png"], "histograms")]
    parts += ["<h2>Images</h2>", overlay_legend(),
              f"<p>Side by side at most {SIDE_BY_SIDE_MAX_PX} px wide; full-size overlays are in each model's "
              "prediction folder (<code>overlays/</code>).</p>"]
    parts += [_image_section(name, models, pictures, figures) for name in names[:max_images]]
    parts += ["<h2>All results</h2>", _all_results(models)]
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}{_COMPARE_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    return page, figures


def _float_pairs(model: ReportData, name: str) -> tuple[list[float], list[float]]:
    assert model.truth is not None
    predicted, true = value_pairs(model.results, model.truth, name)
    return [float(v) for v in predicted], [float(v) for v in true]
