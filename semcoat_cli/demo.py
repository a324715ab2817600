"""``semcoat demo``: the whole journey on the embedded default, in one command (the README's command 1).

Start (or reuse) the render service, submit a preset batch and a held-out batch over REST as the Blender add-on does
and follow them, fetch and check them, train a small U-Net for a few minutes, export it to ONNX, segment and measure
the held-out images with it and with the classical baseline, write one report comparing both with the ground truth,
print where everything is, and stop everything it started, on success, failure or Ctrl-C alike. The steps are
:mod:`semcoat_cli.journey`; the service :mod:`semcoat_cli.demo_service`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from semcoat.errors import SemcoatError
from semcoat.presets import PRESETS
from semcoat_cli.errors import EXIT_BY_SIGNAL, EXIT_FAILED, EXIT_USAGE, fail
from semcoat_cli.journey import (
    CLASSICAL_LABEL,
    UNET_LABEL,
    DemoPaths,
    DemoPlan,
    Journey,
    cancel_unfinished,
    fetch_checked,
    follow,
    predict,
    score_lines,
    scores,
    submit,
    train,
)

# What each part of the stack needs here; the demo uses all of them (bpy only for a service it starts itself).
_PARTS = {
    "the service (semcoat[service])": ("fastapi", "uvicorn", "celery", "redis", "httpx"),
    "training (semcoat[train])": ("torch", "lightning", "monai", "onnx"),
    "analysis (semcoat[analysis])": ("onnxruntime", "cv2", "matplotlib", "skimage"),
}
_RENDER_PART = ("rendering (semcoat[render])", ("bpy",))
STEPS = 6


def missing_parts(with_render: bool) -> list[str]:
    """The parts of the stack this installation lacks, each with its missing modules."""
    parts = dict(_PARTS)
    if with_render:
        parts[_RENDER_PART[0]] = _RENDER_PART[1]
    missing = []
    for part, modules in parts.items():
        absent = [m for m in modules if importlib.util.find_spec(m) is None]
        if absent:
            missing.append(f"{part}: {', '.join(absent)}")
    return missing


def out_folder_problem(out: Path, plan_json: str) -> str | None:
    """Why ``out`` cannot hold this demo, or None. A folder of the same demo (same batches) is run again in place
    (fetches resume, later steps are redone); anything else is left alone."""
    paths = DemoPaths(out)
    if not out.exists():
        return None
    if not out.is_dir():
        return f"{out} exists and is not a folder; choose another --out"
    if paths.plan_file.is_file():
        if paths.plan_file.read_text() != plan_json:
            return (f"{out} holds a demo of other batches (the preset, counts, seed or --quick differ, or this "
                    "version's preset does); choose another --out or remove that folder")
        return None
    if any(out.iterdir()):
        return f"{out} is not empty and holds no demo; choose an empty or new --out"
    return None


def plan_json(plan: DemoPlan) -> str:
    """The demo's batches as JSON text (``demo.json``): what makes two demo folders the same."""
    train_spec, heldout_spec = plan.batches()
    return json.dumps({"train": train_spec.to_dict(), "heldout": heldout_spec.to_dict()}, indent=2) + "\n"


@contextlib.contextmanager
def _step(journey: Journey, number: int, name: str, title: str) -> Iterator[None]:
    typer.echo(f"[{number}/{STEPS}] {title}")
    started = time.monotonic()
    yield
    journey.seconds[name] = round(time.monotonic() - started, 1)
    typer.echo(f"      done in {journey.seconds[name]:.1f} s")


def run(plan: DemoPlan, paths: DemoPaths) -> Journey:
    """Every step of the journey; whatever happens, unfinished batches are cancelled and a service the demo started
    is stopped before this returns or raises. SIGINT/SIGTERM raise ``StopRequested`` (the cleanup still runs)."""
    from render_service.client import ServiceError
    from render_service.embedded import stop_on_signals
    from semcoat_cli.demo_service import DemoService, running_service, start_service, stop_service

    def echo(line: str) -> None:
        typer.echo(f"      {line}")

    journey = Journey()
    service: DemoService | None = None
    submitted: list[str] = []

    def release() -> None:
        """Cancel the batches that have not ended and stop the service if the demo started it (once)."""
        nonlocal service
        if service is None:
            return
        with service.client() as client:
            cancel_unfinished(client, submitted, echo)
        if service.started:
            stop_service(service)
            echo(f"stopped the service the demo started at {service.url} (API, worker, Redis)")
        service = None

    with stop_on_signals():
        try:
            with _step(journey, 1, "service", "the render service"):
                service, why_not = running_service()
                if service is not None:
                    echo(f"using the service already running at {service.url}")
                else:
                    if why_not:
                        echo(f"not using the service at the default address: {why_not}")
                    missing = missing_parts(with_render=True)
                    if missing:
                        raise SemcoatError("this installation lacks " + "; ".join(missing) + " (install the whole "
                                           "stack: bash scripts/setup.sh)")
                    service = start_service(paths.service, echo)
                journey.service = {"url": service.url, "started": service.started,
                                   "data_dir": str(paths.service) if service.started else None}
            train_spec, heldout_spec = plan.batches()
            with service.client() as client:
                with _step(journey, 2, "render", "render a training batch and a held-out batch through the REST API, "
                                                 "as the Blender add-on's Render on cluster does"):
                    batches = []
                    for kind, spec in (("train", train_spec), ("heldout", heldout_spec)):
                        batch = submit(client, spec)
                        submitted.append(batch.id)
                        batches.append(batch)
                        echo(f"POST {service.url}/api/v1/batches -> batch {batch.id} ({spec.name}: {spec.count} "
                             f"images of {spec.base.imaging.width_px}x{spec.base.imaging.height_px} px, seed "
                             f"{spec.seed}, {batch.tasks.total} task(s) on the local backend)")
                        journey.batches[kind] = {"id": batch.id, "name": spec.name, "count": spec.count}
                    for batch in batches:
                        follow(client, batch)
                with _step(journey, 3, "fetch", "fetch both batches through the API and check them "
                                                "(semcoat fetch ID --out DIR)"):
                    for kind, dest in (("train", paths.train_data), ("heldout", paths.heldout_data)):
                        count = fetch_checked(client, journey.batches[kind]["id"], dest)
                        journey.batches[kind]["folder"] = str(dest)
                        echo(f"{dest}: {count} images, dataset check passed")
                    release()  # the rest is local work: the service's cores are the training's now
            with _step(journey, 4, "train", f"train a U-Net on the {plan.train_count} training images for at most "
                                            f"{plan.train_seconds} s and export it to ONNX"):
                journey.training = train(plan, paths, echo)
                t = journey.training
                best = t.get("best_val_dice_mean")
                echo(f"{t['epochs']} epoch(s), {t['steps']} steps at {t['precision']} precision in {t['fit_seconds']} s"
                     + (f"; best validation Dice (mean over classes) {best:.3f}" if best is not None else ""))
                echo(f"{paths.model} ({paths.model.stat().st_size / 1e6:.1f} MB, exported in {t['export_seconds']} s)")
            with _step(journey, 5, "predict", f"segment and measure the {plan.heldout_count} held-out images with the "
                                              "U-Net and with the classical baseline (semcoat predict)"):
                for key, model, out in (("unet", paths.model, paths.pred_unet),
                                        ("classical", "classical", paths.pred_classical)):
                    journey.predictions[key] = predict(model, paths.heldout_data, out)
                    failed = journey.predictions[key]["failed"]
                    echo(f"{out}: {journey.predictions[key]['images']} images"
                         + (f", {failed} failed (see predictions.json)" if failed else ""))
            with _step(journey, 6, "report", "report both against the ground truth (semcoat report predictions/unet "
                                             "predictions/classical --truth data/heldout)"):
                from analysis.report import write_report

                page = write_report(
                    [paths.pred_unet, paths.pred_classical], paths.report, truth=paths.heldout_data,
                    labels=[UNET_LABEL, CLASSICAL_LABEL],
                    title=f"semcoat demo: a U-Net trained here vs the classical baseline on {plan.heldout_count} "
                          f"held-out {plan.preset} renders",
                    on_warning=lambda message: echo(f"warning: {message}"))
                echo(str(page))
        except ServiceError as exc:
            raise SemcoatError(f"the render service: {exc}") from exc
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup short
                signal.signal(sig, signal.SIG_IGN)
            release()
    return journey


def _where(plan: DemoPlan, paths: DemoPaths, journey: Journey, service_note: str) -> list[str]:
    ckpt = journey.training.get("checkpoint", "")
    return [
        f"Where everything is ({paths.root}):",
        f"  report       {paths.report / 'report.html'}   <- open it in a browser",
        f"  batches      training {journey.batches['train']['id']} -> {paths.train_data}; held-out "
        f"{journey.batches['heldout']['id']} -> {paths.heldout_data}",
        f"  service      {service_note}",
        f"  training     {paths.training} (train.log; metrics.csv and checkpoints in logs/version_0; TensorBoard: "
        f"tensorboard --logdir {paths.training / 'tensorboard'}); checkpoint {ckpt}",
        f"  model        {paths.model}: semcoat predict --model {paths.model} YOUR/*.tif --out results/",
        f"  predictions  {paths.pred_unet}, {paths.pred_classical} (masks, overlays, measurements.csv)",
        f"  summary      {paths.summary} (batches, step times, scores)",
    ]


def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Folder for everything the demo makes."),
    preset: str = typer.Option("20h_650C", "--preset", help=f"Preset coating: {', '.join(PRESETS)}."),
    count: int = typer.Option(None, "--count", min=2, max=1000, show_default="32; 4 with --quick",
                              help="Training images to render."),
    heldout: int = typer.Option(None, "--heldout", min=1, max=1000, show_default="8; 2 with --quick",
                                help="Held-out images (another seed: the model never sees them)."),
    minutes: float = typer.Option(None, "--minutes", min=0.05, max=600, show_default="3; 0.25 with --quick",
                                  help="Training time limit, minutes."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the training batch (held-out: seed + 1)."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes and seconds of training (the test suite's run)."),
) -> None:
    """The whole journey on the embedded default: service, batches over REST, fetch, training, ONNX export,
    prediction with the learned model and the classical baseline on held-out images, and a report comparing them."""
    from render_service.embedded import StopRequested

    if preset not in PRESETS:
        raise fail(f"--preset: unknown preset {preset!r}; accepted: {', '.join(PRESETS)}", EXIT_USAGE)
    plan = DemoPlan(preset, count or (4 if quick else 32), heldout or (2 if quick else 8), seed,
                    max(3, round((minutes or (0.25 if quick else 3.0)) * 60)), quick)
    out = out.expanduser().absolute()  # every path printed and handed to the service and the training is absolute
    paths = DemoPaths(out)
    text = plan_json(plan)
    problem = out_folder_problem(out, text)
    if problem:
        raise fail(problem, EXIT_USAGE)
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths.plan_file.write_text(text)
    except OSError as exc:
        raise fail(f"cannot write the demo folder {out}: {exc.strerror or exc}", EXIT_USAGE) from exc
    typer.echo(f"semcoat demo: {plan.train_count} training + {plan.heldout_count} held-out {preset} images, "
               f"{plan.train_seconds} s of training, everything in {out}")
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    try:
        journey = run(plan, paths)
    except StopRequested as stopped:
        typer.echo("semcoat demo: stopped; every process it started has ended (run it again to start over)", err=True)
        raise typer.Exit(EXIT_BY_SIGNAL.get(signal.Signals(stopped.signum), EXIT_FAILED)) from None
    except SemcoatError as exc:
        raise fail(str(exc), EXIT_FAILED) from exc
    total_s = time.monotonic() - started
    table = scores(paths)
    summary: dict[str, Any] = {
        "plan": {"preset": preset, "train_count": plan.train_count, "heldout_count": plan.heldout_count,
                 "seed": seed, "train_seconds": plan.train_seconds, "quick": quick},
        "service": journey.service, "batches": journey.batches, "training": journey.training,
        "predictions": journey.predictions,
        "seconds": {**journey.seconds, "total": round(total_s, 1)}, "scores": table,
        "conditions": {"cpu_count": os.cpu_count(), "load_1min_before": load_before,
                       "load_1min_after": os.getloadavg()[0]},
        "report": str(paths.report / "report.html"),
    }
    paths.summary.write_text(json.dumps(summary, indent=2) + "\n")
    typer.echo(f"\nThe whole journey took {total_s / 60:.1f} min. On the held-out images:")
    for line in score_lines(table):
        typer.echo(line)
    typer.echo("  (Dice: overlap with the true mask, 1 is perfect; MAE: mean absolute error of the measurement)\n")
    service_note = (f"{journey.service['url']}, started for the demo and stopped; its data and logs (serve.log, "
                    f"worker.log) in {paths.service}" if journey.service.get("started")
                    else f"{journey.service.get('url')}, already running (left running)")
    for line in _where(plan, paths, journey, service_note):
        typer.echo(line)
