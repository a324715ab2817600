"""Rendered precipitates too faint to see (Al8Cr5, about Fe2Al5's grey) stay out of the loss and the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from analysis.files import read_mask
from blender_addon.render_node.batch_render import image_geometry, render_range
from blender_addon.render_node.precipitate_phases import precipitate_phase_map
from semcoat import classes
from semcoat.dataset import DatasetError, read_dataset
from semcoat.spec import CoatingSpec
from tests.blender_addon.fakes import RasterRenderer
from tests.blender_addon.specs import small_batch
from tests.training.conftest import FAST, datasets_arg
from training.data import SegmentationDataModule
from training.samples import ignore_faint_precipitates, list_samples, sample_mask
from training.samples import read_mask as training_read_mask

MIXED = {"al8cr5_share": 1.0, "cr2al_share": 1.0, "cr23c6_share": 1.0, "area_fraction_pct": 6.0}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small rendered images with precipitates of all three phases (OpenCV's stand-in for Blender)."""
    out = tmp_path_factory.mktemp("faint") / "mixed"
    render_range(small_batch(count=4, precipitates=MIXED), out, RasterRenderer)
    return out


def drawn_again_faint(meta: dict[str, Any], mask: np.ndarray, contrast_min: float) -> np.ndarray:
    """The faint precipitates of a rendered image found without its phase map: its geometry drawn again."""
    spec = CoatingSpec.from_dict(meta["params"])
    phase = precipitate_phase_map(image_geometry(spec, meta["image_seed"]), mask)
    assert phase is not None
    greys = np.array(spec.grey.precipitate_phase_greys())
    return (phase >= 0) & (np.abs(greys - spec.grey.fe2al5) < contrast_min)[np.maximum(phase, 0)]


def test_training_masks_mark_the_faint_precipitates_ignored(rendered: Path) -> None:
    ds = read_dataset(rendered)
    dm = SegmentationDataModule([str(rendered)], crop_px=64, crops_per_epoch=8, num_workers=0, val_fraction=0.25,
                                test_fraction=0.0, augment=False, ignore_faint_precipitates=0.08)
    dm.setup("fit")
    train = dm._train  # type: ignore[union-attr]
    assert train is not None and len(dm.val_samples) == 1
    for k, sample in enumerate([*train.samples, *dm.val_samples]):
        on_disk = read_mask(sample.mask)
        faint = drawn_again_faint(ds.meta(sample.sid), on_disk, 0.08)
        assert faint.any() and not faint.all()
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


def test_images_without_a_phase_map_keep_their_labels_and_a_damaged_one_is_named(rendered: Path,
                                                                                  tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(rendered, copy)
    (copy / "phases" / "000000.png").unlink()  # as real labelled folders and older renders: no phase map
    samples = ignore_faint_precipitates(list_samples(copy), 0.08, len(classes.CLASS_NAMES))
    assert samples[0].ignored is None and all(s.ignored is not None and s.ignored.size for s in samples[1:])
    # a mask edited after rendering: its own labels count, the phase map only marks what it calls precipitate
    mask = read_mask(copy / "masks" / "000001.png")
    edited = np.where(mask == classes.PRECIPITATE, classes.FE2AL5, mask).astype(np.uint8)
    cv2.imwrite(str(copy / "masks" / "000001.png"), edited)
    assert ignore_faint_precipitates(list_samples(copy), 0.08, len(classes.CLASS_NAMES))[1].ignored.size == 0
    cv2.imwrite(str(copy / "phases" / "000002.png"), np.zeros((3, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"phases/000002.png: the phase map is 3x3 px, its mask 256x192"):
        ignore_faint_precipitates(list_samples(copy), 0.08, len(classes.CLASS_NAMES))


def test_a_phase_map_or_mask_that_is_no_grey_png_is_refused_and_renders_without_maps_are_named(
        rendered: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(rendered, copy)
    shutil.rmtree(copy / "phases")  # renders from before the phase maps
    with caplog.at_level(logging.WARNING, logger="training.samples"):
        samples = ignore_faint_precipitates(list_samples(copy), 0.08, len(classes.CLASS_NAMES))
    assert all(s.ignored is None for s in samples)
    assert f"{copy}: 4 rendered image(s) have no precipitate-phase map" in caplog.text
    shutil.copytree(rendered / "phases", copy / "phases")
    phases = cv2.imread(str(copy / "phases" / "000001.png"), cv2.IMREAD_UNCHANGED)
    # OpenCV reads a JPEG by its content whatever its name: its changed pixels must not become labels
    ok, jpeg = cv2.imencode(".jpg", phases)
    assert ok
    (copy / "phases" / "000001.png").write_bytes(jpeg.tobytes())
    with pytest.raises(DatasetError, match=r"phases/000001.png: expected an 8-bit grey PNG of a precipitate-phase"):
        ignore_faint_precipitates(list_samples(copy), 0.08, len(classes.CLASS_NAMES))
    (copy / "masks" / "000002.png").write_bytes(cv2.imencode(".png", np.dstack([phases] * 3))[1].tobytes())
    with pytest.raises(DatasetError, match=r"masks/000002.png: expected an 8-bit grey PNG of class ids, found colour"):
        training_read_mask(copy / "masks" / "000002.png", len(classes.CLASS_NAMES))


def test_an_unreadable_meta_is_refused_by_name_and_a_folder_with_missing_samples_is_named(
        rendered: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A meta file the faint precipitates are read from that is broken stops the training (it would otherwise keep
    labels nobody can see); a folder whose samples are not all complete trains on the rest, and says so."""
    import logging
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(rendered, copy)
    for text, said in (('{"params": ', "unreadable"), ("[1, 2]", "a JSON object is expected, not list")):
        (copy / "meta" / "000002.json").write_text(text)
        with pytest.raises(DatasetError, match=rf"meta/000002.json: {said}.*semcoat dataset check"):
            ignore_faint_precipitates(list_samples(copy), 0.08, len(classes.CLASS_NAMES))
    # without the faint-precipitate rule the meta file is not read, so nothing stops
    assert len(ignore_faint_precipitates(list_samples(copy), 0.0, len(classes.CLASS_NAMES))) == 4
    shutil.copy2(rendered / "meta" / "000002.json", copy / "meta" / "000002.json")

    (copy / "masks" / "000003.png").unlink()
    with caplog.at_level(logging.WARNING, logger="training.samples"):
        samples = list_samples(copy)
    assert [s.sid for s in samples] == ["000000", "000001", "000002"]
    assert f"{copy}: 3 of its 4 samples are complete (image, mask and meta); the others are left out" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="training.samples"):
        list_samples(rendered)
    assert caplog.text == ""
