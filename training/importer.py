"""Real labelled micrographs into the dataset-folder contract (``semcoat dataset import``).

Images (PNG, TIFF, JPEG; 8 or 16 bit grey, colour made grey) are paired with masks of the same file stem (8-bit class
ids of the class table). Every pair is checked before anything is written: a missing mask, a mask of another size
than its image, an id of no class, images of different sizes or depths. The truth of each sample is measured from
its mask (:func:`analysis.measure.measure`), as the renderer measures its exact masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from semcoat import classes, pngio
from semcoat.dataset import DatasetError, DatasetInfo, DatasetWriter, sample_id

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
MASK_SUFFIXES = (".png", ".tif", ".tiff")
GENERATOR = "semcoat dataset import"


@dataclass(frozen=True)
class Pair:
    """An image file and its mask file."""

    image: Path
    mask: Path


def find_pairs(images_dir: Path, masks_dir: Path) -> list[Pair]:
    """Image files of ``images_dir`` (sorted by name) with the mask of the same stem in ``masks_dir``.

    Raises
    ------
    DatasetError
        When a folder is missing, holds no image, or an image has no mask (all such stems named).
    """
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DatasetError(f"{folder}: no such folder")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise DatasetError(f"{images_dir}: no image ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    stems: dict[str, list[str]] = {}
    for path in images:
        stems.setdefault(path.stem, []).append(path.name)
    twice = [names for names in stems.values() if len(names) > 1]
    if twice:  # one mask would label both, and the copies would sit in training and validation alike
        raise DatasetError(f"{images_dir}: images share a file stem, and so their mask: "
                           f"{'; '.join(', '.join(n) for n in twice[:10])}; keep one image per stem")
    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in MASK_SUFFIXES and p.is_file()}
    missing = [p.name for p in images if p.stem not in masks]
    if missing:
        raise DatasetError(f"{masks_dir}: no mask (same file stem, {', '.join(MASK_SUFFIXES)}) for "
                           f"{len(missing)} image(s): {', '.join(missing[:20])}")
    return [Pair(p, masks[p.stem]) for p in images]


def read_grey(path: Path) -> np.ndarray:
    """An image file as a uint8 or uint16 (rows, columns) array (colour averaged to grey)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DatasetError(f"{path}: cannot be read as an image")
    if raw.ndim == 3:
        raw = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2GRAY)
    if raw.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"{path}: {raw.dtype} pixels; accepted: 8- or 16-bit integer grey")
    return raw


def check_mask(path: Path, shape: tuple[int, int], ids: Sequence[int]) -> np.ndarray:
    """The mask at ``path`` as uint8, checked against its image's ``shape`` (rows, columns) and the accepted ``ids``.

    Raises
    ------
    DatasetError
        Naming the mask, for another size, another depth, colour, or ids of no class.
    """
    try:
        with path.open("rb") as file:
            head = file.read(33)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if head.startswith(pngio.PNG_SIGNATURE) and len(head) == 33 and pngio.read_header(head).color_type == 3:
        # OpenCV expands the palette to colours, which would be called a 3-channel mask: say what the file is
        raise DatasetError(f"{path}: a palette (indexed-colour) PNG, as labelling tools often write; a mask must be "
                           "an 8-bit greyscale PNG whose values are the class ids: save its indices as grey, e.g. "
                           "with Pillow: Image.fromarray(numpy.asarray(Image.open(path))).save(path)")
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DatasetError(f"{path}: cannot be read as a mask")
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise DatasetError(f"{path}: a mask must be 8-bit single-channel class ids (got {mask.dtype}, "
                           f"{mask.shape[2] if mask.ndim == 3 else 1} channel(s))")
    if mask.shape != shape:
        raise DatasetError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} px but its image is "
                           f"{shape[1]}x{shape[0]} px (crop the data bar from both, or neither)")
    unknown = sorted(set(np.unique(mask).tolist()) - set(ids))
    if unknown:
        named = ", ".join(f"{i} {classes.CLASS_NAMES.get(i, '?')}" for i in sorted(ids))
        raise DatasetError(f"{path}: unknown class id(s) {unknown}; accepted: {named}")
    return mask


def _encode(array: np.ndarray) -> bytes:
    depth = 16 if array.dtype == np.uint16 else 8
    data = array.astype(">u2").tobytes() if depth == 16 else array.tobytes()
    return pngio.encode_grey(array.shape[1], array.shape[0], depth, data)


def import_dataset(images_dir: str | Path, masks_dir: str | Path, pixel_size_um: float, out: str | Path,
                   name: str | None = None) -> DatasetInfo:
    """Write a dataset folder ``out`` from real images and their label masks; return its info.

    Parameters
    ----------
    images_dir, masks_dir : folders of images and of masks paired by file stem.
    pixel_size_um : µm per pixel of every image.
    out : the new dataset folder (must not hold anything else).
    name : dataset name (default: the folder's name).

    Raises
    ------
    DatasetError
        For any problem of the inputs, before anything is written (see the module docstring).
    """
    from analysis.measure import MAX_PIXEL_SIZE_UM, MIN_PIXEL_SIZE_UM, MaskError, measure

    if not MIN_PIXEL_SIZE_UM <= pixel_size_um <= MAX_PIXEL_SIZE_UM:  # NaN too: one message for every bad value
        raise DatasetError(f"the pixel size must be a finite number of µm per pixel from {MIN_PIXEL_SIZE_UM:g} to "
                           f"{MAX_PIXEL_SIZE_UM:g} (e.g. 0.05); got {pixel_size_um}", argument="pixel_size_um")
    pairs = find_pairs(Path(images_dir), Path(masks_dir))
    ids = sorted(classes.CLASS_IDS)
    loaded = []
    for pair in pairs:
        image = read_grey(pair.image)
        mask = check_mask(pair.mask, (image.shape[0], image.shape[1]), ids)
        try:
            truth = measure(mask, pixel_size_um, source=str(pair.mask)).as_dict()
        except MaskError as exc:
            raise DatasetError(f"{pair.mask}: cannot be measured as a coating cross-section ({exc})") from exc
        loaded.append((pair, image, mask, truth))
    shapes = {img.shape for _, img, _, _ in loaded}
    depths = {img.dtype for _, img, _, _ in loaded}
    if len(shapes) > 1 or len(depths) > 1:
        raise DatasetError(f"{images_dir}: images differ in size or depth ({sorted(shapes)}, "
                           f"{sorted(str(d) for d in depths)}); a dataset folder holds one size and depth: import "
                           "each kind into its own folder")
    rows, cols = loaded[0][1].shape
    info = DatasetInfo(name=name or Path(out).name, pixel_size_um=float(pixel_size_um), image_width_px=int(cols),
                       image_height_px=int(rows), count=len(loaded), seed=0,
                       bit_depth=16 if loaded[0][1].dtype == np.uint16 else 8,
                       spec={"source": "real", "images": str(images_dir), "masks": str(masks_dir)},
                       generator_version=GENERATOR,
                       classes={str(c.id): c.name for c in classes.CLASSES})
    try:
        writer = DatasetWriter.open(out, info)
        for index, (pair, image, mask, truth) in enumerate(loaded):
            sid = sample_id(index)
            meta = {"id": sid, "index": index, "truth": truth,
                    "params": {"source_image": pair.image.name, "source_mask": pair.mask.name}}
            writer.write_sample(sid, _encode(image), _encode(mask), meta)
    except OSError as exc:  # a folder that cannot be made or written (no space, no permission)
        raise DatasetError(f"{out}: cannot write the dataset there ({exc.strerror or exc})", argument="out") from exc
    return info
