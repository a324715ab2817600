"""``semcoat render``: render a range of a batch into a dataset folder (what one Slurm array task runs).

bpy is imported only when a render starts, so ``semcoat --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from semcoat.batch import BatchSpec
from semcoat.dataset import DatasetError
from semcoat.params import SpecError

if TYPE_CHECKING:  # numpy and scipy stay out of `semcoat --help`
    from blender_addon.frame import FrameRenderer

EXIT_BAD_INPUT = 2
EXIT_RENDER_FAILED = 1


def render(
    batch_spec: Path = typer.Argument(..., help="BatchSpec JSON file (see `semcoat spec preset`)."),
    out: Path = typer.Option(..., "--out", help="Dataset folder to create or to resume (same batch only)."),
    start: int = typer.Option(0, "--start", min=0, help="First image index to render."),
    count: int = typer.Option(None, "--count", min=1, help="Number of images (default: up to the end of the batch)."),
    threads: int = typer.Option(0, "--threads", min=0, help="Cycles render threads (0 = all cores)."),
    quiet: bool = typer.Option(False, "--quiet", help="Print only the summary line."),
) -> None:
    """Render images START..START+COUNT-1 of a batch, with masks and ground truth; finished images are skipped."""
    from blender_addon.batch_render import SampleFailed, render_range  # noqa: PLC0415 - keeps --help light

    try:
        batch = BatchSpec.load(batch_spec)
    except (SpecError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc

    def factory() -> FrameRenderer:
        from blender_addon.renderer import Renderer  # noqa: PLC0415 - imports bpy

        return Renderer(threads=threads)

    def progress(done: int, total: int, index: int, seconds: float, skipped: bool) -> None:
        if not quiet:
            what = "already complete, skipped" if skipped else f"rendered in {seconds:.2f} s"
            typer.echo(f"[{done}/{total}] image {index}: {what}")

    try:
        report = render_range(batch, out, factory, start=start, count=count, progress=progress)
    except SampleFailed as exc:
        typer.echo(f"error: {exc}; the sample was removed, rerun the same command to resume", err=True)
        raise typer.Exit(EXIT_RENDER_FAILED) from exc
    except (SpecError, ValueError, DatasetError) as exc:  # a bad range, a drawn spec that contradicts itself
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    n = len(report.rendered)
    rate = n / report.elapsed_s if report.elapsed_s > 0 and n else 0.0
    typer.echo(f"{out}: rendered {n}, skipped {len(report.skipped)} already complete, "
               f"{report.elapsed_s:.1f} s ({rate:.2f} images/s)")


def register(app: typer.Typer) -> None:
    """Add ``semcoat render`` to the command line."""
    app.command("render")(render)
