"""The REST client's training commands: ``semcoat train submit``, ``status``, ``fetch``, ``cancel`` (SEMCOAT_URL,
SEMCOAT_TOKEN), the trainings' twins of ``semcoat submit|status|fetch|cancel`` (which stay the batches').

They live under ``semcoat train`` because a bare id does not say whether it is a batch or a training; the options,
output, exit codes (0 done, 1 the work failed, 2 bad input or a refused request) and the client behave as the batch
commands do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from render_service import training_progress_text as progress_text
from render_service.commands.client import FINAL, _client, _code
from semcoat_cli.errors import EXIT_FAILED, fail

if TYPE_CHECKING:
    from render_service.client import ServiceClient
    from render_service.training_schemas import TrainingPublic

READY = ("unet", "deeplab", "swin_unetr")


def _show(training: TrainingPublic) -> str:
    r = training.resources
    kind = f"{r.gpus_per_node} GPU(s)" if r.gpus_per_node else f"{r.devices_per_node} CPU process(es)"
    lines = [f"{training.id}  {training.name}  {training.state}  ({training.backend})",
             f"  config: {training.config or 'YAML given at submit'}"
             + (f", weights from {training.init_from}" if training.init_from else ""),
             f"  resources: {r.nodes} node(s) x {kind}" + (f", {r.cpus_per_task} CPU(s) each" if r.cpus_per_task
                                                          else "")]
    for folder in training.datasets:
        lines.append(f"  dataset: {folder.path}" + (f" (batch {folder.batch_id})" if folder.batch_id else ""))
    if training.slurm_job_id is not None:
        lines.append(f"  slurm job: {training.slurm_job_id}")
    lines.append(f"  created {training.created_at:%Y-%m-%d %H:%M:%S}"
                 + (f", started {training.started_at:%H:%M:%S}" if training.started_at else "")
                 + (f", finished {training.finished_at:%H:%M:%S}" if training.finished_at else ""))
    progress = training.progress
    if progress is not None:
        where = progress_text.where_text(progress)
        lines.append(f"  progress: {where or 'nothing logged yet'}")
        if scores := progress_text.scores_text(progress):
            lines.append(f"  scores: {scores}")
        if classes := progress_text.classes_text(progress):
            lines.append(f"  val Dice per class (step {progress.val_step}): {classes}")
        if progress.warning:
            lines.append(f"  warning: {progress.warning}")
    if training.error:
        lines.append(f"  error: {training.error}")
    return "\n".join(lines)


def _ids(values: list[str] | None) -> list[str]:
    """Ids given repeated or comma-separated (``--batches a,b --batches c``)."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` overrides; each value is read as YAML (``20``, ``0.5``, ``true``, ``[1, 3]``, ``unet``)."""
    import yaml

    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise fail(f"--set {item!r}: give KEY=VALUE, e.g. --set trainer.max_steps=2000")
        try:
            overrides[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise fail(f"--set {item!r}: the value is not valid YAML ({str(exc).splitlines()[0]})") from None
    return overrides


def training_body(config: str, batches: list[str], folders: list[str], overrides: dict[str, Any], backend: str,
                  resources: dict[str, Any], name: str | None, init_from_training: str | None = None) -> dict[str, Any]:
    """The ``POST /trainings`` body: CONFIG is a YAML file (sent as text) or the name of a ready config."""
    path = Path(config)
    body: dict[str, Any] = {"dataset": {"batches": batches, "folders": folders}, "overrides": overrides,
                            "backend": backend, "resources": {k: v for k, v in resources.items() if v is not None}}
    if path.is_file():
        try:
            body["config_yaml"] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"CONFIG: cannot read {path} ({exc})") from None
    elif config in READY:
        body["config"] = config
    else:
        raise fail(f"CONFIG: {config!r} is neither a file nor a ready config ({', '.join(READY)})")
    if name:
        body["name"] = name
    if init_from_training is not None:  # an empty one too: the service says it is no training id
        body["init_from_training"] = init_from_training
    return body


def progress_line(training: TrainingPublic) -> str:
    """What ``--wait`` shows while a training runs: name, state, then its progress on one line."""
    line = progress_text.one_line(training.progress)
    return f"{training.name} {training.state}" + (f": {line}" if line else "")


def wait_for_training(client: ServiceClient, training: TrainingPublic, poll_s: float) -> TrainingPublic:
    """Follow ``training`` with a live progress line (a bar towards the limit it is closest to, step, epoch,
    loss, validation Dice) until it ends; returns its final state."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    columns = (SpinnerColumn(), BarColumn(bar_width=24), TextColumn("{task.description}"))
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(progress_line(training), total=None)
        while training.state not in FINAL:
            time.sleep(poll_s)
            training = client.training(training.id)
            fraction = training.progress.fraction if training.progress is not None else None
            progress.update(bar, description=progress_line(training),
                            total=None if fraction is None else 1.0, completed=fraction or 0.0)
    return training


def submit(
    config: Annotated[str, typer.Argument(help="A training YAML file (as training/configs/unet.yaml) or a ready "
                                                "config's name: unet, deeplab, swin_unetr.")],
    batches: Annotated[list[str] | None, typer.Option("--batches", help="Ids of your succeeded batches (repeat, or "
                                                                        "comma-separated).")] = None,
    folders: Annotated[list[str] | None, typer.Option("--folders", help="Dataset folders on the cluster, absolute "
                                                                        "paths (repeat; backend slurm).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE, e.g. trainer.max_steps=2000 "
                                                                 "(repeat).")] = None,
    backend: Annotated[str, typer.Option(help="'local' (the server's processes) or 'slurm' (the cluster).")] = "local",
    nodes: Annotated[int | None, typer.Option(help="Nodes (slurm).")] = None,
    gpus_per_node: Annotated[int | None, typer.Option(help="GPUs per node, one process each; 0: CPU processes.")
                             ] = None,
    processes_per_node: Annotated[int | None, typer.Option(help="CPU processes per node without GPUs (gloo DDP).")
                                  ] = None,
    cpus_per_task: Annotated[int | None, typer.Option(help="CPU cores of each process.")] = None,
    mem_per_node_mb: Annotated[int | None, typer.Option(help="Memory per node, MB (slurm).")] = None,
    partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    account: Annotated[str | None, typer.Option(help="Slurm account.")] = None,
    time_limit: Annotated[str | None, typer.Option(help="Slurm time limit of the job: minutes or [D-]HH:MM:SS.")
                          ] = None,
    name: Annotated[str | None, typer.Option(help="A name for your list (default: the config's).")] = None,
    init_from_training: Annotated[str | None, typer.Option(
        help="Fine-tune: start from the best checkpoint of your earlier training ID (succeeded, same backend).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the training until it ends.")] = False,
    poll_s: Annotated[float, typer.Option("--poll-s", min=0.1, help="Seconds between polls with --wait.")] = 5.0,
) -> None:
    """Submit a training to the render service; prints its id (with --wait: ends 0 only if it succeeded)."""
    from render_service.client import ServiceError

    if backend not in ("local", "slurm"):
        raise fail(f"--backend: {backend!r} is not a backend; accepted: local, slurm")
    resources = {"nodes": nodes, "gpus_per_node": gpus_per_node, "processes_per_node": processes_per_node,
                 "cpus_per_task": cpus_per_task, "mem_per_node_mb": mem_per_node_mb, "partition": partition,
                 "account": account, "time_limit": time_limit}
    body = training_body(config, _ids(batches), list(folders or []), parse_set(set_), backend, resources, name,
                         init_from_training)
    try:
        with _client() as client:
            training = client.submit_training(body)
            typer.echo(training.id)
            r = training.resources
            typer.echo(f"submitted {training.name}: {len(training.datasets)} dataset folder(s), {r.nodes} node(s) x "
                       f"{r.devices_per_node} process(es) on {backend}", err=True)
            if wait:
                training = wait_for_training(client, training, poll_s)
    except ServiceError as exc:
        raise fail(str(exc), _code(exc.status_code)) from exc
    if wait:
        typer.echo(_show(training), err=True)
        if training.state != "succeeded":
            raise typer.Exit(EXIT_FAILED)


def _table_cells(training: TrainingPublic) -> tuple[str, str, str]:
    """(step, loss, Dice) cells of the status table."""
    p = training.progress
    if p is None:
        return "", "", ""
    step = "" if p.step is None else (f"{p.step}/{p.max_steps}" if p.max_steps is not None else str(p.step))
    loss = "" if p.train_loss is None else f"{p.train_loss:.4g}"
    dice = "" if p.val_dice_mean is None else f"{p.val_dice_mean:.3f}"
    return step, loss, dice


def status(
    training_id: Annotated[str | None, typer.Argument(help="A training id; without it, your latest trainings.",
                                                      show_default=False)] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the training with a live progress line until it "
                                                      "ends (needs a training id).")] = False,
    poll_s: Annotated[float, typer.Option("--poll-s", min=0.1, help="Seconds between polls with --wait.")] = 5.0,
) -> None:
    """Show one training in detail (state, step and epoch against its limits, loss, validation Dice), or a table of
    your latest trainings. With --wait, ends 0 only if it succeeded."""
    from render_service.client import ServiceError

    if wait and not training_id:
        raise fail("--wait follows one training: give its id (semcoat train status ID --wait)")
    try:
        with _client() as client:
            if training_id:
                training = client.training(training_id)
                if wait:
                    training = wait_for_training(client, training, poll_s)
                typer.echo(_show(training))
                if wait and training.state != "succeeded":
                    raise typer.Exit(EXIT_FAILED)
                return
            page = client.trainings(limit=50)
    except ServiceError as exc:
        raise fail(str(exc), _code(exc.status_code)) from exc
    typer.echo(f"{'ID':<16}  {'NAME':<24} {'STATE':<10} {'BACKEND':<8} {'STEP':<12} {'LOSS':<8} {'DICE':<6} "
               "CREATED")
    for t in page.items:
        step, loss, dice = _table_cells(t)
        typer.echo(f"{t.id:<16}  {t.name[:24]:<24} {t.state:<10} {t.backend:<8} {step:<12} {loss:<8} {dice:<6} "
                   f"{t.created_at:%Y-%m-%d %H:%M}")
    if page.total > len(page.items):
        typer.echo(f"({len(page.items)} of {page.total} shown)", err=True)


def fetch(
    training_id: Annotated[str, typer.Argument(help="The training id.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to copy the model, checkpoint and metrics into "
                                                    "(resumes what is there).")],
) -> None:
    """Copy a training's files (model.onnx, checkpoints/, metrics.json, metrics.csv, train.log) into --out. Ends 0
    when the training succeeded and its model is there."""
    from render_service.client import ServiceError

    try:
        with _client() as client:
            training = client.training(training_id)
            result = client.fetch(training_id, out, resource="trainings")
    except ServiceError as exc:
        raise fail(str(exc), _code(exc.status_code)) from exc
    except OSError as exc:
        raise fail(f"--out: cannot write into {out} ({exc.strerror})") from exc
    typer.echo(f"{result.downloaded} file(s) downloaded ({result.bytes_downloaded / 1e6:.1f} MB), "
               f"{result.skipped} already there", err=True)
    if training.state != "succeeded":
        typer.echo(f"training {training_id} is {training.state}: "
                   + ("fetch again once it has succeeded" if training.state not in FINAL else
                      (training.error or "it will not finish")), err=True)
        raise typer.Exit(EXIT_FAILED)
    if not (out / "model.onnx").is_file():
        raise fail(f"{out} holds no model.onnx although the training succeeded; fetch again", EXIT_FAILED)
    typer.echo(f"{out}: model.onnx ready for `semcoat predict --model {out / 'model.onnx'}`", err=True)


def cancel(training_id: Annotated[str, typer.Argument(help="The training id.")]) -> None:
    """Cancel a training (its job is stopped)."""
    from render_service.client import ServiceError

    try:
        with _client() as client:
            training = client.cancel_training(training_id)
    except ServiceError as exc:
        raise fail(str(exc), _code(exc.status_code)) from exc
    typer.echo(f"{training.id}: {'cancel requested' if training.state not in FINAL else 'already ' + training.state}")


def register(app: typer.Typer) -> None:
    """Add ``submit``, ``status``, ``fetch`` and ``cancel`` to the ``semcoat train`` app."""
    for command in (submit, status, fetch, cancel):
        app.command(command.__name__)(command)
