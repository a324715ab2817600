"""``semcoat render``: render a range of a batch into a dataset folder (what one Slurm array task runs).

bpy is imported only when a render starts, so ``semcoat --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from semcoat.batch import RENDER_ENGINES, BatchSpec
from semcoat.errors import SemcoatError
from semcoat_cli.errors import EXIT_BY_SIGNAL, EXIT_FAILED, EXIT_USAGE, fail, message_of, user_errors

if TYPE_CHECKING:  # numpy and the renderer stay out of `semcoat --help`
    from blender_addon.render_node.frame import FrameRenderer


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, caught: list[int]) -> Iterator[None]:
    """While rendering, SIGINT (Ctrl-C) and SIGTERM (scancel) ask the run to stop: the image in hand is abandoned.

    Python's default KeyboardInterrupt would land inside Blender's render callback, which swallows it and carries on;
    a flag that the long steps check (placement rounds, render strips, image-formation steps) stops reliably within
    about a second, and the image in hand is discarded cleanly.
    """
    def handler(signum: int, _frame: object) -> None:
        caught.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in EXIT_BY_SIGNAL}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def render(
    batch_spec: Path = typer.Argument(..., help="BatchSpec JSON file (see `semcoat spec preset`)."),
    out: Path = typer.Option(..., "--out", help="Dataset folder to create or to resume (same batch only)."),
    start: int = typer.Option(0, "--start", min=0, help="First image index to render."),
    count: int = typer.Option(None, "--count", min=1, help="Number of images (default: up to the end of the batch)."),
    threads: int = typer.Option(0, "--threads", min=0,
                                help="Render threads: Cycles', or the OpenGL rasteriser's (0 = all cores)."),
    engine: str = typer.Option(None, "--engine", metavar="auto|raster|workbench|cycles",
                               help="Render engine (default: the batch's render.engine, itself 'auto': the raster "
                                    "engine where OpenGL starts, else Cycles). The images are the same with each."),
    quiet: bool = typer.Option(False, "--quiet", help="Print only the summary line (and a fallback to Cycles)."),
) -> None:
    """Render images START..START+COUNT-1 of a batch, with masks and ground truth; finished images are skipped.

    The first line says which engine draws the images, and why.
    """
    try:
        from blender_addon.render_node.batch_render import SampleFailed, render_range  # noqa: PLC0415 - keeps --help light
        from blender_addon.render_node.frame import RenderError  # noqa: PLC0415
        from blender_addon.render_node.process import tune_render_process  # noqa: PLC0415
    except ImportError as exc:
        raise fail(f"rendering needs the render part of semcoat ({exc}); install it with "
                   "pip install 'semcoat[render]'", EXIT_FAILED) from exc

    if engine is not None and engine not in RENDER_ENGINES:
        raise fail(f"--engine {engine!r} is not an engine; accepted: {', '.join(RENDER_ENGINES)}", EXIT_USAGE)
    with user_errors(EXIT_USAGE):
        batch = BatchSpec.load(batch_spec)
    chosen = engine or batch.render.engine
    used: list[str] = []
    tune_render_process(threads)

    def factory() -> FrameRenderer:
        from blender_addon.render_node.renderer import Renderer  # noqa: PLC0415 - imports bpy

        renderer = Renderer(threads=threads, engine=chosen)
        used.append(renderer.engine)
        if not quiet:
            typer.echo(f"render engine: {renderer.engine_note}")
        elif chosen == "auto" and renderer.engine != "raster":  # a fallback: said even when quiet
            typer.echo(f"render engine: {renderer.engine_note}", err=True)
        return renderer

    def progress(done: int, total: int, index: int, seconds: float, skipped: bool) -> None:
        if not quiet:
            what = "already complete, skipped" if skipped else f"rendered in {seconds:.2f} s"
            typer.echo(f"[{done}/{total}] image {index}: {what}")

    stop, caught = threading.Event(), list[int]()
    try:
        with _stop_on_signals(stop, caught):
            report = render_range(batch, out, factory, start=start, count=count, progress=progress, stop=stop)
    except SampleFailed as exc:
        raise fail(f"{exc}; the sample was removed, rerun the same command to resume", EXIT_FAILED) from exc
    except RenderError as exc:  # the renderer cannot start or render: the command failed, its input was fine
        raise fail(message_of(exc), EXIT_FAILED) from exc
    except SemcoatError as exc:  # a range outside the batch, a drawn spec that contradicts itself, a foreign folder
        raise fail(message_of(exc), EXIT_USAGE) from exc
    except OSError as exc:  # the output folder cannot be created or written
        raise fail(f"cannot write the dataset folder {out}: {exc.strerror or exc}", EXIT_USAGE) from exc
    if report.interrupted:
        done = len(report.rendered) + len(report.skipped)
        planned = count if count is not None else batch.count - start
        typer.echo(f"interrupted: {done} of {planned} images are complete in {out}; rerun the same command to "
                   "render the rest", err=True)
        raise typer.Exit(EXIT_BY_SIGNAL[signal.Signals(caught[0])])
    n = len(report.rendered)
    rate = n / report.elapsed_s if report.elapsed_s > 0 and n else 0.0
    drawn_by = f", drawn by {used[0]}" if used else ""
    typer.echo(f"{out}: rendered {n}, skipped {len(report.skipped)} already complete, "
               f"{report.elapsed_s:.1f} s ({rate:.2f} images/s){drawn_by}")


def register(app: typer.Typer) -> None:
    """Add ``semcoat render`` to the command line."""
    app.command("render")(render)
