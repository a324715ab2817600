"""fast_dev_run of every shipped config (one model each) and of every loss on a tiny generated dataset; a real short
fit writes a checkpoint, CSV and TensorBoard logs and a confusion matrix."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from semcoat.dataset import DatasetError
from tests.training.conftest import FAST, datasets_arg
from training.data import SegmentationDataModule
from training.lightning_cli import CONFIG_DIR, effective_precision, run
from training.module import SegmentationModule


@pytest.mark.parametrize("config", ["unet", "deeplab", "swin_unetr"])
def test_fast_dev_run_of_each_config(config: str, tiny_datasets: list[Path], tmp_path: Path) -> None:
    cli = run(["fit", "--config", str(CONFIG_DIR / f"{config}.yaml"), *datasets_arg(tiny_datasets), *FAST,
               "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)])
    module = cli.model
    assert module.hp.model == config and cli.trainer.global_step == 1
    assert module.hp.num_classes == cli.datamodule.num_classes  # linked from the data's class table
    assert "val/dice_mean" in cli.trainer.callback_metrics
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    weights = module.loss_fn.weight
    assert weights.max() > 1.0 > weights.min()  # "auto": frequent classes weigh less than rare ones


@pytest.mark.parametrize("loss", ["dice_ce", "ce", "dice", "focal"])
def test_fast_dev_run_of_each_loss(loss: str, tiny_datasets: list[Path], tmp_path: Path) -> None:
    dm = SegmentationDataModule([str(tiny_datasets[0])], crop_px=64, batch_size=2, num_workers=0, crops_per_epoch=4)
    module = SegmentationModule(dm.num_classes, dm.class_names, model="unet",
                                model_options={"channels": [8, 16], "num_res_units": 0}, loss=loss,
                                class_weights=[1.0] * dm.num_classes, label_smoothing=0.1 if loss == "ce" else 0.0)
    before = [p.detach().clone() for p in module.parameters()]
    trainer = L.Trainer(fast_dev_run=True, accelerator="cpu", default_root_dir=tmp_path, enable_progress_bar=False,
                        enable_model_summary=False, logger=False)
    trainer.fit(module, datamodule=dm)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))  # it learned
    assert module.loss_fn.weight.tolist() == [1.0] * dm.num_classes  # given weights are kept


def test_short_fit_writes_checkpoint_logs_and_confusion(trained_checkpoint: Path) -> None:
    log_dir = trained_checkpoint.parent.parent
    assert trained_checkpoint.name.startswith("best-epoch") and (trained_checkpoint.parent / "last.ckpt").is_file()
    metrics = (log_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val/dice_mean", "val/dice_pore", "val/iou_fe2al5", "train/loss"} <= set(metrics)
    confusion = (log_dir / "confusion_val.csv").read_text().splitlines()
    assert confusion[0].startswith("true\\predicted,background,fe2al5")
    assert any((log_dir.parent.parent / "tensorboard").rglob("events.out.tfevents.*"))
    module = SegmentationModule.load_from_checkpoint(trained_checkpoint, map_location="cpu", weights_only=False)
    assert module.hp.class_weights == "auto" and module.loss_fn.weight.max() > 1.0  # weights saved with the model


def test_bf16_falls_back_on_cpus_without_it() -> None:
    assert effective_precision("bf16-mixed", "cpu", bf16_ok=False) == "32-true"
    assert effective_precision("bf16-mixed", "cpu", bf16_ok=True) == "bf16-mixed"
    assert effective_precision("32-true", "cpu", bf16_ok=False) == "32-true"


def test_bf16_counts_as_fast_exactly_on_cpus_with_amx() -> None:
    """AVX-512 BF16 alone is not enough (an AMD EPYC with it trained the U-Net 4.3x slower in bf16): the kernel's
    own flags decide, as the probe reads the CPU."""
    from training.lightning_cli import cpu_has_fast_bf16

    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    assert cpu_has_fast_bf16() == ("amx_tile" in flags and "amx_bf16" in flags)


def test_bad_dataset_folder_is_a_usage_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    result = CliRunner().invoke(app, ["train", "fit", "--config", str(CONFIG_DIR / "unet.yaml"),
                                      "--data.datasets", f'["{tmp_path / "nope"}"]'])
    assert result.exit_code == 2 and "dataset.json is missing" in result.output


def test_a_damaged_dataset_is_refused_before_any_log_folder_is_written(
        trained_checkpoint: Path, tiny_datasets: list[Path], tmp_path: Path) -> None:
    """Lightning makes its loggers' folders before it calls the DataModule's setup: the data are read first, so a
    refused dataset leaves no empty version_N behind (for fit and for the subcommands on a checkpoint)."""
    import shutil

    from typer.testing import CliRunner

    from semcoat_cli.app import app

    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_datasets[0], damaged)
    (damaged / "masks" / "000003.png").write_bytes(b"\x89PNG\r\n")  # truncated
    small = ["--model.model_options", '{"channels": [8, 16, 32], "num_res_units": 1}']
    for subcommand, extra in (("fit", []), ("validate", ["--ckpt_path", str(trained_checkpoint)]),
                              ("test", ["--ckpt_path", str(trained_checkpoint)])):
        root = tmp_path / f"runs_{subcommand}"
        result = CliRunner().invoke(app, ["train", subcommand, "--config", str(CONFIG_DIR / "unet.yaml"),
                                          *datasets_arg([damaged]), *FAST, *small, *extra,
                                          "--trainer.default_root_dir", str(root)])
        assert result.exit_code == 2, (subcommand, result.output)
        assert "masks/000003.png" in result.output and "Traceback" not in result.output
        assert not root.exists(), (subcommand, sorted(root.rglob("*")))


def test_settings_that_cannot_train_are_refused_before_anything_is_written(tiny_datasets: list[Path],
                                                                           tmp_path: Path) -> None:
    """Each said with its value and what is accepted, exit 2, no traceback, no log folder (they used to end in a
    traceback, or in a fit that trained nothing or wrote checkpoints of NaN weights)."""
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    cases = (
        (["--data.batch_size", "0"], "batch_size must be a whole number of at least 1 (got 0)"),
        (["--data.eval_batch_size", "-1"], "eval_batch_size must be a whole number of at least 1 (got -1)"),
        (["--data.crops_per_epoch", "0"], "crops_per_epoch must be a whole number of at least 1 (got 0)"),
        (["--data.num_workers", "-2"], "num_workers must be a whole number of at least 0 (got -2)"),
        (["--data.class_balance", ".nan"], "class_balance must be a probability in [0, 1] (got nan)"),
        (["--data.val_fraction", "0"], "the validation split is empty (val_fraction 0.0; images per folder: "),
        (["--trainer.max_time", "1h"], "`Timer(duration='1h')` is not a valid duration. Expected a string in the "
                                       "format DD:HH:MM:SS."),
        (["--trainer.precision", "16-true"], "--trainer.precision 16-true trains in half precision, which "
                                             "overflows on a CPU"),
        # model options that trained to NaN (rc 0, checkpoints written) or crashed inside torch or MONAI
        (["--model.lr", "-1"], "--model.lr: expected a number above 0 (got -1.0)"),
        (["--model.class_weight_power", ".nan"], "--model.class_weight_power: expected a number in [0, 4] (got nan)"),
        (["--model.prior_correction", "2"], "--model.prior_correction: expected a number in [0, 1] (got 2.0)"),
        (["--model.max_weight_ratio", "0"], "--model.max_weight_ratio: expected a number in [1, 1e+06] (got 0.0)"),
        (["--model.class_weights", "[1, 1, 1, 1, 1, 1, .inf]"], "--model.class_weights: expected 'auto', null, or a "
                                                                 "list of non-negative numbers"),
        (["--model.model_options", '{"channels": [8], "num_res_units": 1}'],
         "--model.model_options: model 'unet' cannot be built with {'channels': [8], 'num_res_units': 1}: "),
    )
    for extra, said in cases:
        root = tmp_path / "runs"
        result = CliRunner().invoke(app, ["train", "fit", "--config", str(CONFIG_DIR / "unet.yaml"),
                                          *datasets_arg(tiny_datasets), *FAST, *extra,
                                          "--trainer.default_root_dir", str(root)])
        assert result.exit_code == 2 and f"error: {said}" in result.output, (extra, result.output)
        assert "Traceback" not in result.output and not root.exists(), extra
    # a fit needs validation images; testing a checkpoint needs test images only
    dm = SegmentationDataModule([str(tiny_datasets[1])], val_fraction=0.0, test_fraction=0.5, num_workers=0)
    dm.setup("test")
    dm.check_split("test")
    assert len(dm.test_samples) == 2 and dm.val_samples == []
    with pytest.raises(DatasetError, match=r"the validation split is empty .* fit needs validation images"):
        dm.check_split("fit")
    dm = SegmentationDataModule([str(tiny_datasets[1])], test_fraction=0.0, num_workers=0)
    dm.setup("test")
    with pytest.raises(DatasetError, match=r"the test split is empty \(test_fraction 0.0; images per folder: .*: 4\)"):
        dm.check_split("test")


def test_a_fit_stopped_before_its_first_validation_ends_with_its_last_checkpoint(tiny_datasets: list[Path],
                                                                                 tmp_path: Path) -> None:
    """max_steps (or max_time) reached inside the first epoch: early stopping had no validation metric yet and the
    run ended in a traceback with nothing saved."""
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    root = tmp_path / "runs"
    result = CliRunner().invoke(app, ["train", "fit", "--config", str(CONFIG_DIR / "unet.yaml"),
                                      *datasets_arg(tiny_datasets), *FAST, "--data.crops_per_epoch", "64",
                                      "--trainer.max_steps", "2", "--trainer.default_root_dir", str(root)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in root.glob("logs/version_0/checkpoints/*.ckpt")] == ["last.ckpt"]


def test_a_diverging_training_stops_with_why_instead_of_saving_nan(tiny_datasets: list[Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    root = tmp_path / "runs"
    result = CliRunner().invoke(app, ["train", "fit", "--config", str(CONFIG_DIR / "unet.yaml"),
                                      *datasets_arg(tiny_datasets), *FAST, "--model.lr", "1e6",
                                      "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(root)])
    assert result.exit_code == 2, result.output
    assert "the training diverged. A lower --model.lr (now 1e+06) usually mends it" in result.output
    assert "Traceback" not in result.output
    for ckpt in root.rglob("*.ckpt"):  # whatever was saved before the loss turned is finite
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_output_folders_and_the_checkpoints_classes_are_checked_before_anything_is_written(
        trained_checkpoint: Path, tiny_datasets: list[Path], tmp_path: Path) -> None:
    import json
    import shutil

    from typer.testing import CliRunner

    from semcoat_cli.app import app

    a_file = tmp_path / "afile.txt"
    a_file.write_text("x")
    renamed = tmp_path / "renamed"
    shutil.copytree(tiny_datasets[0], renamed)
    info = json.loads((renamed / "dataset.json").read_text())
    info["classes"] = {**info["classes"], "6": "oxide"}
    (renamed / "dataset.json").write_text(json.dumps(info))
    ckpt = ["--ckpt_path", str(trained_checkpoint)]
    cases = (
        ("fit", ["--trainer.default_root_dir", str(a_file)],
         f"--trainer.default_root_dir: {a_file} exists and is not a folder"),
        ("fit", ["--trainer.default_root_dir", str(a_file / "sub")],
         f"--trainer.default_root_dir: {a_file / 'sub'} cannot be made: {a_file} is a file"),
        ("predict", [*ckpt, "--predict_dir", str(a_file)], f"--predict_dir: {a_file} exists and is not a folder"),
        ("test", [*ckpt, "--data.datasets", f'["{renamed}"]'],
         f"--ckpt_path: {trained_checkpoint} segments the classes ['background', 'fe2al5', 'feal', 'substrate', "
         "'pore', 'precipitate', 'crack']; the data's class table is ['background', 'fe2al5', 'feal', 'substrate', "
         "'pore', 'precipitate', 'oxide']"),
    )
    for subcommand, extra, said in cases:
        result = CliRunner().invoke(app, ["train", subcommand, "--config", str(CONFIG_DIR / "unet.yaml"),
                                          *datasets_arg(tiny_datasets), *FAST, *extra])
        assert result.exit_code == 2 and f"error: {said}" in result.output, (extra, result.output)
        assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt", "renamed"]


def test_a_ckpt_path_that_is_no_checkpoint_is_refused_by_name(tiny_datasets: list[Path], tmp_path: Path) -> None:
    """Lightning's CLI reads --ckpt_path's hyperparameters before anything else, and its load of a missing, damaged
    or foreign file ended in a traceback."""
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    text = tmp_path / "notes.ckpt"
    text.write_text("junk")
    damaged = tmp_path / "cut.ckpt"
    damaged.write_bytes(b"PK\x03\x04" + bytes(100))
    cases = ((text, "not a file PyTorch saved, or a damaged or truncated one"),
             (damaged, "not a file PyTorch saved, or a damaged or truncated one"),
             (tmp_path / "missing.ckpt", "no such checkpoint file"), (tmp_path, "is a folder; give a .ckpt file"))
    for subcommand in ("fit", "test"):
        for given, said in cases:
            root = tmp_path / "runs"
            result = CliRunner().invoke(app, ["train", subcommand, "--config", str(CONFIG_DIR / "unet.yaml"),
                                              *datasets_arg(tiny_datasets), *FAST, "--ckpt_path", str(given),
                                              "--trainer.default_root_dir", str(root)])
            assert result.exit_code == 2 and result.output.startswith("error: --ckpt_path: "), result.output
            assert str(given) in result.output and said in result.output, result.output
            assert "Traceback" not in result.output and not root.exists()


def test_a_checkpoint_of_another_network_says_it_replaces_the_configs(trained_checkpoint: Path,
                                                                      tiny_datasets: list[Path],
                                                                      tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    result = CliRunner().invoke(app, ["train", "validate", "--config", str(CONFIG_DIR / "deeplab.yaml"),
                                      *datasets_arg(tiny_datasets), *FAST, "--ckpt_path", str(trained_checkpoint),
                                      "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert f"--ckpt_path {trained_checkpoint} holds a unet network; it replaces the config's deeplab" in result.output


def test_test_and_predict_subcommands_on_a_checkpoint(trained_checkpoint: Path, tiny_datasets: list[Path],
                                                      tmp_path: Path) -> None:
    small = ["--model.model_options", '{"channels": [8, 16, 32], "num_res_units": 1}']
    common = ["--config", str(CONFIG_DIR / "unet.yaml"), *datasets_arg(tiny_datasets), *FAST, *small,
              "--ckpt_path", str(trained_checkpoint), "--trainer.default_root_dir", str(tmp_path / "runs")]
    tested = run(["test", *common])
    assert 0.0 <= tested.trainer.callback_metrics["test/dice_mean"] <= 1.0
    assert "test/dice_fe2al5" in tested.trainer.callback_metrics
    run(["predict", *common, "--predict_dir", str(tmp_path / "masks")])
    written = sorted((tmp_path / "masks").rglob("*.png"))
    assert len(written) == len(tested.datamodule.test_samples) == 2  # 20 % of each folder
    import cv2

    sample = tested.datamodule.test_samples[0]
    mask = cv2.imread(str(tmp_path / "masks" / sample.folder.name / f"{sample.sid}.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == cv2.imread(str(sample.image), cv2.IMREAD_UNCHANGED).shape
    assert mask.max() < tested.datamodule.num_classes
