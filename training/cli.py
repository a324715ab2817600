"""``semcoat train ...`` and ``semcoat dataset import``: thin front ends over the training package.

torch, Lightning and MONAI are imported inside the commands, so ``semcoat --help`` stays fast (a test checks it).
``fit``, ``validate``, ``test`` and ``predict`` hand their arguments to Lightning's CLI unchanged (``--help`` shows
every option of the model, the data and the trainer).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from semcoat.errors import SemcoatError
from semcoat_cli.errors import EXIT_USAGE, fail, message_of, user_errors

train_app = typer.Typer(help="Segmentation training (Lightning): fit, validate, test, predict, export, calibrate, "
                             "package, sbatch; submit, status, fetch, cancel through the service.",
                        no_args_is_help=True)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def launched_rank() -> tuple[int, int] | None:
    """(rank, number of processes) when a launcher started this command several times at once (srun:
    ``SLURM_PROCID`` of ``SLURM_STEP_NUM_TASKS``; torchrun: ``RANK`` of ``WORLD_SIZE``); None for a single process.

    Not ``SLURM_NTASKS``: that is the allocation's, also set in the batch script itself, where a command run without
    srun is one process (with ``SLURM_PROCID`` 0); srun sets the step's task count for each task it starts."""
    for rank_name, size_name in (("SLURM_PROCID", "SLURM_STEP_NUM_TASKS"), ("RANK", "WORLD_SIZE")):
        rank, size = os.environ.get(rank_name, ""), os.environ.get(size_name, "")
        if rank.isdigit() and size.isdigit() and int(size) > 1:
            return int(rank), int(size)
    return None


def _lightning(subcommand: str, ctx: typer.Context) -> None:
    from training.lightning_cli import argument_flags, run

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("training")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    flags = argument_flags()
    # Under srun every process meets a refusal and says it in the one job log: each says which it is (a file
    # missing on one node only is then told apart from a refusal of the config itself).
    ranks = launched_rank()
    where = f"rank {ranks[0]} of {ranks[1]}: " if ranks else ""
    try:
        run([subcommand, *ctx.args])
    except SemcoatError as exc:
        raise fail(where + message_of(exc, flags), EXIT_USAGE) from exc
    except MisconfigurationException as exc:  # Lightning's own word on a setting it cannot use (e.g. a max_time)
        raise fail(where + str(exc).strip(), EXIT_USAGE) from exc
    finally:  # a second command in the same process (tests, notebooks) gets its own, on its own stderr
        logger.removeHandler(handler)


def _pass_through(subcommand: str, doc: str) -> None:
    def command(ctx: typer.Context) -> None:
        _lightning(subcommand, ctx)

    command.__doc__ = doc
    train_app.command(subcommand, context_settings=_PASS_THROUGH, add_help_option=False)(command)


for _name, _doc in (
    ("fit", "Train: --config training/configs/unet.yaml --data.datasets '[DIR, ...]' (--help: every option)."),
    ("validate", "Validate a checkpoint: --config FILE.yaml --ckpt_path CKPT."),
    ("test", "Test a checkpoint on the test split: --config FILE.yaml --ckpt_path CKPT."),
    ("predict", "Write masks of the test split: --config FILE.yaml --ckpt_path CKPT --predict_dir DIR."),
):
    _pass_through(_name, _doc)


@train_app.command("export")
def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="Lightning checkpoint (.ckpt) of semcoat train fit.")],
    out: Annotated[Path, typer.Option("--out", help="model.onnx (ONNX) or model.pt / .ts (TorchScript).")],
    sample_px: Annotated[int, typer.Option(help="Edge of the example input used to trace the network, pixels.")] = 256,
) -> None:
    """Export a checkpoint for `semcoat predict --model`: float32 N x 1 x H x W in [0, 1] to class logits."""
    from training.export import export

    with user_errors(EXIT_USAGE, {"out": "--out", "sample_px": "--sample-px"}):
        path = export(checkpoint, out, (sample_px, sample_px))
    typer.echo(f"wrote {path}")


@train_app.command("calibrate")
def calibrate_command(
    checkpoint: Annotated[Path, typer.Argument(help="Lightning checkpoint (.ckpt) of semcoat train fit.")],
    data: Annotated[list[Path], typer.Option("--data", help="Dataset folder with ground truth (renders), repeatable: "
                                             "images the model was not trained on and the final figures do not use.")],
    out: Annotated[Path, typer.Option("--out", help="The calibrated checkpoint to write (a new .ckpt file).")],
    classes: Annotated[str, typer.Option(help="Comma-separated classes to calibrate, of feal (by its thickness), "
                                         "pore and precipitate (by their area %).")] = "feal",
    offsets: Annotated[str | None, typer.Option(help="Comma-separated logit offsets to try (0 is always tried). "
                                                "Default: -2 to +1 by 0.25.", show_default=False)] = None,
    flip_average: Annotated[bool, typer.Option(help="Predict as `semcoat predict --flip-average` does (choose this "
                                               "when the model will be used so).")] = False,
) -> None:
    """Add per-class logit offsets so that the model's measurements match the ground truth (class_offsets)."""
    from training.calibrate import DEFAULT_OFFSETS, calibrate, check_output, write_calibrated

    names = list(dict.fromkeys(c.strip() for c in classes.split(",") if c.strip()))
    try:
        grid = list(DEFAULT_OFFSETS) if offsets is None else [float(o) for o in offsets.split(",") if o.strip()]
    except ValueError:
        typer.echo(f"error: --offsets must be comma-separated numbers (got {offsets!r})", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    with user_errors(EXIT_USAGE, {"classes": "--classes", "offsets": "--offsets", "out": "--out",
                                  "datasets": "--data"}):
        check_output(out)  # before minutes of predicting, not after
        found = calibrate(checkpoint, data, names, grid, flip_average)
        path = write_calibrated(checkpoint, out, found)
    for item in found:
        edge = " (the grid's edge: a wider --offsets may do better)" if item.at_edge else ""
        typer.echo(f"{item.class_name}: logit offset {item.offset:+g}{edge}; {item.measurement} mean absolute error "
                   f"{item.mae_before:.3g} -> {item.mae_after:.3g} over {item.images} images"
                   + (" (mirror-averaged)" if flip_average else ""))
    typer.echo(f"wrote {path} (export it with `semcoat train export {path} --out model.onnx`)")


@train_app.command("package")
def package_command(
    root: Annotated[Path, typer.Argument(help="The fit's --trainer.default_root_dir (holds logs/version_N).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write: a new or empty one, or an earlier package "
                                               "(replaced whole); any other folder is refused.")],
    sample_px: Annotated[int, typer.Option(help="Edge of the example input used to trace the network, pixels.")] = 256,
) -> None:
    """Package a finished fit: best checkpoint, its ONNX export, metrics.csv and a metrics.json summary."""
    from training.package import package_run

    with user_errors(EXIT_USAGE, {"out": "--out", "root": "ROOT", "sample_px": "--sample-px"}):
        packaged = package_run(root, out, (sample_px, sample_px))
    best = packaged.summary.get("best") or {}
    score = f", {packaged.summary['monitor']} {best['value']:.4f} at epoch {best['epoch']}" if best else ""
    if packaged.passed_over:
        names = ", ".join(p.name for p in packaged.passed_over)
        typer.echo(f"note: {names} in {root / 'logs'}: newer, but no fit's log (validate, test or predict); "
                   "packaged the fit before", err=True)
    typer.echo(f"wrote {packaged.out}: model.onnx, {packaged.summary['checkpoint']}{score}")


@train_app.command("sbatch")
def sbatch_command(
    config: Annotated[str, typer.Option("--config", help="Training YAML, as a path on the cluster.")],
    nodes: Annotated[int, typer.Option(help="Nodes.")] = 1,
    gpus_per_node: Annotated[int, typer.Option(help="GPUs per node; 0: CPU processes (gloo).")] = 0,
    processes_per_node: Annotated[int, typer.Option(help="CPU processes per node when there are no GPUs.")] = 1,
    cpus_per_task: Annotated[int, typer.Option(help="CPU cores per process.")] = 4,
    time: Annotated[str, typer.Option(help="Wall-clock limit, as sbatch takes it: H:M:S, D-H:M:S.")] = "04:00:00",
    partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    setup: Annotated[str, typer.Option(help="Shell line run first, e.g. 'source ~/semcoat/.venv/bin/activate'.")] = "",
    extra: Annotated[list[str] | None, typer.Argument(help="More `semcoat train fit` arguments (after --).")] = None,
) -> None:
    """Print an sbatch script running `srun semcoat train fit` as a DDP job (one task per device)."""
    from training.slurm import sbatch_script

    with user_errors(EXIT_USAGE, {"gpus_per_node": "--gpus-per-node", "processes_per_node": "--processes-per-node",
                                  "cpus_per_task": "--cpus-per-task", "time": "--time", "partition": "--partition",
                                  "config": "--config", "setup": "--setup", "nodes": "--nodes"}):
        typer.echo(sbatch_script(config, extra or [], nodes, gpus_per_node, processes_per_node, cpus_per_task, time,
                                 partition=partition, setup=setup), nl=False)


def dataset_import(
    images: Annotated[Path, typer.Argument(help="Folder of micrographs (PNG, TIFF, JPEG; 8/16-bit grey).")],
    masks: Annotated[Path, typer.Argument(help="Folder of label masks (8-bit class ids), same file stems.")],
    pixel_size_um: Annotated[float, typer.Option("--pixel-size-um", help="µm per pixel of every image.")],
    out: Annotated[Path, typer.Option("--out", help="New dataset folder.")],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the folder's name).")] = None,
) -> None:
    """Turn real micrographs and their label masks into a dataset folder (masks checked: sizes, class ids)."""
    from training.importer import import_dataset

    with user_errors(EXIT_USAGE, {"out": "--out"}):
        info = import_dataset(images, masks, pixel_size_um, out, name)
    typer.echo(f"ok: {out}: {info.count} samples, {info.image_width_px}x{info.image_height_px} px, "
               f"{info.pixel_size_um:g} µm/px")


def register(app: typer.Typer) -> None:
    """Add ``semcoat train`` (with the service's ``submit``, ``status``, ``fetch`` and ``cancel`` of trainings) and
    ``semcoat dataset import``."""
    from render_service.commands.training_client import register as register_client
    from semcoat_cli.core import dataset_app

    register_client(train_app)
    app.add_typer(train_app, name="train")
    dataset_app.command("import")(dataset_import)

