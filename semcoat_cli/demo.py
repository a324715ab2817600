"""``semcoat demo``: the main job on the embedded default, end to end, with no cluster.

It runs the same commands a user would type, in order, and prints each one: write a preset batch spec, check it,
render it locally, check the dataset, measure its exact masks (the ground truth), segment its images with the classical
baseline as if they were real micrographs, and write an HTML report comparing those predictions with the ground truth.
Commands of parts that have not landed are reported and skipped.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer

from semcoat.batch import render_chunk_argv
from semcoat.presets import PRESETS, preset_batch
from semcoat_cli.errors import EXIT_FAILED, EXIT_USAGE, fail


def _steps(out: Path, batch_file: Path, count: int, pixel_size_um: float) -> list[tuple[str, Callable[[], list[str]]]]:
    """The demo's commands; each argument list is built when its step runs (the images exist only after render)."""
    dataset = out / "dataset"

    def images() -> list[str]:
        return sorted(str(p) for p in (dataset / "images").glob("*.png"))

    return [
        ("check the batch spec", lambda: ["spec", "check", str(batch_file)]),
        ("render the batch locally (headless Blender)",
         lambda: render_chunk_argv([], str(batch_file), str(dataset), start=0, count=count)),
        ("check the dataset folder", lambda: ["dataset", "check", str(dataset)]),
        ("measure the exact masks (ground truth)", lambda: ["measure", str(dataset), "--out", str(out / "truth.csv")]),
        ("segment the images with the classical baseline, as if they were real micrographs",
         lambda: ["predict", "--model", "classical", "--pixel-size-um", str(pixel_size_um), "--out",
                  str(out / "predicted"), *images()]),
        ("report predictions against the ground truth",
         lambda: ["report", str(out / "predicted"), "--truth", str(dataset), "--out", str(out / "report"),
                  "--title", "semcoat demo: classical baseline vs ground truth"]),
    ]


def _out_folder_problem(out: Path, batch_file: Path, batch_json: str) -> str | None:
    """Why ``out`` cannot hold this demo, or None. A folder of the same demo is resumed; anything else is left alone."""
    if not out.exists():
        return None
    if not out.is_dir():
        return f"{out} exists and is not a folder; choose another --out"
    if batch_file.is_file():
        if batch_file.read_text() != batch_json:
            return (f"{out} holds a demo of another batch (preset, count or seed differ); choose another --out or "
                    "remove that folder")
        return None
    if any(out.iterdir()):
        return f"{out} is not empty and holds no demo; choose an empty or new --out"
    return None


def _available_commands() -> set[str]:
    from semcoat_cli.app import app

    names = {c.name for c in app.registered_commands if c.name}
    names |= {c.callback.__name__ for c in app.registered_commands if c.callback is not None and not c.name}
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Folder for the batch spec, dataset and report."),
    preset: str = typer.Option("20h_650C", "--preset", help=f"Preset coating: {', '.join(PRESETS)}."),
    count: int = typer.Option(8, "--count", min=1, max=1000, help="Images to render."),
    seed: int = typer.Option(0, "--seed", min=0, help="Batch seed."),
) -> None:
    """Render a small preset batch locally, check it, measure it and report against the ground truth."""
    if preset not in PRESETS:
        raise fail(f"unknown preset {preset!r}; accepted: {', '.join(PRESETS)}", EXIT_USAGE)
    batch = preset_batch(preset, count=count, seed=seed)
    batch.render.images_per_task = count
    batch_file = out / "batch.json"
    problem = _out_folder_problem(out, batch_file, batch.to_json() + "\n")
    if problem:
        raise fail(problem, EXIT_USAGE)
    try:
        out.mkdir(parents=True, exist_ok=True)
        batch_file.write_text(batch.to_json() + "\n")
    except OSError as exc:
        raise fail(f"cannot write the demo folder {out}: {exc.strerror or exc}", EXIT_USAGE) from exc
    typer.echo(f"wrote {batch_file} ({preset}, {count} images, seed {seed})")
    available = _available_commands()
    for title, make_args in _steps(out, batch_file, count, batch.base.imaging.pixel_size_um):
        args = make_args()
        if args[0] not in available:
            typer.echo(f"-- skipped: {title}: `semcoat {args[0]}` is not part of this installation yet")
            continue
        shown = args if len(args) < 12 else [*args[:10], "..."]
        typer.echo(f"-- {title}: semcoat {' '.join(shown)}")
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "semcoat_cli", *args], check=False)
        if proc.returncode != 0:
            raise fail(f"step '{title}' failed (exit {proc.returncode}); see its message above", EXIT_FAILED)
        typer.echo(f"   done in {time.monotonic() - started:.1f} s")
    report = out / "report" / "report.html"
    if report.is_file():
        typer.echo(f"report: {report.resolve()}")
