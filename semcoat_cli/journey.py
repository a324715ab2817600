"""The steps of ``semcoat demo``: the journey a new user takes, each step through the interface a user has for it.

1. the service: one running at ``SEMCOAT_URL`` with a token, else the embedded default started for the demo
   (:mod:`semcoat_cli.demo_service`);
2. two preset batches submitted over REST as the Blender add-on submits them (``POST /api/v1/batches``: the spec and
   the ``local`` backend), followed with a progress bar: a training batch and a held-out batch of another seed, whose
   images the model never sees;
3. both fetched through the API and checked by the dataset checker (``semcoat fetch``);
4. a U-Net trained on the training batch for a few minutes (``semcoat train fit`` with ``training/configs/unet.yaml``,
   bf16 on CPUs that have it) and exported to ONNX (``semcoat train export``), both in one child process
   (:mod:`semcoat_cli.demo_train`) so that Lightning's signal handlers and data-loader workers end with it;
5. the held-out images segmented and measured with the learned model and with the classical baseline (``semcoat
   predict``);
6. one HTML report comparing both with the ground truth (``semcoat report pred_unet/ pred_classical/ --truth``).

The demo's folder holds everything (:class:`DemoPaths`). Library calls stand in for the commands where they run in
this process; the commands are printed so a user can repeat each step.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semcoat.batch import BatchSpec
from semcoat.errors import SemcoatError
from semcoat.presets import preset_batch

if TYPE_CHECKING:
    from render_service.client import ServiceClient
    from render_service.schemas import BatchPublic

UNET_LABEL = "U-Net (trained here)"
CLASSICAL_LABEL = "classical baseline"
FINAL = ("succeeded", "failed", "cancelled")
TRAIN_STOP_TIMEOUT_S = 60.0
CANCEL_TIMEOUT_S = 30.0
POLL_S = 1.0

Echo = Callable[[str], None]


class DemoError(SemcoatError):
    """A step of the demo failed; the message names the step, what went wrong and where its log is."""


@dataclass(frozen=True)
class DemoPlan:
    """What the demo renders and how long it trains.

    ``quick`` (the test suite's size): narrow frames (256 px wide, full depth), 128 px crops and a training of seconds.
    """

    preset: str
    train_count: int
    heldout_count: int
    seed: int
    train_seconds: int
    quick: bool = False

    def batches(self) -> tuple[BatchSpec, BatchSpec]:
        """The training batch (seed ``seed``) and the held-out batch (seed ``seed + 1``: other images)."""
        specs = []
        for kind, count, seed in (("train", self.train_count, self.seed), ("heldout", self.heldout_count,
                                                                            self.seed + 1)):
            batch = preset_batch(self.preset, count=count, seed=seed)
            batch.name = f"demo-{self.preset}-{kind}"
            # The local backend runs two render processes: the training batch in two tasks beside a one-task
            # held-out batch, or (quick) one task each, so that only two Blender processes start.
            batch.render.images_per_task = count if self.quick or kind == "heldout" else max(1, math.ceil(count / 2))
            if self.quick:
                batch.base.imaging.width_px = 256
            batch.validate()
            specs.append(batch)
        return specs[0], specs[1]

    def fit_args(self, dataset: Path, root: Path) -> list[str]:
        """``semcoat train fit`` arguments: the U-Net config on ``dataset``, logs and checkpoints under ``root``."""
        import training

        config = Path(training.__file__).parent / "configs" / "unet.yaml"
        hours, rest = divmod(self.train_seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        size = {"crop_px": 128, "crops_per_epoch": 32, "batch_size": 4, "num_workers": 0, "val_fraction": 0.25} \
            if self.quick else {"crop_px": 256, "crops_per_epoch": 256, "batch_size": 8, "num_workers": 1,
                                "val_fraction": 0.1}
        args = ["--config", str(config), "--data.datasets", f"[{dataset}]", "--data.test_fraction", "0",
                "--model.warmup_steps", "30",
                "--trainer.max_time", f"00:{hours:02d}:{minutes:02d}:{seconds:02d}",
                "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"]
        for key, value in size.items():
            args += [f"--data.{key}", str(value)]
        return args


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo writes, all inside ``root``."""

    root: Path

    @property
    def plan_file(self) -> Path:
        """The batches of this demo (marks the folder as the demo's)."""
        return self.root / "demo.json"

    @property
    def service(self) -> Path:
        """Data folder of the service the demo starts (database, token, rendered batches, logs)."""
        return self.root / "service"

    @property
    def train_data(self) -> Path:
        """The fetched training batch."""
        return self.root / "data" / "train"

    @property
    def heldout_data(self) -> Path:
        """The fetched held-out batch."""
        return self.root / "data" / "heldout"

    @property
    def training(self) -> Path:
        """Lightning's folder: logs/version_0 (metrics.csv, checkpoints/), tensorboard/, train.log."""
        return self.root / "training"

    @property
    def model(self) -> Path:
        """The exported ONNX model."""
        return self.root / "unet.onnx"

    @property
    def pred_unet(self) -> Path:
        """Predictions of the learned model on the held-out images."""
        return self.root / "predictions" / "unet"

    @property
    def pred_classical(self) -> Path:
        """Predictions of the classical baseline on the held-out images."""
        return self.root / "predictions" / "classical"

    @property
    def report(self) -> Path:
        """The report folder (report.html, figures/)."""
        return self.root / "report"

    @property
    def summary(self) -> Path:
        """What the demo did, as JSON: batches, step times, scores, conditions."""
        return self.root / "journey.json"


@dataclass
class Journey:
    """What happened: the service used, the batches, step times, training figures, prediction counts."""

    service: dict[str, Any] = field(default_factory=dict)
    batches: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    predictions: dict[str, dict[str, int]] = field(default_factory=dict)


# --- 2 and 3: batches through the REST API -------------------------------------------------------------------------
def submit(client: ServiceClient, spec: BatchSpec) -> BatchPublic:
    """``POST /batches`` with the body the add-on's Render on cluster sends (the spec, the ``local`` backend)."""
    return client.submit(spec.to_dict(), backend="local")


def follow(client: ServiceClient, batch: BatchPublic) -> BatchPublic:
    """Follow ``batch`` with a progress bar of images done until it ends (as ``semcoat submit --wait``).

    Raises
    ------
    DemoError
        When it ends in any state but ``succeeded``, with the service's sentence and where the worker's log is.
    """
    from render_service.commands.client import wait_for

    final = wait_for(client, batch, POLL_S)
    if final.state != "succeeded":
        raise DemoError(f"batch {final.id} ({final.name}) {final.state}: {final.error or 'no reason given'}")
    return final


def fetch_checked(client: ServiceClient, batch_id: str, dest: Path) -> int:
    """Copy the batch's dataset folder into ``dest`` through the API (files already there with the listed size are
    kept) and check it with the dataset checker, as ``semcoat fetch`` does; returns its image count.

    Raises
    ------
    DemoError
        When the folder fails the check (the first problems listed).
    """
    from semcoat.dataset import check_dataset

    client.fetch(batch_id, dest)
    report = check_dataset(dest)
    if not report.ok:
        problems = "\n  - ".join(report.problems[:10])
        raise DemoError(f"the fetched batch {batch_id} in {dest} fails the dataset check:\n  - {problems}")
    return report.complete


def cancel_unfinished(client: ServiceClient, batch_ids: list[str], echo: Echo,
                      timeout_s: float = CANCEL_TIMEOUT_S) -> None:
    """Cancel the batches that have not ended and wait (at most ``timeout_s``) until they have: the service's render
    processes run in sessions of their own and end only when their batch is cancelled."""
    from render_service.client import ServiceError

    waiting = []
    for batch_id in batch_ids:
        try:
            if client.batch(batch_id).state not in FINAL:
                client.cancel(batch_id)
                waiting.append(batch_id)
        except ServiceError as exc:
            echo(f"warning: could not cancel batch {batch_id}: {exc}")
    cancelled = list(waiting)
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            waiting = [b for b in waiting if client.batch(b).state not in FINAL]
        except ServiceError as exc:
            echo(f"warning: could not follow the cancel of {', '.join(waiting)}: {exc}")
            return
    if waiting:
        echo(f"warning: batch(es) {', '.join(waiting)} did not end within {timeout_s:.0f} s of their cancel")
    elif cancelled:
        echo(f"cancelled the unfinished batch(es) {', '.join(cancelled)}; their render processes have ended")


# --- 4: training and export -------------------------------------------------------------------------------------------
def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a process group (data-loader workers that outlived their trainer)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def train(plan: DemoPlan, paths: DemoPaths, echo: Echo) -> dict[str, Any]:
    """Train the U-Net on the training batch (a fresh ``paths.training``) and export it to ``paths.model``, in one
    child process (:mod:`semcoat_cli.demo_train`), showing the time used against the limit; return what it reports
    (checkpoint, epochs, steps, best validation Dice, precision).

    Raises
    ------
    DemoError
        When the training or the export fails (the end of the log is in the message).
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from render_service.embedded import spawn, stop

    shutil.rmtree(paths.training, ignore_errors=True)
    paths.training.mkdir(parents=True)
    log, result_file = paths.training / "train.log", paths.training / "result.json"
    fit_args = plan.fit_args(paths.train_data, paths.training)
    echo(f"semcoat train fit {' '.join(fit_args)}")
    echo(f"semcoat train export {paths.training}/logs/version_0/checkpoints/best-*.ckpt --out {paths.model}")
    argv = [sys.executable, "-m", "semcoat_cli.demo_train", str(result_file), str(paths.model), "--", *fit_args]
    # OpenMP threads that spin while they wait double a training step's time when other work shares the cores
    # (measured on the 2-core machine under load: 5.6 s instead of 12.5 s a step); sleeping costs little when idle.
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    child = spawn("semcoat train fit", argv, env=env, log_file=log)
    try:
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True)) as progress:
            bar = progress.add_task(f"training, at most {plan.train_seconds} s (log: {log})", total=plan.train_seconds)
            started = time.monotonic()
            while child.process.poll() is None:
                progress.update(bar, completed=min(plan.train_seconds, time.monotonic() - started))
                time.sleep(0.5)
            progress.update(bar, completed=plan.train_seconds)
    finally:
        stop(child, TRAIN_STOP_TIMEOUT_S)  # SIGTERM: Lightning ends after the step in hand
        _kill_group(child.process.pid)  # and no data-loader worker outlives it
    if child.process.returncode != 0 or not result_file.is_file():
        tail = log.read_text(errors="replace")[-2500:] if log.is_file() else "(no log)"
        raise DemoError(f"training failed (exit {child.process.returncode}); its log ({log}) ends:\n{tail}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


# --- 5 and 6: prediction and report -------------------------------------------------------------------------------
def predict(model: str | Path, dataset: Path, out: Path) -> dict[str, int]:
    """Segment and measure the dataset's images with ``model`` (a file or ``classical``) into ``out``, as ``semcoat
    predict --pixel-size-um`` does (the pixel size from dataset.json); returns images and failures."""
    from analysis.predict import predict_files
    from semcoat.dataset import read_dataset

    ds = read_dataset(dataset, require_complete=True)
    records = predict_files(model, [ds.image_path(sid) for sid in ds.ids], out, pixel_size_um=ds.info.pixel_size_um)
    return {"images": len(records), "failed": sum(r.failed for r in records)}


def scores(paths: DemoPaths) -> dict[str, dict[str, Any]]:
    """Per model: per-class Dice and per-measurement MAE (yes/no: accuracy) on the held-out images."""
    from analysis.report_data import gather_models, truth_pictures
    from analysis.report_scores import measurement_scores, segmentation_scores
    from semcoat.classes import CLASSES

    models = gather_models([paths.pred_unet, paths.pred_classical], paths.heldout_data,
                           labels=[UNET_LABEL, CLASSICAL_LABEL])
    masks = truth_pictures(paths.heldout_data).masks
    out: dict[str, dict[str, Any]] = {}
    for m in models:
        assert m.truth is not None
        dice = segmentation_scores(m.masks, masks, list(m.results)).dice
        measured = measurement_scores(m.results, m.truth)
        out[m.label] = {
            "dice": {CLASSES[cid].name: round(d.mean, 4) for cid, d in dice.items()},
            "mae": {n: round(s.mae, 4) for n, s in measured.items() if s.accuracy is None and math.isfinite(s.mae)},
            "accuracy": {n: round(s.accuracy, 4) for n, s in measured.items() if s.accuracy is not None},
        }
    return out


def score_lines(table: dict[str, dict[str, Any]]) -> list[str]:
    """The scores as aligned text: one row per class (Dice), per measurement (MAE) and per yes/no measurement
    (accuracy), one column per model; "–" where a model has no score (e.g. every image failed)."""
    from semcoat.classes import class_by_name
    from semcoat.measurements import label

    models = list(table)
    width, column = 32, 24

    def cells(kind: str, name: str, spec: str) -> str:
        values = [table[m][kind].get(name) for m in models]
        return "".join(f"{'–' if v is None else format(v, spec):>{column}}" for v in values)

    lines = [f"  {'held-out images vs ground truth':<{width}}" + "".join(f"{m:>{column}}" for m in models)]
    for name in dict.fromkeys(c for m in models for c in table[m]["dice"]):
        lines.append(f"  {'Dice ' + class_by_name(name).label:<{width}}{cells('dice', name, '.3f')}")
    for name in dict.fromkeys(n for m in models for n in table[m]["mae"]):
        lines.append(f"  {'MAE ' + label(name):<{width}}{cells('mae', name, '.3g')}")
    for name in dict.fromkeys(n for m in models for n in table[m]["accuracy"]):
        lines.append(f"  {'accuracy ' + label(name):<{width}}{cells('accuracy', name, '.0%')}")
    return lines
