"""The sbatch-script builder: golden files, the script's shell syntax and chunk arithmetic, and refused settings.

The golden files are tests/render_service/fixtures/sbatch_*.sh. After an intended change of the script, rewrite
them with `.venv/bin/python -m tests.render_service.test_sbatch` and review the diff.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from render_service.slurm.errors import InvalidJobSetting
from render_service.slurm.sbatch import RenderArrayJob, array_spec, sbatch_script
from semcoat.errors import InvalidArgument, SemcoatError

FIXTURES = Path(__file__).parent / "fixtures"

MINIMAL = RenderArrayJob(
    job_name="semcoat-b42", semcoat_command="/opt/semcoat/bin/semcoat", batch_file="/scratch/semcoat/b42/batch.json",
    out_dir="/scratch/semcoat/b42/dataset", batch_count=6, images_per_task=2,
    log_path="/scratch/semcoat/b42/logs/task-%A_%a.out")

# every option, paths with spaces and a quote, a retry of some tasks, the admin's set-up lines
EVERY_OPTION = RenderArrayJob(
    job_name="semcoat-b43.retry_1", semcoat_command=("/opt/render env/bin/python", "-m", "semcoat_cli"),
    batch_file="/scratch/my batches/b43/batch.json", out_dir="/scratch/my batches/b43/it's data", batch_count=25,
    images_per_task=4, log_path="/scratch/my batches/b43/logs/task-%A_%a.out", work_dir="/scratch/my batches/b43",
    partition="gpu-a100", account="proj.sem_01", time_limit="1-02:30:00", cpus_per_task=8, mem_per_task_mb=16000,
    max_parallel_tasks=3, task_ids=(6, 0, 1, 2, 4),
    setup_lines=("module load blender/5.0", 'export OMP_PROC_BIND="close"'))

GOLDEN = {"sbatch_minimal.sh": MINIMAL, "sbatch_every_option.sh": EVERY_OPTION}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_script_matches_golden_file(name: str) -> None:
    assert sbatch_script(GOLDEN[name]) == (FIXTURES / name).read_text()


def test_unset_options_are_left_out() -> None:
    script = sbatch_script(MINIMAL)
    for option in ("--partition", "--account", "--time", "--cpus-per-task", "--mem", "--chdir", "%"):
        assert option not in script.replace("%A_%a", ""), option
    assert "#SBATCH --array=0-2\n" in script


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_scripts_are_valid_bash(name: str) -> None:
    checked = subprocess.run(["bash", "-n", str(FIXTURES / name)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def _run_task(tmp_path: Path, job: RenderArrayJob, task_id: int | None) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "job.sh"
    script.write_text(sbatch_script(job))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    if task_id is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(task_id)
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)


def test_each_task_renders_its_chunk_with_every_word_intact(tmp_path: Path) -> None:
    # a stand-in for the cluster's semcoat that records the argv it was given, one word per line
    root = tmp_path / "it's a $(dir)"
    root.mkdir()
    recorder = root / "semcoat"
    recorder.write_text('#!/bin/bash\nprintf "%s\\n" "$@" > "$RECORD_TO"\n')
    recorder.chmod(0o755)
    job = RenderArrayJob(job_name="t", semcoat_command=str(recorder), batch_file=f"{root}/batch.json",
                         out_dir=f"{root}/data set", batch_count=25, images_per_task=4, log_path=f"{root}/%a.out",
                         cpus_per_task=3, setup_lines=(f"export RECORD_TO={shlex.quote(str(root / 'argv'))}",))
    expected = {0: (0, 4), 5: (20, 4), 6: (24, 1)}  # 7 tasks; the last one holds the one image left
    for task_id, (start, count) in expected.items():
        ran = _run_task(tmp_path, job, task_id)
        assert ran.returncode == 0, ran.stderr
        argv = (root / "argv").read_text().splitlines()
        assert argv == ["render", f"{root}/batch.json", "--out", f"{root}/data set", "--start", str(start),
                        "--count", str(count), "--threads", "3"]


def test_script_outside_an_array_task_stops_with_a_message(tmp_path: Path) -> None:
    ran = _run_task(tmp_path, MINIMAL, None)
    assert ran.returncode != 0
    assert "this script runs as a task of a Slurm job array" in ran.stderr


@pytest.mark.parametrize("limit", ["30", "5:00", "1:00:00", "1-00:00:00", "2-12", "2-12:30", "0:30"])
def test_time_limit_formats_sbatch_takes_are_accepted(limit: str) -> None:
    job = RenderArrayJob(**{**_fields(MINIMAL), "time_limit": limit})
    assert f"#SBATCH --time={limit}\n" in sbatch_script(job)


def _fields(job: RenderArrayJob) -> dict[str, Any]:
    return {name: getattr(job, name) for name in job.__dataclass_fields__}


@pytest.mark.parametrize(("field", "value", "accepted"), [
    ("job_name", "x; rm -rf ~", "letters, digits"),
    ("job_name", "$(touch owned)", "letters, digits"),
    ("job_name", "", "letters, digits"),
    ("job_name", "a" * 129, "1-128"),
    ("partition", "gpu'; touch owned", "letters, digits"),
    ("account", "acct name", "letters, digits"),
    ("time_limit", "abc", "'H:M:S'"),
    ("time_limit", "0", "above zero"),
    ("time_limit", "1:2:3:4", "'D-H:M:S'"),
    ("time_limit", "30; touch owned", "minutes"),
    ("cpus_per_task", 0, "at least 1"),
    ("mem_per_task_mb", -512, "at least 1"),
    ("mem_per_task_mb", 1.5, "whole number"),
    ("max_parallel_tasks", True, "whole number"),
    ("batch_count", 0, "at least 1"),
    ("images_per_task", 0, "at least 1"),
    ("task_ids", (3,), "tasks 0 to 2"),
    ("task_ids", (-1,), "tasks 0 to 2"),
    ("task_ids", (), "None for all"),
    ("log_path", "/a/b\n#SBATCH --uid=0", "one line"),
    ("out_dir", "", "non-empty path"),
    ("semcoat_command", (), "path of the cluster's semcoat"),
    ("setup_lines", ("module load x\nexit 0",), "one shell line per entry"),
])
def test_refused_settings_name_the_value_and_what_is_accepted(field: str, value: object, accepted: str) -> None:
    with pytest.raises(InvalidJobSetting) as info:
        RenderArrayJob(**{**_fields(MINIMAL), field: value})
    error = info.value
    assert isinstance(error, InvalidArgument) and isinstance(error, SemcoatError)
    assert error.argument == field
    assert accepted in str(error)
    if value != ():
        # the message quotes the refused value (for a tuple, the refused entry)
        shown = value[0] if isinstance(value, tuple) else value
        assert repr(shown) in str(error)


@pytest.mark.parametrize(("ids", "limit", "spec"), [
    ([0, 1, 2], None, "0-2"), ([5], 2, "5%2"), ([9, 0, 1, 3, 4, 5, 7], None, "0-1,3-5,7,9"), ([2, 2, 3], 1, "2-3%1"),
])
def test_array_spec_compresses_runs(ids: list[int], limit: int | None, spec: str) -> None:
    assert array_spec(ids, limit) == spec


if __name__ == "__main__":
    for file_name, golden_job in GOLDEN.items():
        (FIXTURES / file_name).write_text(sbatch_script(golden_job))
