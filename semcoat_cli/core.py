"""``semcoat spec ...`` and ``semcoat dataset ...``: the shared core's commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from semcoat.batch import BatchSpec, is_coating_document, read_json
from semcoat.presets import FAMILY_PIXEL_SIZES_UM, PRESETS, preset_batch, preset_family
from semcoat.schema import batch_spec_schema, coating_spec_schema
from semcoat.spec import CoatingSpec
from semcoat_cli.errors import EXIT_FAILED, EXIT_USAGE, fail, user_errors

spec_app = typer.Typer(help="Coating and batch specs: presets, validation, JSON Schema.", no_args_is_help=True)
dataset_app = typer.Typer(help="Dataset folders (images, masks, ground truth).", no_args_is_help=True)

MAX_PROBLEMS_SHOWN = 50
# Drawing one image's parameters takes about a millisecond: a check of a batch of 10^6 images draws a spread sample
# of this many (a few seconds) instead of all of them (a quarter of an hour with no output).
MAX_CHECKED_DRAWS = 5000


def checked_indices(count: int, limit: int = MAX_CHECKED_DRAWS) -> range:
    """The image indices ``spec check`` draws: all of them, or ``limit`` evenly spread from the first one on."""
    return range(count) if count <= limit else range(0, count, -(-count // limit))


@spec_app.command("schema")
def spec_schema(
    kind: str = typer.Option("batch", help="Which schema: 'batch' (BatchSpec files) or 'coating' (one CoatingSpec)."),
) -> None:
    """Print the JSON Schema of batch spec files (or of one coating spec)."""
    if kind not in ("batch", "coating"):
        raise fail(f"--kind {kind!r} is not known; accepted: batch, coating", EXIT_USAGE)
    typer.echo(json.dumps(batch_spec_schema() if kind == "batch" else coating_spec_schema(), indent=2))


# Scales a preset batch is framed at, um per pixel: from a close-up 10 um wide (1024 px) to a millimetre; every draw of
# every preset is a valid spec there (coarser, one image would hold more inclusions than render in reasonable time).
PRESET_PIXEL_SIZE_UM = (0.01, 1.0)
_FAMILY_SCALES = ", ".join(f"{p:g}" for p in FAMILY_PIXEL_SIZES_UM)


@spec_app.command("preset")
def spec_preset(
    name: str = typer.Argument(..., help=f"Preset name: {', '.join(PRESETS)}."),
    count: int = typer.Option(100, min=1, help="Number of images in the batch (in each batch of a family)."),
    seed: int = typer.Option(0, min=0, help="Batch seed (a family's batches take seed, seed + 1, ...)."),
    pixel_size_um: float | None = typer.Option(
        None, "--pixel-size-um", help=f"Frame the batch at this scale, µm per pixel ({PRESET_PIXEL_SIZE_UM[0]:g} to "
        f"{PRESET_PIXEL_SIZE_UM[1]:g}): the preset's frame in pixels, frames that cut the coating where it does not "
        "fit (imaging.partial_frame)."),
    family: bool = typer.Option(
        False, "--family", help=f"A dataset family: one batch per scale ({_FAMILY_SCALES} µm/px), each written to "
        "--out DIR as <preset>-<scale>um.json for semcoat render or submit; their paths are printed."),
    out: Path | None = typer.Option(None, "--out", help="The folder a --family's batch files are written to."),
) -> None:
    """Print a ready BatchSpec (JSON) for a preset coating, or write a family of them over scales (--family)."""
    if name not in PRESETS:
        raise fail(f"unknown preset {name!r}; accepted: {', '.join(PRESETS)}", EXIT_USAGE)
    if family and pixel_size_um is not None:
        raise fail("--family writes one batch per scale of the family; --pixel-size-um frames one batch: give one of "
                   "them", EXIT_USAGE)
    if family != (out is not None):
        raise fail("--family writes its batch files to a folder: give --out DIR" if family else
                   "--out is the folder of a --family's batch files; one batch is printed (redirect it: > batch.json)",
                   EXIT_USAGE)
    low, high = PRESET_PIXEL_SIZE_UM
    if pixel_size_um is not None and not low <= pixel_size_um <= high:  # NaN fails the comparison too
        raise fail(f"--pixel-size-um {pixel_size_um:g}: a preset is framed from {low:g} to {high:g} µm per pixel",
                   EXIT_USAGE)
    with user_errors(EXIT_USAGE):
        if out is None:
            typer.echo(preset_batch(name, count=count, seed=seed, pixel_size_um=pixel_size_um).to_json())
            return
        _write_family(preset_family(name, count=count, seed=seed), out)


def _write_family(batches: list[BatchSpec], out: Path) -> None:
    """Write each batch to ``out/<name>.json`` and print the paths; nothing is written when ``out`` is not a folder
    or holds a different file of one of those names."""
    from semcoat.dataset import write_atomic

    files = [(out / f"{b.name}.json", b.to_json() + "\n") for b in batches]
    if out.exists() and not out.is_dir():
        raise fail(f"--out {out}: not a folder", EXIT_USAGE)
    for path, text in files:
        if path.exists() and (not path.is_file() or path.read_text(encoding="utf-8", errors="replace") != text):
            raise fail(f"{path} exists and differs from the batch of that name: remove it or choose another --out; "
                       "nothing written", EXIT_USAGE)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, text in files:
            write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise fail(f"--out {out}: cannot write the batch files ({exc.strerror or exc})", EXIT_FAILED) from exc
    for (path, _text), batch in zip(files, batches, strict=True):
        img = batch.base.imaging
        cut = ", frames that cut the coating" if img.partial_frame else ""
        typer.echo(f"{path}: {batch.count} images at {img.pixel_size_um:g} µm/px{cut}", err=True)
        typer.echo(str(path))
    typer.echo(f"render each: semcoat render FILE --out DIR (or semcoat submit FILE), e.g. for f in {out}/*.json; do "
               'semcoat render "$f" --out "data/$(basename "$f" .json)"; done', err=True)


@spec_app.command("check")
def spec_check(file: Path = typer.Argument(..., help="A BatchSpec (or CoatingSpec) JSON file.")) -> None:
    """Validate a batch file (or a coating spec: an object of coating sections only); for a batch, also draw every
    image's parameters and check them. Exit 1 when the file is not a valid spec: finding that is this command's job."""
    with user_errors(EXIT_FAILED):
        data = read_json(file)
        if is_coating_document(data):
            CoatingSpec.from_dict(data, source=str(file))
            typer.echo('ok: coating spec (to render it, put it under "base" in a batch file)')
        else:
            batch = BatchSpec.from_dict(data, source=str(file))
            checked = checked_indices(batch.count)
            for index in checked:
                batch.sample(index)
            drawn = "every image's parameters drawn and checked" if len(checked) == batch.count else (
                f"the parameters of {len(checked)} images spread over the batch drawn and checked (a render checks "
                "every image it draws)")
            typer.echo(f"ok: batch {batch.name!r}, {batch.count} images in {len(batch.task_ranges())} task(s), "
                       f"{len(batch.randomize)} randomised parameter(s); {drawn}")


@spec_app.command("calibrate")
def spec_calibrate(
    images: list[Path] = typer.Argument(
        ..., exists=True, dir_okay=False, help="A lab's real SEM micrographs (TIFF, PNG, JPEG) of cross-sections."),
    out: Path = typer.Option(..., "--out", help="Batch spec file to write (JSON); never one of the images."),
    pixel_size_um: float | None = typer.Option(
        None, "--pixel-size-um", help="µm per pixel; overrides the TIFF's SEM metadata, needed without it."),
    preset: str = typer.Option("20h_650C", help=f"Preset the batch starts from: {', '.join(PRESETS)}."),
    count: int = typer.Option(100, min=1, help="Number of images in the batch."),
    seed: int = typer.Option(0, min=0, help="Batch seed."),
    name: str = typer.Option("calibrated", help="Batch name."),
) -> None:
    """Calibrate the generator to a lab's microscope: estimate grey levels, probe blur, dose, detector noise,
    shading, scratches and the data bar from real micrographs, and write a batch spec whose ranges cover them.

    An image with no coating found is skipped with a warning (exit 1 when none is usable); an unreadable image or one
    without a pixel size stops the run before any work (exit 2).
    """
    from analysis import files
    from analysis.calibrate import calibrate_files
    from analysis.calibrate_spec import build_batch
    from analysis.calibrate_table import ranges_text, table
    from analysis.measure import check_pixel_size_um
    from semcoat.batch import NAME_PATTERN

    if preset not in PRESETS:
        raise fail(f"--preset {preset!r} is not known; accepted: {', '.join(PRESETS)}", EXIT_USAGE)
    if not NAME_PATTERN.fullmatch(name):
        raise fail(f"--name {name!r}: expected 1-64 letters, digits, '_', '.', '-' (not starting with '.', '_' or "
                   "'-')", EXIT_USAGE)
    flags = {"pixel_size_um": "--pixel-size-um", "out": "--out"}
    with user_errors(EXIT_USAGE, flags):
        if pixel_size_um is not None:
            check_pixel_size_um(pixel_size_um)
        files.check_output_file(out)
        files.check_output_apart(out, images, output_is_folder=False)

    def progress(path: str, est: object, problem: str | None) -> None:
        typer.echo(f"warning: {problem}" if problem else f"{path}: measured", err=True)
        for warning in getattr(est, "warnings", []):
            typer.echo(f"warning: {warning}", err=True)

    with user_errors(EXIT_USAGE, flags):  # unreadable images, no pixel size, a damaged data bar: nothing done
        estimates = calibrate_files(images, pixel_size_um, progress)
    if not estimates:
        raise fail(f"no usable image among the {len(images)} given: the classical segmentation found no coating "
                   "(resin above, Fe2Al5, substrate below, or a close-up of part of that order) in any of them; "
                   "nothing written", EXIT_FAILED)
    with user_errors(EXIT_FAILED):
        result = build_batch(estimates, preset, count=count, seed=seed, name=name)
    try:
        files.write_text_atomic(out, result.batch.to_json() + "\n")
    except OSError as exc:
        raise fail(f"{out}: cannot write the batch spec: {exc.strerror or exc}", EXIT_FAILED) from exc
    typer.echo(table(estimates))
    typer.echo(ranges_text(result))
    typer.echo(f"{len(estimates)} of {len(images)} image(s) calibrated -> {out} (render it: semcoat render {out} "
               "--out DIR)", err=True)


@dataset_app.command("check")
def dataset_check(folder: Path = typer.Argument(..., help="Dataset folder.")) -> None:
    """Check a dataset folder against the contract; exit 1 listing every problem."""
    from semcoat.dataset import check_dataset

    report = check_dataset(folder)
    if report.ok:
        typer.echo(f"ok: {folder}: {report.complete} of {report.expected} samples complete")
        return
    for line in report.problems[:MAX_PROBLEMS_SHOWN]:
        typer.echo(f"problem: {line}", err=True)
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        typer.echo(f"... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more problem(s)", err=True)
    typer.echo(f"{folder}: {len(report.problems)} problem(s); {report.complete} of {report.expected} samples complete",
               err=True)
    raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add the core commands to the ``semcoat`` app."""
    from semcoat_cli.demo import demo
    from semcoat_cli.versions import version_command

    app.add_typer(spec_app, name="spec")
    app.add_typer(dataset_app, name="dataset")
    app.command("demo")(demo)
    app.command("version")(version_command)
