"""``semcoat measure``, ``semcoat predict`` and ``semcoat report``: thin front ends over the analysis functions.

numpy, matplotlib and the model runtimes are imported inside the commands so that ``semcoat --help`` stays fast.
Errors follow :mod:`semcoat_cli.errors`: a :class:`~semcoat.errors.SemcoatError` becomes ``error: ...`` (its
argument named as the option) and an exit code; an OSError while writing is a failure; anything else is a bug.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated

import typer

from semcoat.errors import SemcoatError
from semcoat_cli.errors import EXIT_FAILED, EXIT_USAGE, fail, message_of, option_name, user_errors

# Options whose flag is not the argument's name with dashes.
_REPORT_FLAGS = {"truth_pixel_size_um": "--pixel-size-um", "labels": "--label"}
_PREDICT_FLAGS = {"image_paths": "IMAGES", "model_path": "--model", "out_dir": "--out"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _check_pixel_size(value: float | None, argument: str = "pixel_size_um") -> None:
    """Exit with a usage error for a given pixel size that is not a positive finite number."""
    from analysis.measure import check_pixel_size_um

    if value is not None:
        with user_errors(EXIT_USAGE, _REPORT_FLAGS):
            check_pixel_size_um(value, argument)


def _cannot_write(path: Path, exc: OSError) -> typer.Exit:
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return fail(f"{path}: cannot write the output: {reason}{where}", EXIT_FAILED)


@contextlib.contextmanager
def _work_errors(
    out: Path, flags: Mapping[str, str] | None = None, bad_input: tuple[type[SemcoatError], ...] = ()
) -> Iterator[None]:
    """Errors of a command's work: an output path that cannot be used, and the errors of ``bad_input`` (input files
    that cannot be read as what they claim to be), are bad input (exit 2); any other error a user can act on (a model
    that cannot load) is a failure (exit 1), and so is an OSError while writing ``out``."""
    from analysis.files import OutputPathError

    usage: tuple[type[SemcoatError], ...] = (OutputPathError, *bad_input)
    try:
        yield
    except usage as exc:
        raise fail(message_of(exc, flags), EXIT_USAGE) from exc
    except SemcoatError as exc:
        raise fail(message_of(exc, flags), EXIT_FAILED) from exc
    except OSError as exc:
        raise _cannot_write(out, exc) from exc


_PIXEL_SIZE_HELP = "µm per pixel, a positive number."


def measure_command(
    inputs: Annotated[
        list[Path], typer.Argument(help="Mask files (PNG/TIFF of class ids), folders of masks, or dataset folders.")
    ],
    pixel_size_um: Annotated[
        float | None,
        typer.Option(
            "--pixel-size-um", help=f"{_PIXEL_SIZE_HELP} Dataset folders default to their dataset.json value."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON (a list of objects) instead of CSV.")] = False,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Give masks without a measurable coating an empty row; do not stop.")
    ] = False,
) -> None:
    """Measure coatings in class masks: one row per mask: `image` (file stem), `pixel_size_um`, every measurement."""
    import io as stdio

    from analysis import files
    from analysis.measure import NoCoatingError

    _check_pixel_size(pixel_size_um)
    if out is not None:
        with user_errors(EXIT_USAGE):
            files.check_output_file(out)
    with user_errors(EXIT_FAILED):
        sources = files.resolve_masks(inputs, check_pixel_size=pixel_size_um is None)
    if out is not None:
        with user_errors(EXIT_USAGE):
            files.check_output_apart(out, [*inputs, *(src.path for src in sources)], output_is_folder=False)
    stems: dict[str, Path] = {}
    for src in sources:
        if src.path.stem in stems:
            raise fail(
                f"{src.path} and {stems[src.path.stem]} would both be row {src.path.stem!r}; the image "
                "column must name each mask once: measure them separately (one table per dataset)",
                EXIT_USAGE,
            )
        stems[src.path.stem] = src.path
    rows: list[files.ResultRow] = []
    for src in sources:
        size = pixel_size_um if pixel_size_um is not None else src.pixel_size_um
        if size is None:
            raise fail(f"{src.path}: no pixel size; pass --pixel-size-um (or measure a dataset folder)", EXIT_USAGE)
        try:
            measured = files.measure_file(src.path, size)
        except NoCoatingError as exc:
            if not keep_going:
                raise fail(f"{exc} (use --keep-going to write an empty row instead)", EXIT_FAILED) from exc
            typer.echo(f"warning: {exc}", err=True)
            measured = None
        except SemcoatError as exc:  # an unreadable mask, unknown class ids
            raise fail(message_of(exc), EXIT_FAILED) from exc
        rows.append((src.path.stem, size, measured))

    if as_json:
        objects = [{"image": name, "pixel_size_um": size, **(m.as_dict() if m else {})} for name, size, m in rows]
        text = json.dumps(objects, indent=2) + "\n"
    else:
        buffer = stdio.StringIO()
        files.write_results_csv_to(buffer, rows)
        text = buffer.getvalue()
    if out is not None:
        try:
            files.write_text_atomic(out, text)
        except OSError as exc:
            raise _cannot_write(out, exc) from exc
        typer.echo(f"{_plural(len(rows), 'mask')} measured -> {out}", err=True)
    else:
        typer.echo(text, nl=False)


def predict_command(
    images: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="Micrographs: TIFF (8/16 bit), PNG or JPEG.")
    ],
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            help="Segmentation model: .onnx, TorchScript (.pt/.ts), a .ckpt of `semcoat train fit` (with the train "
            "extra), or `classical` for the non-learned baseline.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for images, masks, overlays and measurements.")],
    pixel_size_um: Annotated[
        float | None,
        typer.Option(
            "--pixel-size-um",
            help=f"{_PIXEL_SIZE_HELP} Overrides the TIFF's SEM metadata for every image (a warning names both values "
            "where they differ by more than 1 %); needed for images without it (PNG, JPEG, plain TIFF).",
        ),
    ] = None,
    crop_databar: Annotated[
        bool,
        typer.Option(
            "--crop-databar/--no-crop-databar",
            help="Cut the instrument's data bar: from the row the Thermo/FEI metadata gives (ResolutionY), else where "
            "it is detected in the pixels. --no-crop-databar disables both: the whole image, bar included, is "
            "segmented and measured, even when the metadata says where the bar starts.",
        ),
    ] = True,
    tile_px: Annotated[int, typer.Option("--tile-px", min=32, help="Tile edge for inference, pixels.")] = 512,
    overlap_px: Annotated[int, typer.Option("--overlap-px", min=0, help="Overlap between tiles, pixels.")] = 64,
    relabel_islands: Annotated[
        bool,
        typer.Option(
            "--relabel-islands/--keep-islands",
            help="A learned model's patches of steel not joined to the steel that runs off the bottom edge, or of "
            "coating joined neither to the resin nor to the top edge (the surface assumed up), take the likeliest "
            "class that fits there: deep steel read as Fe2Al5 under the FeAl band, a bright stretch of Fe2Al5 read as "
            "steel. An image with 1 % or more of its frame so changed gets a warning. --keep-islands gives each pixel "
            "its likeliest class alone. The classical baseline is not changed either way.",
        ),
    ] = True,
    flip_average: Annotated[
        bool,
        typer.Option(
            "--flip-average/--no-flip-average",
            help="Average a learned model's class probabilities over the image and its left-right mirror (the one "
            "mirror that keeps the surface up): a little more Dice on edges and small features (0.001-0.005 per class "
            "on held-out renders) for about twice the model's time. The classical baseline is not changed either way.",
        ),
    ] = False,
) -> None:
    """Segment real SEM micrographs with a trained model (or the classical baseline), then measure them.

    An image that cannot be read, has no pixel size, cannot be segmented or has nothing to measure is reported and
    recorded as failed; the others are still written, and the command then exits with status 1 naming the failed
    images.
    """
    from analysis import predict
    from semcoat.predictions import PREDICTIONS_JSON, RESULTS_CSV, PredictionRecord

    with user_errors(EXIT_USAGE, _PREDICT_FLAGS):
        predict.check_options(pixel_size_um, tile_px, overlap_px)

    def progress(record: PredictionRecord, error: SemcoatError | None) -> None:
        for warning in record.warnings:
            typer.echo(f"warning: {warning}", err=True)
        if record.failed:
            # The record says what was wrong; the option that would have helped (e.g. a pixel size) is ours to name.
            hint = f" (give {option_name(error.argument, _PREDICT_FLAGS)})" if error and error.argument else ""
            typer.echo(f"{record.image}: FAILED: {record.error}{hint}", err=True)
            return
        crop = f", data bar from row {record.databar_top_row}" if record.databar_top_row is not None else ""
        size = f"{record.pixel_size_um:.4g}" if record.pixel_size_um is not None else "?"
        typer.echo(
            f"{record.image}: {record.columns}x{record.rows} px at {size} µm/px ({record.pixel_size_from}){crop}",
            err=True,
        )

    with _work_errors(out, _PREDICT_FLAGS):
        records = predict.predict_files(
            model,
            images,
            out,
            pixel_size_um,
            crop_databar,
            tile_px,
            overlap_px,
            on_image=progress,
            relabel_islands=relabel_islands,
            flip_average=flip_average,
        )
    failed = [r for r in records if r.failed]
    done = len(records) - len(failed)
    typer.echo(f"{_plural(done, 'image')} -> {out / RESULTS_CSV}", err=True)
    if failed:
        names = ", ".join(r.source for r in failed)
        raise fail(
            f"{len(failed)} of {_plural(len(records), 'image')} failed: {names} (errors in "
            f"{out / PREDICTIONS_JSON}; their rows in {RESULTS_CSV} are empty)",
            EXIT_FAILED,
        )


def report_command(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="A measurements CSV, or a `semcoat predict` output folder; several (one per model, on the same "
            "images) to compare the models side by side."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and its figures.")],
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth", help="Ground truth: a dataset folder (meta truth or masks), a folder of masks, or a CSV."
        ),
    ] = None,
    title: Annotated[str, typer.Option("--title", help="Report title.")] = "Coating measurements",
    max_images: Annotated[int, typer.Option("--max-images", min=0, help="Images shown one by one.")] = 24,
    pixel_size_um: Annotated[
        float | None,
        typer.Option(
            "--pixel-size-um",
            help=f"{_PIXEL_SIZE_HELP} For a --truth folder of masks: the scale to measure them at (default: each "
            "image's pixel size from the predict folder's predictions.json).",
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="Name of each model when comparing several, once per RESULTS in the same order (default: the "
            "model recorded in predictions.json, e.g. classical or unet.onnx).",
        ),
    ] = None,
) -> None:
    """Write an HTML report: overlays, thickness profiles, histograms, parity plots against truth.

    Several RESULTS (e.g. `semcoat report pred_unet/ pred_classical/ --truth DATASET`) give one report comparing the
    models: which is better at what, MAE and R² per measurement and Dice per class (with truth masks) for each, parity
    plots with a series per model, and each image's ground truth and predictions side by side.
    With --truth, a warning says how many results matched a truth and why the others did not.
    """
    from analysis import files, report
    from analysis.report_data import TruthError
    from semcoat.dataset import DatasetError
    from semcoat.predictions import PredictionsError

    _check_pixel_size(pixel_size_um, "truth_pixel_size_um")
    if label and len(results) == 1:
        raise fail("--label names the models of a comparison; give it with two or more RESULTS", EXIT_USAGE)
    if label:
        from analysis.report_data import check_labels

        with user_errors(EXIT_USAGE, _REPORT_FLAGS):
            check_labels(label, len(results))

    def warn(message: str) -> None:
        typer.echo(f"warning: {message}", err=True)

    # A results table, predictions.json, truth or dataset that cannot be read as one: bad input, nothing written.
    bad_input = (files.MissingInputError, files.ResultsTableError, PredictionsError, TruthError, DatasetError)
    with _work_errors(out, _REPORT_FLAGS, bad_input):
        path = report.write_report(
            results, out, truth=truth, title=title, max_images=max_images, truth_pixel_size_um=pixel_size_um,
            on_warning=warn, labels=label or None,
        )  # fmt: skip
    typer.echo(f"report -> {path}", err=True)


def register(app: typer.Typer) -> None:
    """Add the analysis commands to the ``semcoat`` application."""
    app.command("measure")(measure_command)
    app.command("predict")(predict_command)
    app.command("report")(report_command)
