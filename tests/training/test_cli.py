"""`semcoat dataset import`, `semcoat train --help` and `semcoat train sbatch`; the Slurm environment Lightning
sees under srun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from semcoat.dataset import check_dataset, read_dataset
from semcoat_cli.app import app
from tests.training.synth import image_of, layered_mask
from training.slurm import sbatch_script

runner = CliRunner()


def _real_folders(tmp_path: Path, n: int = 3, bit16: bool = False) -> tuple[Path, Path]:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = layered_mask(96, 128, rng)
        image = image_of(mask, rng)
        cv2.imwrite(str(images / f"sem_{i}.tif"), image.astype(np.uint16) * 257 if bit16 else image)
        cv2.imwrite(str(masks / f"sem_{i}.png"), mask)
    return images, masks


@pytest.mark.parametrize("bit16", [False, True])
def test_dataset_import_writes_a_valid_dataset(tmp_path: Path, bit16: bool) -> None:
    images, masks = _real_folders(tmp_path, bit16=bit16)
    out = tmp_path / "real"
    result = runner.invoke(app, ["dataset", "import", str(images), str(masks), "--pixel-size-um", "0.2",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = check_dataset(out)
    assert report.ok, report.problems
    ds = read_dataset(out)
    assert ds.info.bit_depth == (16 if bit16 else 8) and ds.info.pixel_size_um == 0.2 and len(ds.ids) == 3
    assert ds.meta(ds.ids[0])["params"]["source_image"] == "sem_0.tif"
    stored = cv2.imread(str(ds.mask_path(ds.ids[1])), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(stored, cv2.imread(str(masks / "sem_1.png"), cv2.IMREAD_UNCHANGED))
    assert ds.meta(ds.ids[0])["truth"]["fe2al5_thickness_um"] > 0


def test_dataset_import_refuses_bad_options_and_twin_images(tmp_path: Path) -> None:
    images, masks = _real_folders(tmp_path)
    base = ["dataset", "import", str(images), str(masks)]
    for size in ("0", "-1", "nan", "1e-12", "1e9"):  # one message, with the range, for every bad value
        result = runner.invoke(app, [*base, "--pixel-size-um", size, "--out", str(tmp_path / "o")])
        assert result.exit_code == 2, result.output
        assert "the pixel size must be a finite number of µm per pixel from 1e-05 to 100 (e.g. 0.05)" in result.output
    result = runner.invoke(app, [*base, "--pixel-size-um", "0.2", "--out", "/proc/semcoat-import"])
    assert result.exit_code == 2 and "--out: /proc/semcoat-import: cannot write the dataset there" in result.output
    assert "Traceback" not in result.output
    cv2.imwrite(str(images / "sem_1.png"), cv2.imread(str(images / "sem_1.tif"), cv2.IMREAD_UNCHANGED))
    result = runner.invoke(app, [*base, "--pixel-size-um", "0.2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "images share a file stem, and so their mask: sem_1.png, sem_1.tif" in result.output
    assert not (tmp_path / "o").exists()


def test_dataset_import_refuses_bad_masks(tmp_path: Path) -> None:
    images, masks = _real_folders(tmp_path)
    args = ["dataset", "import", str(images), str(masks), "--pixel-size-um", "0.2", "--out", str(tmp_path / "o")]
    bad = cv2.imread(str(masks / "sem_1.png"), cv2.IMREAD_UNCHANGED)
    bad[0, 0] = 42
    cv2.imwrite(str(masks / "sem_1.png"), bad)
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "sem_1.png: unknown class id(s) [42]" in result.output
    cv2.imwrite(str(masks / "sem_1.png"), bad[:50])
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "mask is 128x50 px but its image is 128x96 px" in result.output
    from PIL import Image

    palette = Image.fromarray(cv2.imread(str(masks / "sem_0.png"), cv2.IMREAD_UNCHANGED), mode="L").convert("P")
    palette.save(masks / "sem_1.png")  # indices in one channel and a colour table: what labelling tools write
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "sem_1.png: a palette (indexed-colour) PNG" in result.output, result.output
    (masks / "sem_1.png").unlink()
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "no mask" in result.output and "sem_1.tif" in result.output
    assert not (tmp_path / "o").exists()  # nothing written before every pair passed


def test_train_help_lists_commands_and_imports_no_torch() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    for name in ("fit", "validate", "test", "predict", "export", "sbatch"):
        assert name in result.output
    code = ("import sys; from typer.testing import CliRunner; from semcoat_cli.app import app; "
            "r = CliRunner().invoke(app, ['train', '--help']); assert r.exit_code == 0; "
            "assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_train_fit_help_is_lightnings() -> None:
    result = runner.invoke(app, ["train", "fit", "--help"])
    assert result.exit_code == 0 and "--data.datasets" in result.output and "--model.loss" in result.output


def test_an_empty_config_and_a_bare_fit_say_what_to_give(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("\n")
    result = runner.invoke(app, ["train", "fit", "--config", str(empty), "--data.datasets", "[a]"])
    assert result.exit_code == 2 and f"error: --config: {empty} is empty; a config is a YAML mapping" in result.output
    result = runner.invoke(app, ["train", "fit"])
    assert result.exit_code == 2 and "semcoat train --help" in result.output, result.output


def test_every_data_and_model_option_has_its_help_text() -> None:
    """--help takes each option's text from the classes' docstrings: a "name : text" entry read as a type there and
    the option lost its first line (--data.datasets had none)."""
    import inspect

    import docstring_parser

    from training.data import SegmentationDataModule
    from training.module import SegmentationModule

    for cls in (SegmentationDataModule, SegmentationModule):
        described = {p.arg_name: p.description for p in docstring_parser.parse(cls.__doc__ or "").params}
        for name in inspect.signature(cls).parameters:
            assert described.get(name), f"{cls.__name__}: no help text for {name}"
    result = runner.invoke(app, ["train", "fit", "--help"], terminal_width=200)
    assert "dataset folders to train on" in result.output and "AdamW's learning rate" in result.output


def test_sbatch_script_for_gpus_and_for_cpus() -> None:
    gpu = sbatch_script("cfg/unet.yaml", ["--data.datasets", "[/data/a]"], nodes=2, gpus_per_node=4,
                        setup="source /opt/semcoat/bin/activate")
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=4\n" in gpu and "#SBATCH --gres=gpu:4" in gpu
    assert gpu.splitlines()[-1] == ("srun semcoat train fit --config cfg/unet.yaml --trainer.accelerator gpu "
                                    "--trainer.devices 4 --trainer.num_nodes 2 --trainer.strategy ddp "
                                    "--data.datasets '[/data/a]'")
    cpu = sbatch_script("u.yaml", processes_per_node=2, cpus_per_task=1)
    assert "--gres" not in cpu and "#SBATCH --ntasks-per-node=2" in cpu and "--trainer.accelerator cpu" in cpu
    result = runner.invoke(app, ["train", "sbatch", "--config", "u.yaml", "--job-name", "bash"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["train", "sbatch", "--config", "u.yaml", "--gpus-per-node", "2", "--",
                                 "--data.datasets", "[a]"])
    assert result.exit_code == 0 and result.output.rstrip().endswith("--data.datasets '[a]'")
    # values the script would carry are checked: sbatch refused them later, and a line break pasted a shell line in
    cases = ((["--time", "1h"], "--time: '1h' is not accepted: use minutes ('30'), 'M:S', 'H:M:S'"),
             (["--time", "0:00:00"], "--time: '0:00:00' is not accepted"),
             (["--time", "01:00:00\ntouch /tmp/pwned"], "--time: '01:00:00\\ntouch /tmp/pwned' is not accepted"),
             (["--partition", "gpu nodes"], "--partition: 'gpu nodes' is not accepted: use 1-128 letters"),
             (["--config", ""], "--config: '' is not accepted: give a path on one line"),
             (["--setup", "a\nb"], "--setup: 'a\\nb' is not accepted: give a shell line on one line"),
             (["--cpus-per-task", "0"], "--cpus-per-task: give a whole number of at least 1 (got 0)"),
             (["--gpus-per-node", "-1"], "--gpus-per-node: give a whole number of at least 0 (got -1)"))
    for extra, said in cases:
        args = ["train", "sbatch", "--config", "u.yaml", *extra] if extra[0] != "--config" else ["train", "sbatch",
                                                                                                 *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and f"error: {said}" in result.output, (extra, result.output)
    assert "#SBATCH --time=2-00:00:00" in sbatch_script("u.yaml", time="2-00:00:00", partition="gpu-a100")


def test_lightning_takes_ranks_from_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    import lightning as L
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    env = {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "1", "SLURM_JOB_NAME": "semcoat-train",
           "SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_NODEID": "0", "SLURM_NODELIST": "node1",
           "SLURM_JOB_ID": "4242"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # The Trainer records its rank process-wide (rank-zero-only logging) and may set the master's address: put
    # them back after the test, or later fits in this process would think they are rank 1 and write no logs.
    from lightning.fabric.utilities import rank_zero as fabric_rank_zero
    from lightning.pytorch.utilities import rank_zero as pl_rank_zero

    for holder in (fabric_rank_zero.rank_zero_only, pl_rank_zero.rank_zero_only):
        monkeypatch.setattr(holder, "rank", getattr(holder, "rank", 0))
    for key in ("MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE"):
        monkeypatch.setenv(key, os.environ.get(key, ""))
        monkeypatch.delenv(key)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_progress_bar=False)
    cluster = trainer.strategy.cluster_environment  # type: ignore[attr-defined]
    assert isinstance(cluster, SLURMEnvironment)
    assert (cluster.global_rank(), cluster.local_rank(), cluster.world_size()) == (1, 1, 2)
    assert cluster.main_address == "node1"


def test_launched_rank_reads_srun_and_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.cli import launched_rank

    for name in ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert launched_rank() is None
    # The variables as the loopback cluster sets them. In an `sbatch --ntasks=2` script's own shell (no srun): the
    # allocation's task count, rank 0, and no step: one process.
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    assert launched_rank() is None
    # In each task that `srun` started there: the step's count as well.
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    assert launched_rank() == (0, 2)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    assert launched_rank() == (3, 4)
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")  # `srun --ntasks 1` inside a larger allocation: one process
    assert launched_rank() is None
    monkeypatch.delenv("SLURM_PROCID")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched_rank() == (1, 2)
