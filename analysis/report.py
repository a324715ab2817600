"""The HTML report of a set of measurements: summary, parity plots against truth, histograms, per-image views.

The report is one self-contained ``report.html`` (figures embedded as PNG data) next to a ``figures/`` folder that
holds the same PNGs for reuse in papers and slides.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis import files, plots
from analysis.measure import column_profile, measure
from analysis.predict import PREDICTIONS_JSON, RESULTS_CSV
from semcoat import measurements
from semcoat.measurements import MEASUREMENT_NAMES, NUMERIC_NAMES, PIXEL_SIZE_COLUMN, YES_NO_NAMES

Table = dict[str, dict[str, Any]]


@dataclass
class ReportData:
    """Everything the report shows, gathered from the results folder and the truth.

    ``truth_names`` are all the images the truth source holds (matched or not); ``truth_unsized`` the results'
    images whose labelled truth mask was found but not measured, for want of a pixel size. ``predictions`` are the
    records of ``predictions.json`` by image (empty for a bare measurements CSV).
    """

    results_csv: Path
    results: Table
    truth: Table | None = None
    truth_source: str | None = None
    overlays: dict[str, Path] = field(default_factory=dict)
    masks: dict[str, Path] = field(default_factory=dict)
    pixel_size_um: dict[str, float] = field(default_factory=dict)
    truth_names: list[str] = field(default_factory=list)
    truth_unsized: list[str] = field(default_factory=list)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)


def _results_csv(results: Path) -> Path:
    if results.is_dir():
        candidate = results / RESULTS_CSV
        if not candidate.is_file():
            raise FileNotFoundError(f"{results}: no {RESULTS_CSV} in this folder (is it a `semcoat predict` output?)")
        return candidate
    if not results.is_file():
        raise FileNotFoundError(f"{results}: no such results file or folder")
    return results


def truth_kind(truth: Path) -> str:
    """``"csv"`` (a file), ``"dataset"`` (a folder with dataset.json) or ``"masks"`` (another folder).

    Raises
    ------
    FileNotFoundError
        When ``truth`` does not exist.
    """
    from semcoat.dataset import DATASET_FILE

    if truth.is_file():
        return "csv"
    if (truth / DATASET_FILE).is_file():
        return "dataset"
    if truth.is_dir():
        return "masks"
    raise FileNotFoundError(f"{truth}: no such truth file or folder")


@dataclass(frozen=True)
class TruthRead:
    """Truth measurements by image stem, every image name the source holds, and the masks left unmeasured."""

    table: Table
    names: list[str]
    unsized: list[str]


def read_truth_details(
    truth: Path, pixel_size_um: dict[str, float] | None = None, wanted: set[str] | None = None
) -> TruthRead:
    """Like :func:`read_truth`, also saying which images the source holds and which masks had no pixel size.

    ``wanted`` (the results' images) limits which labelled masks are measured; masks of wanted images without a
    pixel size in ``pixel_size_um`` are listed in ``unsized``.
    """
    from semcoat.dataset import read_dataset

    kind = truth_kind(truth)
    if kind == "csv":
        table = files.read_results_csv(truth)
        return TruthRead(table, list(table), [])
    if kind == "dataset":
        ds = read_dataset(truth)
        table = {}
        for sid in ds.ids:
            values = ds.meta(sid).get("truth")
            if not values:
                values = measure(
                    files.read_mask(ds.mask_path(sid)), ds.info.pixel_size_um, str(ds.mask_path(sid))
                ).as_dict()
            table[sid] = {n: values.get(n) for n in MEASUREMENT_NAMES}
        return TruthRead(table, list(table), [])
    sizes = pixel_size_um or {}
    table, names, unsized = {}, [], []
    for src in files.resolve_masks([truth]):
        stem = src.path.stem
        names.append(stem)
        if wanted is not None and stem not in wanted:
            continue  # a labelled mask for an image that was not predicted
        if stem not in sizes:
            unsized.append(stem)
            continue
        table[stem] = files.measure_file(src.path, sizes[stem]).as_dict()
    return TruthRead(table, names, unsized)


def read_truth(truth: Path, pixel_size_um: dict[str, float] | None = None) -> Table:
    """Ground-truth measurements by image stem.

    Parameters
    ----------
    truth : Path
        A CSV as written by ``semcoat measure``; a dataset folder (``meta/<id>.json`` truth, or its masks measured at
        the dataset's pixel size when a meta file has none); or a folder of labelled masks (``masks/`` or the folder
        itself), measured at the pixel sizes given for the same images (masks without one are left out).
    pixel_size_um : dict, optional
        µm per pixel by image stem, for labelled masks outside a dataset.
    """
    return read_truth_details(truth, pixel_size_um, set(pixel_size_um or {})).table


def gather(
    results: str | Path, truth: str | Path | None = None, truth_pixel_size_um: float | None = None
) -> ReportData:
    """Collect the results table, the images next to it and the truth (see :func:`read_truth`).

    Labelled truth masks are measured at ``truth_pixel_size_um`` when given, else at the pixel sizes that
    ``predictions.json`` records for the same images.

    Raises
    ------
    ValueError
        When ``truth_pixel_size_um`` is not a positive finite number, or is given for a truth that is not a folder
        of masks (a CSV or a dataset folder carries its own scale).
    """
    files.check_pixel_size(truth_pixel_size_um)
    csv_path = _results_csv(Path(results))
    data = ReportData(csv_path, files.read_results_csv(csv_path))
    folder = csv_path.parent
    predictions = folder / PREDICTIONS_JSON
    if predictions.is_file():
        for rec in json.loads(predictions.read_text(encoding="utf-8")):
            data.predictions[rec["image"]] = rec
            if rec.get("pixel_size_um") is not None:
                data.pixel_size_um[rec["image"]] = float(rec["pixel_size_um"])
    for name in data.results:
        if (folder / "overlays" / f"{name}.png").is_file():
            data.overlays[name] = folder / "overlays" / f"{name}.png"
        if (folder / "masks" / f"{name}.png").is_file():
            data.masks[name] = folder / "masks" / f"{name}.png"
    if truth is None:
        if truth_pixel_size_um is not None:
            raise ValueError("--pixel-size-um applies to a --truth folder of masks; no --truth was given")
        return data
    truth = Path(truth)
    kind = truth_kind(truth)
    sizes = data.pixel_size_um
    if truth_pixel_size_um is not None:
        if kind != "masks":
            what = "a CSV of measurements" if kind == "csv" else "a dataset folder (its dataset.json has the size)"
            raise ValueError(
                f"--pixel-size-um {truth_pixel_size_um} applies to a --truth folder of masks; {truth} is {what}"
            )
        sizes = {name: truth_pixel_size_um for name in data.results}
    read = read_truth_details(truth, sizes, set(data.results))
    data.truth, data.truth_source = read.table, str(truth)
    data.truth_names, data.truth_unsized = read.names, read.unsized
    return data


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _some(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown}, … ({len(names)} in all)" if len(names) > limit else shown


def truth_match(data: ReportData) -> tuple[int, list[str]]:
    """How many results have a truth, and the reasons (sentences) why the others do not; no reasons when all match."""
    if data.truth is None:
        return 0, []
    matched = sum(k in data.truth for k in data.results)
    reasons = []
    if data.truth_unsized:
        reasons.append(
            f"{_count(len(data.truth_unsized), 'labelled mask has', 'labelled masks have')} in {data.truth_source} "
            f"no pixel size to be measured at "
            f"({_some(data.truth_unsized)}): pass --pixel-size-um, or report on the `semcoat predict` output folder, "
            f"whose predictions.json records each image's pixel size"
        )
    unsized = set(data.truth_unsized)
    missing = [k for k in data.results if k not in data.truth and k not in unsized]
    if missing:
        truth_only = [k for k in data.truth_names if k not in data.results]
        reasons.append(
            f"{_count(len(missing), 'result has', 'results have')} no truth of the same name in {data.truth_source}: "
            f"names differ "
            f"(results: {_some(missing)}; truth: {_some(truth_only) if truth_only else 'none'})"
        )
    return matched, reasons


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def _numeric(table: Table, name: str) -> list[float]:
    return [float(v[name]) for v in table.values() if v.get(name) is not None]


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
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
        rows.append([_label(name), str(len(both)), _fmt(mae), _fmt(r2)])
    for name in YES_NO_NAMES:
        both = [(data.results[k][name], data.truth[k][name]) for k in common]
        both = [(p, t) for p, t in both if p is not None and t is not None]
        if both:
            agree = sum(p == t for p, t in both) / len(both)
            missed = sum(t and not p for p, t in both)
            false = sum(p and not t for p, t in both)
            rows.append([_label(name), str(len(both)), f"accuracy {agree:.1%}", f"{missed} missed, {false} false"])
    parts.append(_table(["measurement", "n", "MAE", "R²"], rows))
    if pairs:
        figures["parity.png"] = plots.parity_figure(pairs)
        parts.append(_img(figures["parity.png"], "parity plots"))
    return parts


def _label(name: str) -> str:
    """The human label of a measurement (as in the Summary), HTML-escaped; files keep the machine names."""
    return html.escape(measurements.label(name))


def _error(predicted: Any, true: Any) -> str:
    """Predicted minus true for numbers, agrees/differs for yes/no values, "–" when either is missing."""
    if predicted is None or true is None:
        return "–"
    if isinstance(predicted, bool) or isinstance(true, bool):
        return "agrees" if predicted == true else "differs"
    return f"{float(predicted) - float(true):+.3g}"


def overlay_legend() -> str:
    """The overlays' colour key: every class's colour swatch and label (from :data:`semcoat.classes.CLASSES`)."""
    from analysis.predict import OVERLAY_ALPHA
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
        record = data.predictions.get(name, {})
        if record.get("failed"):
            block.append(f'<p class="warning">Failed: {html.escape(str(record.get("error") or "unknown error"))}</p>')
        if name in data.overlays:
            if not legend_shown:
                block.append(overlay_legend())
                legend_shown = True
            block.append(_img(data.overlays[name].read_bytes(), f"overlay {name}"))
        size = data.pixel_size_um.get(name)
        if name in data.masks and size is not None:
            profile = column_profile(files.read_mask(data.masks[name]), size)
            key = f"profile_{name}.png"
            figures[key] = plots.thickness_profile_figure(
                profile.thickness_um, size, values.get("pore_line_depth_um"), f"{name}: thickness along the width"
            )
            block.append(_img(figures[key], f"thickness profile {name}"))
        truth = data.truth.get(name) if data.truth is not None else None
        if truth is not None:
            cells = [
                [_label(n), _fmt(values.get(n)), _fmt(truth.get(n)), _error(values.get(n), truth.get(n))]
                for n in MEASUREMENT_NAMES
            ]
            block.append(_table(["measurement", "predicted", "true", "error (predicted − true)"], cells))
        else:
            cells = [[_label(n), _fmt(values.get(n))] for n in MEASUREMENT_NAMES]
            block.append(_table(["measurement", "value"], cells))
        parts.append('<div class="image">' + "".join(block) + "</div>")
    return parts


_ORIGINS = {"option": "--pixel-size-um", "thermo-fei": "Thermo/FEI metadata", "zeiss": "Zeiss metadata"}


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
        shown = "; ".join(f"{k} ({_count(n, 'image', 'images')})" for k, n in counts.items())
        return f"Pixel sizes, from the table: {shown}. No record of the model (no predictions.json next to the table)."
    models = sorted({str(r.get("model")) for r in data.predictions.values() if r.get("model")})
    model = ", ".join(models) if models else "not recorded (predictions.json of an earlier version)"
    groups: dict[str, int] = {}
    for rec in data.predictions.values():
        size = rec.get("pixel_size_um")
        if size is None:
            key = "no pixel size"
        else:
            origin = _ORIGINS.get(str(rec.get("pixel_size_from")), str(rec.get("pixel_size_from")))
            key = f"{float(size):.6g} µm/px from {origin}"
            meta = rec.get("metadata_pixel_size_um")
            if rec.get("pixel_size_from") == "option" and meta is not None:
                key += f" (the file's metadata: {float(meta):.6g} µm/px)"
        groups[key] = groups.get(key, 0) + 1
    shown = "; ".join(f"{k} ({_count(n, 'image', 'images')})" for k, n in groups.items())
    failed = sum(bool(r.get("failed")) for r in data.predictions.values())
    failures = f" {_count(failed, 'image', 'images')} failed (marked below)." if failed else ""
    return f"Predicted by model {model}. Pixel sizes: {shown}.{failures}"


_STYLE = """
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
        vals = _numeric(data.results, name)
        if vals:
            a = np.asarray(vals)
            summary_rows.append(
                [
                    _label(name),
                    str(a.size),
                    _fmt(float(a.mean())),
                    _fmt(float(a.std())),
                    _fmt(float(a.min())),
                    _fmt(float(a.max())),
                ]
            )
    for name in YES_NO_NAMES:
        vals = [v[name] for v in data.results.values() if v.get(name) is not None]
        if vals:
            summary_rows.append([_label(name), str(len(vals)), f"{sum(vals)} yes", "", "", ""])
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(data.results)} images from {html.escape(str(data.results_csv))}. {html.escape(provenance(data))}</p>",
        "<h2>Summary</h2>",
        _table(["measurement", "n", "mean", "std", "min", "max"], summary_rows),
    ]
    if data.truth is not None:
        parts += _truth_sections(data, figures)
    histograms = {n: _numeric(data.results, n) for n in NUMERIC_NAMES}
    histograms = {n: v for n, v in histograms.items() if v}
    if histograms:
        figures["histograms.png"] = plots.histogram_figure(histograms)
        parts += ["<h2>Distributions</h2>", _img(figures["histograms.png"], "histograms")]
    parts += ["<h2>Images</h2>", *_image_sections(data, figures, max_images)]
    all_rows = [
        [
            html.escape(k),
            _fmt(v[PIXEL_SIZE_COLUMN] if v.get(PIXEL_SIZE_COLUMN) is not None else data.pixel_size_um.get(k)),
            *(_fmt(v.get(n)) for n in MEASUREMENT_NAMES),
        ]
        for k, v in data.results.items()
    ]
    header = ["image", "Pixel size (µm)", *(measurements.label(n) for n in MEASUREMENT_NAMES)]
    parts += ["<h2>All results</h2>", '<div class="wide">', _table(header, all_rows), "</div>"]
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    return page, figures


def write_report(
    results: str | Path,
    out_dir: str | Path,
    truth: str | Path | None = None,
    title: str = "Coating measurements",
    max_images: int = 24,
    truth_pixel_size_um: float | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Path:
    """Write ``OUT/report.html`` and ``OUT/figures/*.png``; return the page's path.

    Parameters
    ----------
    results : str or Path
        A measurements CSV, or a ``semcoat predict`` output folder (its overlays, masks and pixel sizes are used).
    out_dir : str or Path
        Folder for the report (created). Checked before any work; ``report.html`` is written last, in one piece.
    truth : str or Path, optional
        Ground truth, see :func:`read_truth`.
    title : str
        Page title.
    max_images : int
        How many images get their own overlay, profile and table.
    truth_pixel_size_um : float, optional
        µm per pixel for a truth folder of masks (overrides the pixel sizes of ``predictions.json``).
    on_warning : callable, optional
        Called with a message when not every result matched a truth (how many did, and why the others did not).

    Raises
    ------
    files.OutputPathError
        When ``out_dir`` cannot be created or written.
    """
    out = Path(out_dir)
    files.check_output_dir(out)
    data = gather(results, truth, truth_pixel_size_um)
    if data.truth is not None and on_warning is not None:
        matched, reasons = truth_match(data)
        if matched < len(data.results):
            on_warning(
                f"{matched} of {len(data.results)} results matched a truth in {data.truth_source}"
                + "".join(f"; {r}" for r in reasons)
            )
    page, figures = render_html(data, title, max_images)
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        for name, png in figures.items():
            (out / "figures" / name).write_bytes(png)
        path = out / "report.html"
        files.write_text_atomic(path, page)
    except OSError as exc:
        raise files.OutputPathError(f"{out}: cannot write the report ({exc.strerror or exc})") from exc
    return path
