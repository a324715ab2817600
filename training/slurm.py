"""The command lines of a training job, and an sbatch script for running one by hand (``semcoat train sbatch``).

A DDP job under Slurm has one task per device, started by ``srun``, so that Lightning's SLURMEnvironment reads the
ranks (SLURM_PROCID, SLURM_LOCALID, SLURM_NODEID) and the master node from Slurm; after the fit, one process
packages the run (:func:`package_argv`: best checkpoint, ONNX model, metrics). The render service builds its
training job from the same two command lines (:mod:`render_service.slurm.sbatch`). Pure text, no torch: the
service imports this module.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from semcoat.errors import InvalidArgument

# Job, partition and account names that are never shell syntax, and the time formats sbatch --time takes (M, M:S,
# H:M:S, D-H, D-H:M, D-H:M:S): what this script and the service's jobs accept.
_SLURM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SLURM_NAME_HELP = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
_TIME_LIMIT = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")
TIME_LIMIT_HELP = "minutes ('30'), 'M:S', 'H:M:S' ('1:00:00'), 'D-H', 'D-H:M' or 'D-H:M:S' ('1-00:00:00'), above zero"


def is_slurm_name(value: object) -> bool:
    """Whether ``value`` is a Slurm job, partition or account name of :data:`SLURM_NAME_HELP`."""
    return isinstance(value, str) and _SLURM_NAME.fullmatch(value) is not None


def is_time_limit(value: object) -> bool:
    """Whether ``value`` is a time limit sbatch takes, above zero (:data:`TIME_LIMIT_HELP`)."""
    return isinstance(value, str) and _TIME_LIMIT.fullmatch(value) is not None and any(c in "123456789" for c in value)


def fit_argv(semcoat: str | Sequence[str], config: str, nodes: int = 1, devices: int = 1, gpus: bool = False,
             root_dir: str | None = None, extra_args: Sequence[str] = ()) -> list[str]:
    """``semcoat train fit`` for ``devices`` processes on each of ``nodes`` nodes (``ddp`` when more than one in
    all; on GPUs when ``gpus``, else CPU processes talking gloo). ``semcoat``: the command (a path or an argv);
    ``root_dir``: the run's folder (``trainer.default_root_dir``), the config's when None."""
    command = [semcoat] if isinstance(semcoat, str) else list(semcoat)
    argv = [*command, "train", "fit", "--config", config, "--trainer.accelerator", "gpu" if gpus else "cpu",
            "--trainer.devices", str(devices), "--trainer.num_nodes", str(nodes)]
    if devices * nodes > 1:
        argv += ["--trainer.strategy", "ddp"]
    if root_dir is not None:
        argv += ["--trainer.default_root_dir", root_dir]
    return [*argv, *extra_args]


def package_argv(semcoat: str | Sequence[str], root_dir: str, out_dir: str) -> list[str]:
    """``semcoat train package``: the best checkpoint of the fit in ``root_dir``, exported to ONNX, with its
    metrics, into ``out_dir``."""
    command = [semcoat] if isinstance(semcoat, str) else list(semcoat)
    return [*command, "train", "package", root_dir, "--out", out_dir]


def sbatch_script(config: str, extra_args: Sequence[str] = (), nodes: int = 1, gpus_per_node: int = 0,
                  processes_per_node: int = 1, cpus_per_task: int = 4, time: str = "04:00:00",
                  job_name: str = "semcoat-train", partition: str | None = None, setup: str = "") -> str:
    """The sbatch script text.

    Parameters
    ----------
    config : the training YAML, as the cluster sees its path.
    extra_args : more ``semcoat train fit`` arguments (``--data.datasets [...]``), as the cluster sees them.
    nodes : nodes (``--trainer.num_nodes``).
    gpus_per_node : GPUs per node; 0 runs ``processes_per_node`` CPU processes per node (gloo).
    cpus_per_task : CPU cores per process (data-loader workers and, on CPU, the training threads).
    time : wall-clock limit, Slurm's ``HH:MM:SS`` or ``D-HH:MM:SS``.
    job_name : never ``bash`` or ``interactive`` (Lightning then ignores the Slurm environment).
    partition : Slurm partition, the cluster's default when None.
    setup : shell lines run before ``srun`` (activating the environment that holds the ``train`` extra).
    """
    for argument, value, low in (("nodes", nodes, 1), ("gpus_per_node", gpus_per_node, 0),
                                 ("processes_per_node", processes_per_node, 1), ("cpus_per_task", cpus_per_task, 1)):
        if value < low:
            raise InvalidArgument(f"give a whole number of at least {low} (got {value})", argument=argument)
    if job_name in ("bash", "interactive"):
        raise InvalidArgument(f"job name {job_name!r} makes Lightning ignore Slurm; choose another",
                              argument="job_name")
    for argument, name in (("job_name", job_name), ("partition", partition)):
        if name is not None and not is_slurm_name(name):
            raise InvalidArgument(f"{name!r} is not accepted: use {SLURM_NAME_HELP}", argument=argument)
    if not is_time_limit(time):
        raise InvalidArgument(f"{time!r} is not accepted: use {TIME_LIMIT_HELP}", argument="time")
    for argument, text in (("config", config), ("setup", setup)):
        if any(c in text for c in "\n\r\0") or (argument == "config" and not text):
            what = "a path" if argument == "config" else "a shell line"
            raise InvalidArgument(f"{text!r} is not accepted: give {what} on one line", argument=argument)
    tasks = gpus_per_node or processes_per_node
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}", f"#SBATCH --nodes={nodes}",
             f"#SBATCH --ntasks-per-node={tasks}", f"#SBATCH --cpus-per-task={cpus_per_task}", f"#SBATCH --time={time}"]
    if gpus_per_node:
        lines.append(f"#SBATCH --gres=gpu:{gpus_per_node}")
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    lines += ["set -euo pipefail", *([setup] if setup else []),
              f"export OMP_NUM_THREADS={cpus_per_task}"]
    lines.append(shlex.join(["srun", *fit_argv("semcoat", config, nodes, tasks, gpus_per_node > 0,
                                               extra_args=extra_args)]))
    return "\n".join(lines) + "\n"
