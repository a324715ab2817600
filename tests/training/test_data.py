"""Dataset folders for training: class table, splits, class weights, aligned crops, physics-respecting augmentation,
the DataModule's batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semcoat import classes
from semcoat.dataset import DatasetError
from training.augment import AugmentConfig, augment, build_augmentation
from training.data import SegmentationDataModule
from training.module import SegmentationModule
from training.samples import (
    PairCache,
    class_table,
    class_weights,
    crop_origin,
    crop_pair,
    index_masks,
    list_samples,
    read_mask,
    read_pair,
    split_indices,
    unit_float,
)


def test_class_table_comes_from_dataset_json(tiny_datasets: list[Path]) -> None:
    table = class_table(tiny_datasets)
    assert table == {c.id: c.name for c in classes.CLASSES}  # the folders were written with the core's table
    dm = SegmentationDataModule([str(p) for p in tiny_datasets], num_workers=0)
    assert dm.num_classes == len(classes.CLASSES) and dm.class_names[classes.PORE] == "pore"


def test_class_table_conflict_is_an_error(tiny_datasets: list[Path], tmp_path: Path) -> None:
    import json
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_datasets[0], other)
    info = json.loads((other / "dataset.json").read_text())
    info["classes"]["4"] = "void"
    (other / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="class 4 is 'void'"):
        class_table([tiny_datasets[0], other])


def test_split_is_disjoint_complete_and_seeded() -> None:
    tr, va, te = split_indices(20, 0.1, 0.2, seed=3)
    assert sorted(tr + va + te) == list(range(20)) and (len(va), len(te)) == (2, 4)
    assert split_indices(20, 0.1, 0.2, seed=3) == (tr, va, te)
    assert split_indices(20, 0.1, 0.2, seed=4) != (tr, va, te)
    assert split_indices(1, 0.5, 0.4, seed=0) == ([0], [], [])  # one sample stays for training


def test_class_weights_median_frequency_clipped_and_absent_class() -> None:
    counts = np.array([[600, 300, 100, 0]])  # f = 0.6, 0.3, 0.1; median 0.3
    w = class_weights(counts, max_ratio=2.5)
    assert w.tolist() == pytest.approx([0.5, 1.0, 2.5, 1.0])  # 3.0 clipped to 2.5; absent class -> 1
    assert class_weights(counts, power=0.5).tolist() == pytest.approx([0.5 ** 0.5, 1.0, 3.0 ** 0.5, 1.0])
    assert class_weights(counts / counts.sum(), power=0.5).tolist() == pytest.approx(  # shares weigh as counts
        class_weights(counts, power=0.5).tolist())


def _preset_like_mask(rows: int = 384, cols: int = 512) -> np.ndarray:
    """Resin, a thick Fe2Al5 band with a cluster of pores, thin FeAl and steel, in about the presets' shares (9, 62,
    3, 24 %; pores 1 %)."""
    mask = np.full((rows, cols), classes.SUBSTRATE, np.uint8)
    mask[:36] = classes.BACKGROUND
    mask[36:274] = classes.FE2AL5
    mask[274:286] = classes.FEAL
    for r in range(100, 180, 8):
        for c in range(300, 500, 8):
            mask[r:r + 4, c:c + 4] = classes.PORE
    return mask


def test_automatic_weights_keep_the_steel_close_to_the_feal(tmp_path: Path) -> None:
    # Under a weighted cross-entropy a pixel is labelled argmax_c w_c p_c: plain median frequency balancing over the
    # masks gave the steel 0.136 and FeAl 1.0 on the presets, so a short training labelled the steel as FeAl
    # wherever it was less than 7x surer of the steel. The weights now follow the crops the loss sees, to a power < 1.
    from tests.training.synth import write_dataset

    mask = _preset_like_mask()
    folder = write_dataset(tmp_path / "layers", masks=[mask, mask[:, ::-1].copy()])
    dm = SegmentationDataModule([str(folder)], crop_px=128, crops_per_epoch=8, num_workers=0, val_fraction=0.0,
                                test_fraction=0.0, augment=False)
    dm.setup("fit")
    shares = dm._train.class_shares(draws=1500)  # type: ignore[union-attr]
    assert shares.sum() == pytest.approx(1.0) and shares[classes.PRECIPITATE] == 0.0
    image_shares = np.bincount(mask.ravel(), minlength=len(shares)) / mask.size
    assert shares[classes.PORE] > 1.5 * image_shares[classes.PORE]  # class-balanced crops favour the small classes
    w = dm.class_weights(power=SegmentationModule().hp.class_weight_power)
    assert w[classes.SUBSTRATE] >= w[classes.FEAL] / 4 and w[classes.FE2AL5] >= w[classes.FEAL] / 10
    assert w[classes.PORE] > w[classes.SUBSTRATE] > w[classes.FE2AL5]
    plain = class_weights(np.bincount(mask.ravel(), minlength=len(shares)))
    assert plain[classes.SUBSTRATE] < plain[classes.FEAL] / 3  # what it replaced


def test_uniform_crops_reach_the_edge_rows() -> None:
    rng = np.random.default_rng(3)
    rows, crop = 768, 256
    cover = np.zeros(rows)
    for _ in range(4000):
        top = crop_origin((rows, 1024), (crop, crop), rng)[0]
        assert 0 <= top <= rows - crop
        cover[top:top + crop] += 1
    cover /= 4000
    # the deepest steel (last rows) and the resin's top are seen at least a third as often as the middle rows
    assert cover[-1] > cover[rows // 2] / 3 and cover[0] > cover[rows // 2] / 3


def test_crops_keep_image_and_mask_aligned() -> None:
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 6, (50, 70)).astype(np.uint8)
    image = mask.astype(np.float32) / 10.0  # the image encodes its mask
    for _ in range(50):
        origin = crop_origin((50, 70), (32, 32), rng, centre=(int(rng.integers(50)), int(rng.integers(70))))
        img, msk = crop_pair(image, mask, origin, (32, 32))
        assert img.shape == msk.shape == (32, 32)
        assert np.array_equal(np.round(img * 10).astype(np.uint8), msk)
        assert np.array_equal(msk, mask[origin[0]:origin[0] + 32, origin[1]:origin[1] + 32])
    # larger than the image: columns mirrored (a cross-section still), rows outside it out of the loss (a vertical
    # mirror would put the surface down): the image repeats its edge rows there
    img, msk = crop_pair(image, mask, crop_origin((50, 70), (64, 96), rng), (64, 96))
    assert img.shape == msk.shape == (64, 96)
    inside = msk != classes.IGNORE_ID
    assert np.array_equal(np.round(img[inside] * 10).astype(np.uint8), msk[inside])
    rows_inside = np.flatnonzero(inside.all(axis=1))
    assert rows_inside.size == 50 and np.array_equal(rows_inside, np.arange(rows_inside[0], rows_inside[0] + 50))
    assert (~inside).sum() == (64 - 50) * 96
    assert np.array_equal(img[: rows_inside[0]], np.repeat(img[rows_inside[:1]], rows_inside[0], axis=0))
    centre_cols = slice(13, 13 + 70)  # (96 - 70) // 2 columns mirrored on the left
    assert np.array_equal(msk[rows_inside][:, centre_cols], mask)


def test_centred_crop_holds_its_centre() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        centre = (int(rng.integers(200)), int(rng.integers(300)))
        top, left = crop_origin((200, 300), (64, 64), rng, centre)
        assert top <= centre[0] < top + 64 and left <= centre[1] < left + 64
        assert 0 <= top <= 136 and 0 <= left <= 236


def test_augmentation_never_puts_the_surface_down() -> None:
    rows, cols = 96, 96
    mask = np.full((rows, cols), classes.SUBSTRATE, np.uint8)
    mask[:20] = classes.BACKGROUND
    mask[20:70] = classes.FE2AL5
    image = np.linspace(0.1, 0.9, rows, dtype=np.float32)[:, None].repeat(cols, axis=1)
    strong = AugmentConfig(flip_p=0.5, elastic_p=1.0, scan_p=1.0, blur_p=1.0, noise_p=1.0)
    transform = build_augmentation(strong)
    flipped = 0
    for seed in range(60):
        img, msk = augment(transform, image, mask, seed)
        assert img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0
        assert (msk[:10] == classes.BACKGROUND).mean() > 0.95, seed  # resin stays on top
        assert (msk[-10:] == classes.SUBSTRATE).mean() > 0.95, seed  # substrate stays at the bottom
        flipped += int(not np.array_equal(augment(build_augmentation(AugmentConfig(flip_p=0.0, elastic_p=0.0)),
                                                   image, mask, seed)[1], msk))
    assert flipped > 0  # the elastic deformation did move the mask


def test_augmentation_keeps_the_phase_greys_apart() -> None:
    # Fe2Al5 above steel as the presets display them (0.57, 0.745). A crop wholly inside one phase has only its grey
    # to go by: the augmentation must keep each phase's grey where it is in expectation and never carry one phase's
    # crop past the other's, even between crops of different draws (the first defaults did in 14 % of draws).
    rows = 128
    image = np.full((rows, 64), 0.57, np.float32)
    image[rows // 2:] = 0.745
    mask = np.zeros(image.shape, np.uint8)
    transform = build_augmentation()
    upper, lower = [], []
    for seed in range(400):
        img, _ = augment(transform, image, mask, seed)
        upper.append(float(img[8:rows // 2 - 8].mean()))
        lower.append(float(img[rows // 2 + 8:-8].mean()))
    top, bottom = np.array(upper), np.array(lower)
    assert (top < bottom).all()  # the order within an image always holds
    assert abs(top.mean() - 0.57) < 0.015 and abs(bottom.mean() - 0.745) < 0.015
    crossed = (top[:, None] >= bottom[None, :]).mean()  # any Fe2Al5 crop against any steel crop
    assert crossed < 0.005, crossed


def test_augmentation_is_reproducible_by_seed() -> None:
    image = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    mask = np.zeros((64, 64), np.uint8)
    t = build_augmentation()
    a, b, c = augment(t, image, mask, 5)[0], augment(t, image, mask, 5)[0], augment(t, image, mask, 6)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_decoded_pairs_are_kept_within_their_budget(tiny_datasets: list[Path]) -> None:
    samples = list_samples(tiny_datasets[0])
    one = 96 * 128 * 2  # an 8-bit image and its mask
    cache = PairCache(len(classes.CLASSES), max_bytes=2 * one)
    (raw, white), mask = cache.get(samples[0])
    image, expected = read_pair(samples[0], len(classes.CLASSES))
    assert raw.dtype == np.uint8 and white == 255.0 and np.array_equal(unit_float(raw, white), image)
    assert np.array_equal(mask, expected)
    assert cache.get(samples[0])[1] is mask  # held
    cache.get(samples[1])
    cache.get(samples[0])  # now the most recently used
    cache.get(samples[2])  # over budget: samples[1], the least recently used, goes
    assert list(cache._items) == [samples[0].image, samples[2].image] and cache._bytes == 2 * one
    assert cache.get(samples[0])[1] is mask
    assert PairCache(len(classes.CLASSES), max_bytes=0).get(samples[0])[1] is not mask  # 0: nothing kept


def test_mask_with_an_unknown_id_is_refused(tiny_datasets: list[Path], tmp_path: Path) -> None:
    import cv2

    bad = tmp_path / "bad.png"
    cv2.imwrite(str(bad), np.full((8, 8), 9, np.uint8))
    with pytest.raises(DatasetError, match="class id 9 is not in the class table"):
        read_mask(bad, 7)


def test_class_balanced_crops_find_small_classes(tmp_path: Path) -> None:
    from tests.training.synth import write_dataset

    mask = np.full((256, 256), classes.SUBSTRATE, np.uint8)
    mask[200:203, 30:33] = classes.PORE  # one pore of 9 pixels
    folder = write_dataset(tmp_path / "one_pore", masks=[mask])
    index = index_masks(list_samples(folder), len(classes.CLASSES))
    assert index.counts[0, classes.PORE] == 9 and index.locations[0][classes.PORE].size == 9

    def share_with_pore(balance: float) -> float:
        dm = SegmentationDataModule([str(folder)], crop_px=32, crops_per_epoch=200, class_balance=balance,
                                    batch_size=50, num_workers=0, augment=False, val_fraction=0.0, test_fraction=0.0)
        dm.setup("fit")
        masks = [b["mask"] for b in dm.train_dataloader()]
        return float(np.mean([(m == classes.PORE).any().item() for batch in masks for m in batch]))

    assert share_with_pore(1.0) > 0.35  # the pore is one of two classes: about half the crops hold it
    assert share_with_pore(0.0) < 0.1  # a uniform 32 px crop of 256 px rarely does


def test_datamodule_batches_and_splits(tiny_datasets: list[Path]) -> None:
    dm = SegmentationDataModule([str(p) for p in tiny_datasets], weights=[1.0, 3.0], crop_px=64, crops_per_epoch=8,
                                batch_size=4, num_workers=0, val_fraction=0.2, test_fraction=0.2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 1, 64, 64) and batch["mask"].shape == (4, 64, 64)
    assert batch["image"].dtype.is_floating_point and 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    d = dm.describe()
    assert d["train"] + d["val"] + d["test"] == 10 and d["val"] == 2 and d["test"] == 2
    val = next(iter(dm.val_dataloader()))
    assert val["image"].shape[-2:] in ((96, 128), (112, 144))  # whole images
    by_folder = SegmentationDataModule([str(tiny_datasets[0])], val_datasets=[str(tiny_datasets[1])],
                                       test_datasets=[str(tiny_datasets[1])], num_workers=0)
    by_folder.setup("fit")
    assert by_folder.describe()["train"] == 6 and len(by_folder.val_samples) == 4
    with pytest.raises(DatasetError, match="one weight per folder"):
        SegmentationDataModule([str(tiny_datasets[0])], weights=[1.0, 2.0])
    a, b = str(tiny_datasets[0]), str(tiny_datasets[1])
    with pytest.raises(DatasetError, match=rf"{a}/\. is given twice in datasets \(as {a} before\)"):
        SegmentationDataModule([a, b, f"{a}/."])
    for role in ("val_datasets", "test_datasets"):
        with pytest.raises(DatasetError, match=f"{b} is in both datasets and {role}: the model would be scored on"):
            SegmentationDataModule([a, b], **{role: [b]})  # type: ignore[arg-type]
    folders = [str(p) for p in tiny_datasets]
    for bad in ([1.0, -1.0], [0.0, 0.0], [1.0, float("nan")], [1.0, float("inf")]):  # YAML's .nan and .inf pass
        said = r"weights must be finite non-negative numbers with a positive sum \(got \[(1|0)\.0, "
        with pytest.raises(DatasetError, match=said):
            SegmentationDataModule(folders, weights=bad)


def test_items_differ_by_index_under_the_same_torch_seed(tiny_datasets: list[Path]) -> None:
    import torch

    dm = SegmentationDataModule([str(tiny_datasets[0])], crop_px=32, crops_per_epoch=4, num_workers=0,
                                val_fraction=0.0, test_fraction=0.0)
    dm.setup("fit")
    dataset = dm.train_dataloader().dataset
    torch.manual_seed(7)
    first = dataset[0]["image"]
    torch.manual_seed(7)  # DDP ranks are seeded alike; the sampler hands them different indices
    assert torch.equal(dataset[0]["image"], first)
    torch.manual_seed(7)
    assert not torch.equal(dataset[1]["image"], first)
