"""The command lines of a training job, and an sbatch script for running one by hand (``semcoat train sbatch``).

A DDP job under Slurm has one task per device, started by ``srun``, so that Lightning's SLURMEnvironment reads the
ranks (SLURM_PROCID, SLURM_LOCALID, SLURM_NODEID) and the master node from Slurm; after the fit, one process
packages the run (:func:`package_argv`: best checkpoint, ONNX model, metrics). The render service builds its
training job from the same two command lines (:mod:`render_service.slurm.sbatch`). Pure text, no torch: the
service imports this module.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from semcoat.errors import InvalidArgument


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
    if nodes < 1 or gpus_per_node < 0 or processes_per_node < 1 or cpus_per_task < 1:
        raise InvalidArgument(f"nodes, processes and CPUs must be at least 1 and GPUs at least 0 (got nodes={nodes}, "
                              f"gpus_per_node={gpus_per_node}, processes_per_node={processes_per_node}, "
                              f"cpus_per_task={cpus_per_task})", argument="nodes")
    if job_name in ("bash", "interactive"):
        raise InvalidArgument(f"job name {job_name!r} makes Lightning ignore Slurm; choose another",
                              argument="job_name")
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
