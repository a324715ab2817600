"""Tiny generated dataset folders with known answers: layered coatings (resin, Fe2Al5 with pores and precipitates,
FeAl, substrate from top to bottom) whose grey levels follow the classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semcoat import classes, pngio
from semcoat.dataset import MEASUREMENT_NAMES, DatasetInfo, DatasetWriter, sample_id
from semcoat.measurements import YES_NO_NAMES

GREY = {classes.BACKGROUND: 0.08, classes.FE2AL5: 0.45, classes.FEAL: 0.55, classes.SUBSTRATE: 0.75,
        classes.PORE: 0.05, classes.PRECIPITATE: 0.62}


def layered_mask(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A mask of horizontal layers with round pores and precipitates in the Fe2Al5 band."""
    mask = np.full((rows, cols), classes.SUBSTRATE, np.uint8)
    surface = int(rows * rng.uniform(0.1, 0.2))
    feal = int(rows * rng.uniform(0.6, 0.7))
    bottom = int(rows * rng.uniform(0.75, 0.85))
    mask[:surface] = classes.BACKGROUND
    mask[surface:feal] = classes.FE2AL5
    mask[feal:bottom] = classes.FEAL
    rr, cc = np.mgrid[:rows, :cols]
    for cid, n in ((classes.PORE, 6), (classes.PRECIPITATE, 6)):
        for _ in range(n):
            r, c, rad = rng.integers(surface + 4, feal - 4), rng.integers(0, cols), rng.integers(2, 5)
            mask[(rr - r) ** 2 + (cc - c) ** 2 <= rad * rad] = cid
    return mask


def image_of(mask: np.ndarray, rng: np.random.Generator, noise: float = 0.02) -> np.ndarray:
    """uint8 grey image of a mask: the class grey levels plus Gaussian noise."""
    lut = np.array([GREY.get(i, 0.3) for i in range(256)], np.float32)
    grey = lut[mask] + rng.normal(0, noise, mask.shape).astype(np.float32)
    return np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8)


def write_dataset(root: Path, count: int = 6, rows: int = 96, cols: int = 128, seed: int = 0,
                  name: str = "synth", masks: list[np.ndarray] | None = None) -> Path:
    """A dataset folder of ``count`` generated samples (or of the given ``masks``); returns ``root``."""
    rng = np.random.default_rng(seed)
    if masks is not None:
        count, (rows, cols) = len(masks), masks[0].shape
    info = DatasetInfo(name=name, pixel_size_um=0.2, image_width_px=cols, image_height_px=rows, count=count,
                       seed=seed, spec={"name": name}, generator_version="test")
    writer = DatasetWriter.open(root, info)
    truth = {n: (False if n in YES_NO_NAMES else 0.0) for n in MEASUREMENT_NAMES}
    for i in range(count):
        mask = masks[i] if masks is not None else layered_mask(rows, cols, rng)
        image = image_of(mask, rng)
        writer.write_sample(sample_id(i), pngio.encode_grey(cols, rows, 8, image.tobytes()),
                            pngio.encode_grey(cols, rows, 8, mask.tobytes()),
                            {"id": sample_id(i), "index": i, "params": {}, "truth": truth})
    return root
