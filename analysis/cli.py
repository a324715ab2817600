"""``semcoat measure``, ``semcoat predict`` and ``semcoat report``: thin front ends over the analysis functions.

numpy, matplotlib and the model runtimes are imported inside the commands so that ``semcoat --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def measure_command(
    inputs: Annotated[
        list[Path], typer.Argument(help="Mask files (PNG/TIFF of class ids), folders of masks, or dataset folders.")
    ],
    pixel_size_um: Annotated[
        float | None,
        typer.Option(
            "--pixel-size-um", min=0.0, help="µm per pixel. Dataset folders default to their dataset.json value."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON (a list of objects) instead of CSV.")] = False,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Give masks without a measurable coating an empty row; do not stop.")
    ] = False,
) -> None:
    """Measure coatings in class masks: one row per mask, column `image` (file stem) then every measurement."""
    import io as stdio

    from analysis import io
    from analysis.measure import MaskError, Measurements, NoCoatingError

    try:
        sources = io.resolve_masks(inputs)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    rows: list[tuple[str, Measurements | None]] = []
    for src in sources:
        size = pixel_size_um if pixel_size_um is not None else src.pixel_size_um
        if size is None:
            raise _fail(f"{src.path}: no pixel size; pass --pixel-size-um (or measure a dataset folder)", 2)
        try:
            rows.append((src.path.stem, io.measure_file(src.path, size)))
        except NoCoatingError as exc:
            if not keep_going:
                raise _fail(f"{exc} (use --keep-going to write an empty row instead)") from exc
            typer.echo(f"warning: {exc}", err=True)
            rows.append((src.path.stem, None))
        except MaskError as exc:
            raise _fail(str(exc)) from exc

    if as_json:
        text = json.dumps([{"image": name, **(m.as_dict() if m else {})} for name, m in rows], indent=2) + "\n"
    else:
        if out is not None:
            io.write_results_csv(out, rows)
            typer.echo(f"{len(rows)} masks measured -> {out}", err=True)
            return
        buffer = stdio.StringIO()
        io.write_results_csv_to(buffer, rows)
        text = buffer.getvalue()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(rows)} masks measured -> {out}", err=True)
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
            help="Segmentation model: .onnx or TorchScript (.pt/.ts), or `classical` for the non-learned baseline.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for images, masks, overlays and measurements.")],
    pixel_size_um: Annotated[
        float | None,
        typer.Option("--pixel-size-um", min=0.0, help="µm per pixel; overrides the TIFF's SEM metadata."),
    ] = None,
    crop_databar: Annotated[
        bool, typer.Option("--crop-databar/--no-crop-databar", help="Detect and cut the instrument's data bar.")
    ] = True,
    tile_px: Annotated[int, typer.Option("--tile-px", min=32, help="Tile edge for inference, pixels.")] = 512,
    overlap_px: Annotated[int, typer.Option("--overlap-px", min=0, help="Overlap between tiles, pixels.")] = 64,
) -> None:
    """Segment real SEM micrographs with a trained model (or the classical baseline), then measure them."""
    from analysis import predict
    from analysis.io import ImageReadError
    from analysis.model import ModelLoadError
    from analysis.sem_tiff import SemMetadataError

    def progress(record: predict.PredictionRecord) -> None:
        crop = f", data bar from row {record.databar_top_row}" if record.databar_top_row is not None else ""
        note = f"  ({record.error})" if record.error else ""
        typer.echo(
            f"{record.image}: {record.rows}x{record.columns} px at {record.pixel_size_um:.4g} µm/px "
            f"({record.pixel_size_from}){crop}{note}",
            err=True,
        )

    try:
        records = predict.predict_files(
            model, images, out, pixel_size_um, crop_databar, tile_px, overlap_px, on_image=progress
        )
    except (predict.PixelSizeError, ImageReadError, SemMetadataError, ModelLoadError, OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{len(records)} images -> {out / predict.RESULTS_CSV}", err=True)


def report_command(
    results: Annotated[Path, typer.Argument(help="A measurements CSV, or a `semcoat predict` output folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and its figures.")],
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth", help="Ground truth: a dataset folder (meta truth or masks), a folder of masks, or a CSV."
        ),
    ] = None,
    title: Annotated[str, typer.Option("--title", help="Report title.")] = "Coating measurements",
    max_images: Annotated[int, typer.Option("--max-images", min=0, help="Images shown one by one.")] = 24,
) -> None:
    """Write an HTML report: overlays, thickness profiles, histograms, parity plots against truth."""
    from analysis import report

    try:
        path = report.write_report(results, out, truth=truth, title=title, max_images=max_images)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"report -> {path}", err=True)


def register(app: typer.Typer) -> None:
    """Add the analysis commands to the ``semcoat`` application."""
    app.command("measure")(measure_command)
    app.command("predict")(predict_command)
    app.command("report")(report_command)
