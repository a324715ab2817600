"""``semcoat train fit|validate|test|predict``: Lightning's CLI over :class:`~training.module.SegmentationModule`
and :class:`~training.data.SegmentationDataModule`, configured by YAML files (``training/configs/*.yaml``).

The model's class count and names are linked from the data's class table, so no config hard-codes them. bf16 mixed
precision asked for on a CPU where it is no speed-up (no AMX) falls back to 32-bit with a warning.
Under Slurm (``srun semcoat train fit ...`` in an sbatch script with ``--ntasks-per-node`` = devices) Lightning's
SLURMEnvironment supplies ranks and the master address.
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from semcoat.errors import InvalidArgument
from training.callbacks import MaskWriter
from training.data import SegmentationDataModule
from training.init_weights import read_checkpoint
from training.module import SegmentationModule
from training.samples import class_table

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"
SUBCOMMANDS = ("fit", "validate", "test", "predict")


def cpu_has_fast_bf16() -> bool:
    """Whether bf16 autocast speeds training up on this CPU: whether it has AMX (the matrix tiles of Intel's Xeons
    since Sapphire Rapids), as the machine of the first figures had, where bf16 steps were the faster ones.

    Not merely bf16 arithmetic: on an AMD EPYC with AVX-512 BF16 but no AMX, the U-Net's steps ran 4.3x slower under
    bf16 autocast than in fp32 and DeepLab's 2x slower (``bench/train_throughput.py``): the casts around its many
    small layers cost more than the bf16 dot products save."""
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a torch without the probe
        return False


def effective_precision(precision: str | int | None, accelerator: str | None, bf16_ok: bool) -> str | int | None:
    """The precision to run with: bf16 asked for on a CPU where it is no speed-up (``bf16_ok`` False: see
    :func:`cpu_has_fast_bf16`) becomes ``32-true``."""
    on_cpu = accelerator in (None, "auto", "cpu") and not torch.cuda.is_available()
    if on_cpu and isinstance(precision, str) and precision.startswith("bf16") and not bf16_ok:
        return "32-true"
    return precision


def precision_problem(precision: str | int | None, accelerator: str | None) -> str | None:
    """Why ``precision`` cannot train on this machine (None: it can): pure fp16 on a CPU overflows (its loss turned
    NaN from the second step, and checkpoints of NaN weights were written)."""
    on_cpu = accelerator in (None, "auto", "cpu") and not torch.cuda.is_available()
    if on_cpu and str(precision) == "16-true":
        return ("--trainer.precision 16-true trains in half precision, which overflows on a CPU (the loss turns NaN); "
                "use 32-true, or bf16-mixed on a CPU with AMX")
    return None


def check_writable_folder(folder: Path, argument: str) -> None:
    """Refuse a folder the run could not write into, without creating it (a run refused later leaves nothing): it is
    a folder or can be made one under its nearest existing parent, which must be a writable folder.

    Raises
    ------
    InvalidArgument
        About ``argument``, naming the folder and what stands in the way.
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == folder and not folder.is_dir():
        raise InvalidArgument(f"{folder} exists and is not a folder; give a folder to write into", argument=argument)
    if not existing.is_dir():
        raise InvalidArgument(f"{folder} cannot be made: {existing} is a file", argument=argument)
    try:  # a probe, not os.access: root passes that everywhere, and /proc refuses it anyway
        os.rmdir(tempfile.mkdtemp(prefix=".semcoat-probe-", dir=existing))
    except OSError as exc:
        raise InvalidArgument(f"{folder} cannot be written: {existing} refuses a new folder "
                              f"({exc.strerror or exc})", argument=argument) from exc


def default_loggers(root: str | Path) -> list[Logger]:
    """CSV logs (``ROOT/logs/version_N/metrics.csv``, also the trainer's log folder: checkpoints and confusion
    matrices go there) and TensorBoard logs (``ROOT/tensorboard``)."""
    return [CSVLogger(str(root), name="logs"), TensorBoardLogger(str(root), name="tensorboard")]


class SemcoatCLI(LightningCLI):
    """LightningCLI with the class table linked from the data to the model, a bf16 fallback, CSV + TensorBoard
    loggers under ``trainer.default_root_dir`` unless the config names loggers, and a mask writer for ``predict``
    (``--predict_dir``)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Links and extra options."""
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.add_argument("--predict_dir", default="predictions",
                            help="Folder the predict subcommand writes masks to (<dataset>/<id>.png).")

    def _parse_ckpt_path(self) -> None:
        """Refuse a ``--ckpt_path`` that is no checkpoint of ``semcoat train fit`` before Lightning's CLI reads its
        hyperparameters (its own load ends in a traceback for a missing, damaged or foreign file); ``last``, ``best``
        and ``hpc`` name checkpoints Lightning finds itself."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and str(ckpt_path) not in ("last", "best", "hpc"):
            hparams = read_checkpoint(Path(ckpt_path), argument="ckpt_path")["hyper_parameters"]
            config = self.config[subcommand]
            data = config.get("data") or {}
            folders = [*(data.get("datasets") or []), *(data.get("val_datasets") or []),
                       *(data.get("test_datasets") or [])]
            table = class_table(folders)
            names = [table[i] for i in range(len(table))]
            theirs = hparams.get("class_names")
            if isinstance(theirs, list) and theirs != names:  # else a size mismatch deep in load_state_dict
                raise InvalidArgument(f"{ckpt_path} segments the classes {theirs}; the data's class table is {names}: "
                                      "give folders of the checkpoint's classes, or a checkpoint trained on these",
                                      argument="ckpt_path")
            ours = (config.get("model") or {}).get("model")
            if hparams.get("model") != ours:  # Lightning's CLI takes the checkpoint's model options over the config's
                log.warning("--ckpt_path %s holds a %s network; it replaces the config's %s", ckpt_path,
                            hparams.get("model"), ours)
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        """Fall back from bf16 on CPUs where it is slower than fp32."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        problem = precision_problem(trainer.precision, trainer.accelerator)
        if problem:
            raise InvalidArgument(problem)
        wanted = trainer.precision
        trainer.precision = effective_precision(wanted, trainer.accelerator, cpu_has_fast_bf16())
        if trainer.precision != wanted:
            log.warning("precision %s asked for, but this CPU has no AMX, where bf16 autocast trains slower than "
                        "fp32: running %s", wanted, trainer.precision)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        check_writable_folder(Path(config.get("default_root_dir") or "runs"), "default_root_dir")
        if config.get("logger") in (None, True):
            config["logger"] = default_loggers(config.get("default_root_dir") or "runs")
        return super()._instantiate_trainer(config, callbacks)

    def _read_data_first(self) -> None:
        """Split the folders, index the training masks and check that the split the subcommand needs holds images,
        before the trainer runs: Lightning makes the loggers' folders before it calls the DataModule's setup, so a
        damaged or missing dataset would otherwise be refused after a log folder was left behind (the DataModule's
        setup runs once; Lightning's call then does nothing)."""
        datamodule: Any = self.datamodule
        if isinstance(datamodule, SegmentationDataModule) and self.subcommand:
            datamodule.setup(self.subcommand)
            trainer: Any = self.trainer
            # a fit needs validation images where a callback watches a validation metric (the shipped configs'
            # checkpoint choice and early stopping): Lightning would fail on it after the first epoch
            watched = any(str(getattr(cb, "monitor", None) or "").startswith("val/") for cb in trainer.callbacks)
            if self.subcommand != "fit" or watched:
                datamodule.check_split(self.subcommand)

    def before_fit(self) -> None:
        """Read and check ``--model.init_from`` before the fit writes anything (a refused file leaves no log folder
        and waits for no data scan), then the data; a resumed fit (``--ckpt_path``) keeps its checkpoint's weights
        instead."""
        model: Any = self.model
        if not self.config.fit.get("ckpt_path") and hasattr(model, "initial_weights"):
            model.initial_weights()
        self._read_data_first()

    def before_validate(self) -> None:
        """Read the data before anything is written."""
        self._read_data_first()

    def before_test(self) -> None:
        """Read the data before anything is written."""
        self._read_data_first()

    def before_predict(self) -> None:
        """Read the data before anything is written; write predicted masks to ``--predict_dir``."""
        check_writable_folder(Path(self.config.predict.predict_dir), "predict_dir")
        self._read_data_first()
        trainer: Any = self.trainer
        trainer.callbacks.append(MaskWriter(self.config.predict.predict_dir))


def argument_flags() -> dict[str, str]:
    """The flag of each model and data argument (``init_from`` -> ``--model.init_from``), for the errors that name
    an argument (:class:`semcoat.errors.SemcoatError`'s ``argument``)."""
    flags = {name: f"--data.{name}" for name in inspect.signature(SegmentationDataModule).parameters}
    flags.update({name: f"--model.{name}" for name in inspect.signature(SegmentationModule).parameters})
    flags.update(ckpt_path="--ckpt_path", default_root_dir="--trainer.default_root_dir", predict_dir="--predict_dir",
                 config="--config")
    return flags


def _config_files(args: list[str]) -> list[Path]:
    """The files given to ``--config`` / ``-c`` in ``args``."""
    found = []
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            found.append(Path(args[i + 1]))
        elif arg.startswith("--config="):
            found.append(Path(arg.split("=", 1)[1]))
    return found


def run(args: list[str]) -> SemcoatCLI:
    """Run a subcommand (``args[0]`` in :data:`SUBCOMMANDS`) with the rest of ``args`` as Lightning CLI arguments."""
    with warnings.catch_warnings():
        # `semcoat train fit ARGS` hands ARGS over explicitly while sys.argv holds them too: intended here.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        # Lightning's hint on every local fit where Slurm is installed; a DDP job under Slurm is `semcoat train
        # sbatch`'s or the service's, both started by srun
        warnings.filterwarnings("ignore", message="The `srun` command is available on your system but is not used")
        for config in _config_files(args):
            if config.is_file() and not config.read_text(encoding="utf-8", errors="replace").strip():
                raise InvalidArgument(f"{config} is empty; a config is a YAML mapping of trainer, model and data, as "
                                      f"{CONFIG_DIR / 'unet.yaml'}", argument="config")
        # prog: the usage line and its tip name the command users typed, not the program
        return SemcoatCLI(SegmentationModule, SegmentationDataModule, args=args, seed_everything_default=0,
                          save_config_kwargs={"overwrite": True},
                          parser_kwargs={"default_env": False, "prog": "semcoat train"})
