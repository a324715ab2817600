"""Rendered precipitates too faint to see (Al8Cr5, about Fe2Al5's grey) stay out of the loss and the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis.files import read_mask
from blender_addon.render_node.batch_render import render_range
from blender_addon.render_node.precipitate_phases import faint_precipitates
from semcoat import classes
from semcoat.dataset import read_dataset
from tests.blender_addon.fakes import RasterRenderer
from tests.blender_addon.specs import small_batch
from tests.training.conftest import FAST, datasets_arg
from training.data import SegmentationDataModule
from training.samples import sample_mask

MIXED = {"al8cr5_share": 1.0, "cr2al_share": 1.0, "cr23c6_share": 1.0, "area_fraction_pct": 6.0}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small rendered images with precipitates of all three phases (OpenCV's stand-in for Blender)."""
    out = tmp_path_factory.mktemp("faint") / "mixed"
    render_range(small_batch(count=4, precipitates=MIXED), out, RasterRenderer)
    return out


def test_training_masks_mark_the_faint_precipitates_ignored(rendered: Path) -> None:
    ds = read_dataset(rendered)
    dm = SegmentationDataModule([str(rendered)], crop_px=64, crops_per_epoch=8, num_workers=0, val_fraction=0.25,
                                test_fraction=0.0, augment=False, ignore_faint_precipitates=0.08)
    dm.setup("fit")
    train = dm._train  # type: ignore[union-attr]
    assert train is not None and len(dm.val_samples) == 1
    for k, sample in enumerate([*train.samples, *dm.val_samples]):
        on_disk = read_mask(sample.mask)
        faint = faint_precipitates(ds.meta(sample.sid), on_disk, 0.08)
        assert faint is not None and faint.any()
        seen = sample_mask(sample, dm.num_classes)
        assert np.array_equal(seen == classes.IGNORE_ID, faint)
        assert np.array_equal(seen[~faint], on_disk[~faint])
        if k < len(train.samples):  # class counts for sampling and weights leave them out
            assert train.index.counts[k, classes.PRECIPITATE] == np.count_nonzero(on_disk == classes.PRECIPITATE) \
                - np.count_nonzero(faint)
    kept = SegmentationDataModule([str(rendered)], num_workers=0, val_fraction=0.25, test_fraction=0.0)
    kept.setup("fit")
    assert all(s.ignored is None for s in kept._train.samples)  # type: ignore[union-attr]  # the default: 0, off


def test_a_fit_with_ignored_pixels_runs_and_its_metrics_leave_them_out(rendered: Path, tmp_path: Path) -> None:
    from training.lightning_cli import CONFIG_DIR, run

    cli = run(["fit", "--config", str(CONFIG_DIR / "unet.yaml"), *datasets_arg([rendered]), *FAST,
               "--data.val_fraction", "0.25", "--data.test_fraction", "0", "--data.crops_per_epoch", "8",
               "--data.ignore_faint_precipitates", "0.08",
               "--model.model_options", '{"channels": [8, 16, 32], "num_res_units": 1}',
               "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)])
    module: Any = cli.model
    assert np.isfinite(float(cli.trainer.callback_metrics["train/loss"]))
    val = cli.datamodule.val_samples  # type: ignore[attr-defined]
    pixels = sum(read_mask(s.mask).size - s.ignored.size for s in val)
    assert module.last_confusion["val"].sum() == pixels
