"""Tiny generated dataset folders and a briefly trained checkpoint, shared by the training tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.synth import write_dataset

# Small, fast settings every CLI run of the tests adds to a shipped config.
FAST = ["--data.crop_px", "64", "--data.batch_size", "4", "--data.num_workers", "0", "--data.val_fraction", "0.2",
        "--data.test_fraction", "0.2", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary",
        "false"]


@pytest.fixture(scope="session")
def tiny_datasets(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two small dataset folders of different image sizes (96x128 and 112x144 px)."""
    root = tmp_path_factory.mktemp("tiny")
    return [write_dataset(root / "a", count=6, seed=0), write_dataset(root / "b", count=4, rows=112, cols=144, seed=1)]


def datasets_arg(folders: list[Path]) -> list[str]:
    """``--data.datasets`` with the folders as a JSON list."""
    return ["--data.datasets", json.dumps([str(f) for f in folders])]


@pytest.fixture(scope="session")
def trained_checkpoint(tiny_datasets: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of a 3-epoch U-Net fit (small channels) through the CLI on the tiny datasets."""
    from training.lightning_cli import CONFIG_DIR, run

    root = tmp_path_factory.mktemp("fit")
    cli = run(["fit", "--config", str(CONFIG_DIR / "unet.yaml"), *datasets_arg(tiny_datasets), *FAST,
               "--model.model_options", '{"channels": [8, 16, 32], "num_res_units": 1}',
               "--data.crops_per_epoch", "24", "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(root)])
    best = cli.trainer.checkpoint_callback.best_model_path  # type: ignore[union-attr]
    assert best, "no best checkpoint"
    return Path(best)
