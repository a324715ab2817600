"""The training job's scripts: golden files (sbatch with every option, a CPU job, the local backend's script), valid
bash, every word reaching the commands intact, the package step only after a fit that succeeded, and refused
settings.

After an intended change of the scripts, rewrite the golden files with
`.venv/bin/python -m tests.render_service.test_training_sbatch` and review the diff.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from render_service.slurm.errors import InvalidJobSetting
from render_service.slurm.sbatch import TrainingJob, training_local_script, training_sbatch_script

FIXTURES = Path(__file__).parent / "fixtures"

EVERY_OPTION = TrainingJob(
    job_name="semcoat-train-9b1c7e2f40d35a68", semcoat_command=("/opt/train env/bin/python", "-m", "semcoat_cli"),
    work_dir="/scratch/my trainings/9b1c", config_file="config.yaml", run_dir="run", out_dir="it's outputs",
    log_path="/scratch/my trainings/9b1c/logs/train-%j.out", nodes=2, tasks_per_node=4, gpus_per_node=4,
    cpus_per_task=8, mem_per_node_mb=64000, partition="gpu-a100", account="proj.sem_01", time_limit="1-00:00:00",
    setup_lines=("module load cuda/12", "export NCCL_DEBUG=WARN"))
CPU = TrainingJob(
    job_name="semcoat-train-0a1b", semcoat_command="/opt/semcoat-cluster/bin/semcoat",
    work_dir="/home/hpc/semcoat-trainings/0a1b", config_file="config.yaml", run_dir="run", out_dir="outputs",
    log_path="/home/hpc/semcoat-trainings/0a1b/logs/train-%j.out", tasks_per_node=2, cpus_per_task=1)

GOLDEN = {"training_sbatch_every_option.sh": (training_sbatch_script, EVERY_OPTION),
          "training_sbatch_cpu.sh": (training_sbatch_script, CPU),
          "training_local.sh": (training_local_script, CPU)}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_script_matches_golden_file_and_is_valid_bash(name: str) -> None:
    build, job = GOLDEN[name]
    assert build(job) == (FIXTURES / name).read_text()
    checked = subprocess.run(["bash", "-n", str(FIXTURES / name)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_one_job_not_an_array_one_task_per_device() -> None:
    script = training_sbatch_script(CPU)
    assert "--array" not in script and "#SBATCH --ntasks-per-node=2\n" in script and "--gres" not in script
    assert "--trainer.accelerator cpu --trainer.devices 2 --trainer.num_nodes 1 --trainer.strategy ddp" in script
    single = training_sbatch_script(dataclasses.replace(CPU, tasks_per_node=1, cpus_per_task=None))
    assert "--trainer.strategy" not in single and "SRUN_CPUS_PER_TASK" not in single
    assert "export OMP_NUM_THREADS=1\n" in single


def _stand_ins(tmp_path: Path, fit_exit: int) -> Path:
    """A fake semcoat recording each call's words, and a fake srun that runs its command as one task."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "semcoat").write_text(
        "#!/bin/bash\n"
        f'printf "%s\\n" "$@" > "$RECORD/$2.argv"\n'
        f'if [ "$2" = fit ]; then exit {fit_exit}; fi\n')
    (bin_dir / "srun").write_text('#!/bin/bash\nshift\nexec "$@"\n')  # drops --kill-on-bad-exit=1
    for tool in ("semcoat", "srun"):
        (bin_dir / tool).chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("fit_exit", [0, 3])
def test_the_fit_then_the_package_run_with_every_word_intact(tmp_path: Path, fit_exit: int) -> None:
    bin_dir = _stand_ins(tmp_path, fit_exit)
    work = tmp_path / "it's a $(dir)"
    work.mkdir()
    job = dataclasses.replace(CPU, semcoat_command=str(bin_dir / "semcoat"), work_dir=str(work),
                              out_dir="out; touch owned")
    script = tmp_path / "job.sh"
    script.write_text(training_sbatch_script(job))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SLURM_")},
           "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(tmp_path)}
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=work)
    assert done.returncode == fit_exit, done.stderr
    fit = (tmp_path / "fit.argv").read_text().splitlines()
    assert fit[:4] == ["train", "fit", "--config", "config.yaml"] and fit[-2:] == ["--trainer.default_root_dir",
                                                                                   "run"]
    if fit_exit:
        assert not (tmp_path / "package.argv").exists()  # set -e: no package of a failed fit
    else:
        assert (tmp_path / "package.argv").read_text().splitlines() == ["train", "package", "run", "--out",
                                                                        "out; touch owned"]
    assert not (work / "owned").exists()


def _fields(job: TrainingJob) -> dict[str, Any]:
    return {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}


@pytest.mark.parametrize(("field", "value", "accepted"), [
    ("job_name", "bash", "ignores the Slurm environment"),
    ("job_name", "train; rm -rf ~", "letters, digits"),
    ("partition", "gpu\n#SBATCH --uid=0", "letters, digits"),
    ("account", "$(id)", "letters, digits"),
    ("time_limit", "forever", "minutes"),
    ("nodes", 0, "at least 1"),
    ("tasks_per_node", True, "whole number"),
    ("gpus_per_node", -1, "at least 0"),
    ("gpus_per_node", 2, "one task per GPU"),
    ("cpus_per_task", 0, "at least 1"),
    ("mem_per_node_mb", 1.5, "whole number"),
    ("log_path", "/a/b\n#SBATCH --uid=0", "one line"),
    ("config_file", "", "non-empty path"),
    ("semcoat_command", (), "path of the cluster's semcoat"),
    ("setup_lines", ("module load x\nexit 0",), "one shell line per entry"),
])
def test_refused_settings_name_the_value_and_what_is_accepted(field: str, value: object, accepted: str) -> None:
    with pytest.raises(InvalidJobSetting) as info:
        TrainingJob(**{**_fields(EVERY_OPTION), field: value})
    assert info.value.argument == field and accepted in str(info.value)


if __name__ == "__main__":
    for file_name, (builder, golden_job) in GOLDEN.items():
        (FIXTURES / file_name).write_text(builder(golden_job))
