"""The data of a report: a results table, the prediction folder around it (records, overlays, masks) and the truth.

Gathering reads files and pairs results with truths by image stem; :mod:`analysis.report_html` turns the gathered
:class:`ReportData` into a page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis import files
from analysis.measure import check_pixel_size_um, measure
from semcoat.errors import InvalidArgument, SemcoatError
from semcoat.measurements import MEASUREMENT_NAMES, MEASUREMENTS, YES_NO
from semcoat.predictions import (
    MASKS_DIR,
    OVERLAYS_DIR,
    PREDICTIONS_JSON,
    RESULTS_CSV,
    PredictionRecord,
    PredictionsError,
    picture_path,
    read_predictions,
)

Table = dict[str, dict[str, Any]]


@dataclass
class ReportData:
    """Everything the report shows, gathered from the results folder and the truth.

    ``truth_names`` are all the images the truth source holds (matched or not); ``truth_unsized`` the results'
    images whose labelled truth mask was found but not measured, for want of a pixel size. ``predictions`` are the
    records of ``predictions.json`` by image (empty for a bare measurements CSV). ``label`` names the model in a
    report that compares several (:func:`gather_models`).
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
    predictions: dict[str, PredictionRecord] = field(default_factory=dict)
    label: str = ""


def results_csv_path(results: Path) -> Path:
    """The measurements table of ``results``: the file itself, or a predict folder's ``measurements.csv``.

    Raises
    ------
    files.MissingInputError
        When there is no such table.
    """
    if results.is_dir():
        candidate = results / RESULTS_CSV
        if not candidate.is_file():
            raise files.MissingInputError(
                f"{results}: no {RESULTS_CSV} in this folder (is it a `semcoat predict` output?)"
            )
        return candidate
    if not results.is_file():
        raise files.MissingInputError(f"{results}: no such results file or folder")
    return results


def truth_kind(truth: Path) -> str:
    """``"csv"`` (a file), ``"dataset"`` (a folder with dataset.json) or ``"masks"`` (another folder).

    Raises
    ------
    files.MissingInputError
        When ``truth`` does not exist.
    """
    from semcoat.dataset import DATASET_FILE

    if truth.is_file():
        return "csv"
    if (truth / DATASET_FILE).is_file():
        return "dataset"
    if truth.is_dir():
        return "masks"
    raise files.MissingInputError(f"{truth}: no such truth file or folder")


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
    from semcoat.dataset import read_dataset, sample_paths

    kind = truth_kind(truth)
    if kind == "csv":
        table = files.read_results_csv(truth)
        return TruthRead(table, list(table), [])
    if kind == "dataset":
        ds = read_dataset(truth)
        size = files.dataset_pixel_size(ds)
        table = {}
        for sid in ds.ids:
            meta_path = sample_paths(ds.root, sid)[2]
            values = _meta_truth(meta_path)
            if values is None:
                values = measure(files.read_mask(ds.mask_path(sid)), size, str(ds.mask_path(sid))).as_dict()
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


class TruthError(SemcoatError):
    """A truth that cannot be used: a meta file that is not JSON, truth values of the wrong type (with the file and
    the field)."""


def _meta_truth(path: Path) -> dict[str, Any] | None:
    """The ``truth`` object of a sample's meta file, each value checked; None when the file has none (or it is
    empty): its mask is measured instead.

    Raises
    ------
    TruthError
        Naming the file and the field: not UTF-8 JSON, nested too deeply, a truth that is not an object, a value
        that is not a finite number (strings, NaN, infinities) or, for yes/no measurements, not true/false.
    """
    try:
        meta = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except RecursionError as exc:
        raise TruthError(f"{path}: the meta file is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise TruthError(f"{path}: the meta file is not JSON ({str(exc):.200})") from exc
    if not isinstance(meta, dict):
        raise TruthError(f"{path}: the meta file must hold a JSON object, not {type(meta).__name__}")
    values = meta.get("truth")
    if not values:
        return None
    if not isinstance(values, dict):
        raise TruthError(f"{path}: truth must be an object of measurements, not {type(values).__name__}")
    for row in MEASUREMENTS:
        value = values.get(row.name)
        if value is None:
            continue
        if row.kind == YES_NO:
            if not isinstance(value, bool):
                raise TruthError(f"{path}: truth.{row.name} must be true or false; got {json.dumps(value)[:60]}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise TruthError(
                f"{path}: truth.{row.name} must be a finite number of {row.unit}; got {json.dumps(value)[:60]}"
            )
    return values


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


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
    InvalidArgument
        About ``truth_pixel_size_um`` when it is not a positive finite number, or is given for a truth that is not
        a folder of masks (a CSV or a dataset folder carries its own scale).
    files.MissingInputError, files.ResultsTableError, semcoat.predictions.PredictionsError
        For results or truth that are missing or cannot be read.
    """
    if truth_pixel_size_um is not None:
        check_pixel_size_um(truth_pixel_size_um, argument="truth_pixel_size_um")
    csv_path = results_csv_path(Path(results))
    data = ReportData(csv_path, files.read_results_csv(csv_path))
    folder = csv_path.parent
    data.predictions = read_predictions(folder)
    for name, rec in data.predictions.items():
        if rec.pixel_size_um is not None:
            try:
                data.pixel_size_um[name] = check_pixel_size_um(rec.pixel_size_um)
            except SemcoatError as exc:
                raise PredictionsError(
                    f"{folder / PREDICTIONS_JSON}: image {name!r:.80}: pixel_size_um: {exc}"
                ) from exc
    for name in data.results:
        for subdir, found in ((OVERLAYS_DIR, data.overlays), (MASKS_DIR, data.masks)):
            path = picture_path(folder, subdir, name)
            if path.is_file():
                found[name] = path
    if truth is None:
        if truth_pixel_size_um is not None:
            raise InvalidArgument(
                "a truth pixel size applies to a truth folder of masks; no truth was given",
                argument="truth_pixel_size_um",
            )
        return data
    truth = Path(truth)
    kind = truth_kind(truth)
    sizes = data.pixel_size_um
    if truth_pixel_size_um is not None:
        if kind != "masks":
            what = "a CSV of measurements" if kind == "csv" else "a dataset folder (its dataset.json has the size)"
            raise InvalidArgument(
                f"a truth pixel size ({truth_pixel_size_um}) applies to a truth folder of masks; {truth} is {what}",
                argument="truth_pixel_size_um",
            )
        sizes = {name: truth_pixel_size_um for name in data.results}
    read = read_truth_details(truth, sizes, set(data.results))
    data.truth, data.truth_source = read.table, str(truth)
    data.truth_names, data.truth_unsized = read.names, read.unsized
    return data


def count_text(n: int, one: str, many: str) -> str:
    """``n`` and the singular or plural noun: "1 image", "3 images"."""
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
            f"{count_text(len(data.truth_unsized), 'labelled mask has', 'labelled masks have')} in {data.truth_source} "
            f"no pixel size to be measured at "
            f"({_some(data.truth_unsized)}): pass --pixel-size-um, or report on the `semcoat predict` output folder, "
            f"whose predictions.json records each image's pixel size"
        )
    unsized = set(data.truth_unsized)
    missing = [k for k in data.results if k not in data.truth and k not in unsized]
    if missing:
        truth_only = [k for k in data.truth_names if k not in data.results]
        reasons.append(
            f"{count_text(len(missing), 'result has', 'results have')} no truth of the same name in "
            f"{data.truth_source}: names differ "
            f"(results: {_some(missing)}; truth: {_some(truth_only) if truth_only else 'none'})"
        )
    return matched, reasons


def default_label(data: ReportData) -> str:
    """How a report names the model of ``data``: the model ``predictions.json`` records (``classical``, or the model
    file's name), else the results folder's (or table's) name."""
    models = sorted({str(r.model) for r in data.predictions.values() if r.model})
    if len(models) == 1:
        return Path(models[0]).name
    csv_path = data.results_csv
    return csv_path.parent.name if csv_path.name == RESULTS_CSV else csv_path.stem


def check_labels(labels: Sequence[str], n_results: int) -> None:
    """Refuse model labels that are not one per result, distinct and not blank.

    Raises
    ------
    InvalidArgument
        About ``labels``, with the labels given.
    """
    if len(labels) != n_results:
        raise InvalidArgument(
            f"give one label per result: {len(labels)} label(s) for {n_results} result(s)", argument="labels"
        )
    if any(not given.strip() for given in labels) or len(set(labels)) != len(labels):
        raise InvalidArgument(f"labels must be distinct and not blank; got {list(labels)}", argument="labels")


def gather_models(
    results: Sequence[str | Path],
    truth: str | Path | None = None,
    truth_pixel_size_um: float | None = None,
    labels: Sequence[str] | None = None,
) -> list[ReportData]:
    """:func:`gather` for each results table or folder (one per model), each labelled: ``labels`` in the same order,
    or :func:`default_label` made unique (repeats get the results folder's name, then a number).

    Raises
    ------
    InvalidArgument
        About ``labels`` when there is not one per result, or a label is empty or given twice.
    """
    if labels is not None:
        check_labels(labels, len(results))
    datas = [gather(r, truth, truth_pixel_size_um) for r in results]
    names = list(labels) if labels is not None else [default_label(d) for d in datas]
    if labels is None:
        for i, data in enumerate(datas):
            if names.count(names[i]) > 1:
                names[i] = f"{names[i]} ({data.results_csv.parent.name})"
        for i in range(len(names)):
            if names.count(names[i]) > 1:
                names[i] = f"{names[i]} #{i + 1}"
    for data, name in zip(datas, names, strict=True):
        data.label = name
    return datas


@dataclass(frozen=True)
class TruthPictures:
    """True masks and the grey images they label, by image stem (what a truth source holds of them)."""

    masks: dict[str, Path]
    images: dict[str, Path]


def truth_pictures(truth: str | Path) -> TruthPictures:
    """The true masks (and images) of a truth: a dataset folder's ``masks/`` and ``images/``, a folder of labelled
    masks (no images), or nothing for a CSV of measurements."""
    from semcoat.dataset import read_dataset

    truth = Path(truth)
    kind = truth_kind(truth)
    if kind == "csv":
        return TruthPictures({}, {})
    if kind == "dataset":
        ds = read_dataset(truth)
        return TruthPictures({sid: ds.mask_path(sid) for sid in ds.ids}, {sid: ds.image_path(sid) for sid in ds.ids})
    return TruthPictures({src.path.stem: src.path for src in files.resolve_masks([truth])}, {})
