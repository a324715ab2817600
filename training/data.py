"""The Lightning DataModule over one or more dataset folders (the contract of :mod:`semcoat.dataset`).

Training draws random crops at native resolution (features are a few pixels wide: whole images are never shrunk):
a folder by its mixing weight, an image of it, and with probability ``class_balance`` a crop holding a pixel of a
class chosen uniformly among those the image holds (so small classes are seen as often as large ones), else a
uniform crop. Validation and test run on whole images. Splits are by seed inside each folder, or by folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from semcoat.classes import IGNORE_ID
from semcoat.dataset import DatasetError, read_dataset
from training.augment import AugmentConfig, augment, build_augmentation
from training.samples import (
    MaskIndex,
    PairCache,
    Sample,
    class_table,
    class_weights,
    crop_origin,
    crop_pair,
    ignore_faint_precipitates,
    index_masks,
    list_samples,
    read_pair,
    sample_mask,
    split_indices,
    unit_float,
)


class CropDataset(Dataset[dict[str, Any]]):
    """``length`` random training crops of ``crop_px`` (rows, columns) from weighted groups of samples.

    Each item is drawn from its index and a seed taken from torch's generator, which Lightning and the DataLoader
    seed per run, epoch and worker: workers never repeat each other, DDP ranks (seeded alike, but handed different
    indices by the distributed sampler) never repeat each other, and a seeded run repeats itself.
    """

    def __init__(self, groups: Sequence[Sequence[Sample]], group_weights: Sequence[float], n_classes: int,
                 crop_px: tuple[int, int], length: int, class_balance: float = 0.5,
                 augment_config: AugmentConfig | None = None, augment_on: bool = True,
                 cache_bytes: int = 512 * 2**20) -> None:
        self.samples = [s for group in groups for s in group]
        starts = np.cumsum([0, *[len(g) for g in groups]])
        self.group_ranges = [(int(starts[i]), int(starts[i + 1])) for i in range(len(groups))]
        w = np.asarray(group_weights, np.float64)
        self.group_p = w / w.sum()
        self.n_classes = n_classes
        self.crop_px = crop_px
        self.length = length
        self.class_balance = class_balance
        self.index: MaskIndex = index_masks(self.samples, n_classes)
        self.transform = build_augmentation(augment_config) if augment_on else None
        self.cache = PairCache(n_classes, cache_bytes)  # filled in each worker process by its own draws

    def __len__(self) -> int:
        return self.length

    def draw(self, rng: np.random.Generator) -> tuple[int, tuple[int, int]]:
        """(sample index, crop origin) of one crop."""
        lo, hi = self.group_ranges[int(rng.choice(len(self.group_ranges), p=self.group_p))]
        i = int(rng.integers(lo, hi))
        shape = self.index.shapes[i]
        centre = None
        if rng.random() < self.class_balance:
            present = sorted(self.index.locations[i])
            cid = present[int(rng.integers(len(present)))]
            flat = int(rng.choice(self.index.locations[i][cid]))
            centre = (flat // shape[1], flat % shape[1])
        return i, crop_origin(shape, self.crop_px, rng, centre)

    def class_shares(self, draws: int = 2048, seed: int = 0) -> np.ndarray:
        """Share of each class among the pixels of the training crops as :meth:`draw` picks them (before
        augmentation), estimated from ``draws`` crops of a fixed ``seed`` (the same on every DDP rank); float64
        (classes,). Class-balanced sampling makes these differ from the masks' own class frequencies (on preset
        renders: the steel 13 % of the crops' pixels against 22 % of the images'), and the loss sees the crops."""
        rng = np.random.default_rng(seed)
        origins: dict[int, list[tuple[int, int]]] = {}
        for _ in range(draws):
            i, origin = self.draw(rng)
            origins.setdefault(i, []).append(origin)
        totals = np.zeros(self.n_classes, np.float64)
        for i, where in origins.items():
            mask = sample_mask(self.samples[i], self.n_classes)
            for origin in where:
                crop = crop_pair(mask, mask, origin, self.crop_px)[1]
                totals += np.bincount(crop.ravel(), minlength=IGNORE_ID + 1)[:self.n_classes]
        return totals / max(totals.sum(), 1.0)

    def __getitem__(self, item: int) -> dict[str, Any]:
        rng = np.random.default_rng([int(torch.randint(0, 2**31 - 1, (1,)).item()), item])
        seed = int(rng.integers(0, 2**31 - 1))
        i, origin = self.draw(rng)
        (raw, white), mask = self.cache.get(self.samples[i])
        raw, mask = crop_pair(raw, mask, origin, self.crop_px)
        image = unit_float(raw, white)
        if self.transform is not None:
            image, mask = augment(self.transform, image, mask, seed)
        return {"image": torch.from_numpy(image)[None], "mask": torch.from_numpy(mask.astype(np.int64))}


class WholeImageDataset(Dataset[dict[str, Any]]):
    """Whole images and masks, for validation, test and prediction."""

    def __init__(self, samples: Sequence[Sample], n_classes: int) -> None:
        self.samples = list(samples)
        self.n_classes = n_classes

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int) -> dict[str, Any]:
        sample = self.samples[item]
        image, mask = read_pair(sample, self.n_classes)
        return {"image": torch.from_numpy(image)[None], "mask": torch.from_numpy(mask.astype(np.int64)),
                "name": f"{sample.folder.name}/{sample.sid}"}


def _check_folders_apart(datasets: Sequence[str], val_datasets: Sequence[str], test_datasets: Sequence[str]) -> None:
    """Refuse a training folder given twice (its images would sit in one copy's training split and another's
    validation split) or also given for validation or test (scored on what the model trained on)."""
    seen: dict[Path, str] = {}
    for folder in datasets:
        key = Path(folder).resolve()
        if key in seen:
            raise DatasetError(f"{folder} is given twice in datasets (as {seen[key]} before): each copy would be split "
                               "apart, and the images one trains on the other would validate and test")
        seen[key] = folder
    for role, folders in (("val_datasets", val_datasets), ("test_datasets", test_datasets)):
        for folder in folders:
            if Path(folder).resolve() in seen:
                raise DatasetError(f"{folder} is in both datasets and {role}: the model would be scored on images it "
                                   "trained on; give a folder of other images")


class SegmentationDataModule(L.LightningDataModule):
    """Crops for training, whole images for validation and test, from dataset folders.

    Parameters
    ----------
    datasets
        dataset folders to train on (synthetic batches and real labelled folders alike).
    weights
        mixing weight of each folder in ``datasets`` (crops are drawn from a folder in proportion to it);
        default: equal weights per folder.
    val_datasets
        folders used whole for validation (split by folder); when not given, each folder of ``datasets`` gives
        ``val_fraction`` of its images (by ``split_seed``).
    test_datasets
        folders used whole for test (split by folder); when not given, each folder of ``datasets`` gives
        ``test_fraction`` of its images.
    val_fraction
        share of each folder's images held out for validation, in [0, 1) (at least one image when above 0).
    test_fraction
        share of each folder's images held out for test, in [0, 1); the two sum below 1.
    split_seed
        seed of the split (folder k is shuffled with ``split_seed + k``).
    crop_px
        training crop edge, pixels (rows = columns), a multiple of 32 for the U-Nets.
    crops_per_epoch
        training crops in one epoch.
    class_balance
        probability that a crop is centred near a pixel of a class drawn uniformly from the image's.
    batch_size
        training crops per batch.
    eval_batch_size
        whole images per validation/test batch.
    num_workers
        data-loader worker processes (0: load in the main process).
    augment
        whether training crops are augmented (:mod:`training.augment`).
    augment_config
        the augmentation's ranges and probabilities (:class:`training.augment.AugmentConfig`; null: its defaults).
    cache_mb
        decoded training images each loading process keeps in memory, MiB (:class:`training.samples.
        PairCache`; 0: decode every crop's image anew).
    ignore_faint_precipitates
        in rendered images, precipitates whose phase's grey differs from Fe2Al5's by less
        than this (0-1 grey) are left out of the loss and the metrics (:func:`training.samples.
        ignore_faint_precipitates`); 0 keeps every label. Images without a phase map (real labelled folders) are never
        changed.
    """

    def __init__(self, datasets: list[str], weights: list[float] | None = None,
                 val_datasets: list[str] | None = None, test_datasets: list[str] | None = None,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, split_seed: int = 0, crop_px: int = 256,
                 crops_per_epoch: int = 1024, class_balance: float = 0.5, batch_size: int = 8,
                 eval_batch_size: int = 1, num_workers: int = 2, augment: bool = True,
                 augment_config: AugmentConfig | None = None, cache_mb: int = 512,
                 ignore_faint_precipitates: float = 0.0) -> None:
        super().__init__()
        if weights is not None and len(weights) != len(datasets):
            raise DatasetError(f"weights gives {len(weights)} value(s) for {len(datasets)} dataset folder(s); "
                               "give one weight per folder")
        if weights is not None and (not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0):
            raise DatasetError(f"weights must be finite non-negative numbers with a positive sum (got {weights})")
        if crop_px < 32:
            raise DatasetError(f"crop_px must be at least 32 pixels (got {crop_px})")
        for name, value, low in (("crops_per_epoch", crops_per_epoch, 1), ("batch_size", batch_size, 1),
                                 ("eval_batch_size", eval_batch_size, 1), ("num_workers", num_workers, 0)):
            if value < low:
                raise DatasetError(f"{name} must be a whole number of at least {low} (got {value})")
        if not 0.0 <= class_balance <= 1.0:  # NaN too
            raise DatasetError(f"class_balance must be a probability in [0, 1] (got {class_balance})")
        if cache_mb < 0:
            raise DatasetError(f"cache_mb must be 0 or more MiB (got {cache_mb})")
        if not 0.0 <= ignore_faint_precipitates <= 1.0:
            raise DatasetError("ignore_faint_precipitates must be a grey difference in [0, 1] "
                               f"(got {ignore_faint_precipitates})")
        _check_folders_apart(datasets, val_datasets or [], test_datasets or [])
        self.save_hyperparameters(ignore=["augment_config"])
        self.augment_config = augment_config
        table = class_table([*datasets, *(val_datasets or []), *(test_datasets or [])])
        self.class_names = [table[i] for i in range(len(table))]
        self._train: CropDataset | None = None
        self._val: list[Sample] = []
        self._test: list[Sample] = []
        self._train_groups: list[list[Sample]] = []

    @property
    def hp(self) -> Any:
        """The saved hyperparameters (attribute access)."""
        return self.hparams

    @property
    def num_classes(self) -> int:
        """Number of classes (ids 0..n-1) of the folders' merged class table."""
        return len(self.class_names)

    def _split(self) -> None:
        hp = self.hp
        by_seed = hp.val_datasets is None or hp.test_datasets is None
        groups, val, test = [], [], []
        for k, folder in enumerate(hp.datasets):
            samples = list_samples(folder)
            if by_seed:
                vf = hp.val_fraction if hp.val_datasets is None else 0.0
                tf = hp.test_fraction if hp.test_datasets is None else 0.0
                tr, va, te = split_indices(len(samples), vf, tf, hp.split_seed + k)
                groups.append([samples[i] for i in tr])
                val += [samples[i] for i in va]
                test += [samples[i] for i in te]
            else:
                groups.append(samples)
        for folder in hp.val_datasets or []:
            val += list_samples(folder)
        for folder in hp.test_datasets or []:
            test += list_samples(folder)
        if not any(groups):
            raise DatasetError(f"no training sample left after the split of {hp.datasets}")
        contrast, n = hp.ignore_faint_precipitates, self.num_classes
        self._train_groups = [ignore_faint_precipitates(g, contrast, n) for g in groups]
        self._val = ignore_faint_precipitates(val, contrast, n)
        self._test = ignore_faint_precipitates(test, contrast, n)

    def setup(self, stage: str | None = None) -> None:
        """Split the folders and index the training masks (once)."""
        if self._train_groups:
            return
        self._split()
        hp = self.hp
        weights = hp.weights or [1.0] * len(hp.datasets)
        kept = [(g, w) for g, w in zip(self._train_groups, weights, strict=True) if g and w > 0]
        self._train = CropDataset([g for g, _ in kept], [w for _, w in kept], self.num_classes,
                                  (hp.crop_px, hp.crop_px), hp.crops_per_epoch, hp.class_balance,
                                  self.augment_config, hp.augment, hp.cache_mb * 2**20)

    def check_split(self, stage: str) -> None:
        """Refuse an empty split that ``stage`` needs (after :meth:`setup`): ``fit`` and ``validate`` the validation
        images (the shipped configs choose the best checkpoint and stop early on validation Dice), ``test`` and
        ``predict`` the test images.

        Raises
        ------
        DatasetError
            Naming the split, its fraction and the images per folder.
        """
        split, samples, fraction, folders = (("validation", self._val, "val_fraction", "val_datasets")
                                             if stage in ("fit", "validate") else
                                             ("test", self._test, "test_fraction", "test_datasets"))
        if samples:
            return
        counts = ", ".join(f"{folder}: {len(read_dataset(folder).ids)}" for folder in self.hp.datasets)
        raise DatasetError(f"the {split} split is empty ({fraction} {getattr(self.hp, fraction)}; images per folder: "
                           f"{counts}); {stage} needs {split} images: give {fraction} above 0 with folders of at "
                           f"least 2 images, or {folders}")

    def class_weights(self, max_ratio: float = 10.0, power: float = 1.0) -> np.ndarray:
        """Loss weights from the class shares of the training crops as they are drawn (:meth:`CropDataset.
        class_shares`, :func:`training.samples.class_weights`)."""
        self.setup("fit")
        assert self._train is not None
        return class_weights(self._train.class_shares(), max_ratio, power)

    @property
    def val_samples(self) -> list[Sample]:
        """Samples of the validation split (after :meth:`setup`)."""
        return self._val

    @property
    def test_samples(self) -> list[Sample]:
        """Samples of the test split (after :meth:`setup`)."""
        return self._test

    def _loader(self, dataset: Dataset[dict[str, Any]], batch_size: int, shuffle: bool) -> DataLoader[dict[str, Any]]:
        workers = self.hp.num_workers
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                          persistent_workers=workers > 0, drop_last=False)

    def train_dataloader(self) -> DataLoader[dict[str, Any]]:
        """Random crops, batch_size per batch."""
        assert self._train is not None
        return self._loader(self._train, self.hp.batch_size, shuffle=False)

    def val_dataloader(self) -> DataLoader[dict[str, Any]]:
        """Whole validation images."""
        return self._loader(WholeImageDataset(self._val, self.num_classes), self.hp.eval_batch_size, False)

    def test_dataloader(self) -> DataLoader[dict[str, Any]]:
        """Whole test images."""
        return self._loader(WholeImageDataset(self._test, self.num_classes), self.hp.eval_batch_size, False)

    def predict_dataloader(self) -> DataLoader[dict[str, Any]]:
        """Whole test images (the test split), for ``semcoat train predict``."""
        return self.test_dataloader()

    def describe(self) -> dict[str, Any]:
        """Sizes of the splits and the class table, for logs."""
        return {"train": sum(len(g) for g in self._train_groups), "val": len(self._val), "test": len(self._test),
                "classes": self.class_names,
                "augment": asdict(self.augment_config or AugmentConfig()) if self.hp.augment else None,
                "datasets": [str(Path(d)) for d in self.hp.datasets]}
