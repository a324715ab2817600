"""An sbatch script that runs ``semcoat train fit`` as a DDP job: one task per device, started by ``srun``, so that
Lightning's SLURMEnvironment reads the ranks (SLURM_PROCID, SLURM_LOCALID, SLURM_NODEID) and the master node from
Slurm. Pure text; submitting it (through the service) is a later step.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from semcoat.errors import InvalidArgument


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
    fit = ["srun", "semcoat", "train", "fit", "--config", config,
           "--trainer.accelerator", "gpu" if gpus_per_node else "cpu", "--trainer.devices", str(tasks),
           "--trainer.num_nodes", str(nodes)]
    if tasks * nodes > 1:
        fit += ["--trainer.strategy", "ddp"]
    lines.append(shlex.join([*fit, *extra_args]))
    return "\n".join(lines) + "\n"
