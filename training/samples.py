"""Samples of dataset folders for training: the class table, splits, mask statistics and aligned crops.

Plain functions over numpy arrays, used by :mod:`training.data`. Images are read at native resolution and scaled to
float32 in [0, 1] by their integer range (8 or 16 bit), exactly as prediction scales a micrograph
(:func:`analysis.files.to_unit_float`); masks are uint8 class ids of :mod:`semcoat.classes`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from semcoat import classes, pngio
from semcoat.dataset import DatasetError, read_dataset
from semcoat.errors import SemcoatError
from semcoat.spec import CoatingSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One labelled image of a dataset folder.

    Attributes
    ----------
    folder : the dataset folder it belongs to.
    sid : its id in that folder.
    image, mask : its grey image and class-id mask files.
    ignored : flat indices of the mask's pixels that training labels :data:`semcoat.classes.IGNORE_ID` (out of the
        loss and the metrics), or None: see :func:`ignore_faint_precipitates`.
    """

    folder: Path
    sid: str
    image: Path
    mask: Path
    ignored: np.ndarray | None = field(default=None, compare=False, repr=False)


def class_table(folders: Sequence[str | Path]) -> dict[int, str]:
    """Class ids and names the folders' ``dataset.json`` declare, merged; ids missing in between are named from
    :mod:`semcoat.classes` (the table is append-only, so an id means the same class everywhere).

    Raises
    ------
    DatasetError
        When two folders give one id different names, or no folder is given.
    """
    if not folders:
        raise DatasetError("no dataset folder given; give at least one folder holding a dataset.json")
    table: dict[int, str] = {}
    origin: dict[int, Path] = {}
    for folder in folders:
        info = read_dataset(folder).info
        for key, name in info.classes.items():
            cid = int(key)
            if cid in table and table[cid] != name:
                raise DatasetError(
                    f"{folder}: class {cid} is {name!r} there but {table[cid]!r} in {origin[cid]}; "
                    "datasets trained together must share the class table")
            table[cid] = name
            origin[cid] = Path(folder)
    n = max(table) + 1
    return {cid: table.get(cid, classes.CLASS_NAMES.get(cid, f"class{cid}")) for cid in range(n)}


def list_samples(folder: str | Path) -> list[Sample]:
    """The complete samples of a dataset folder, in id order; a warning names a folder where some are missing
    (a batch still rendering, or a file deleted), so that a training on fewer images than the folder holds is seen.

    Raises
    ------
    DatasetError
        When the folder is no dataset folder or holds no complete sample.
    """
    ds = read_dataset(folder)
    if not ds.ids:
        raise DatasetError(f"{folder}: the dataset holds no complete sample (image, mask and meta)")
    if not ds.is_complete:
        log.warning("%s: %d of its %d samples are complete (image, mask and meta); the others are left out (run "
                    "`semcoat dataset check %s` for the list)", folder, len(ds.ids), ds.info.count, folder)
    return [Sample(Path(folder), sid, ds.image_path(sid), ds.mask_path(sid)) for sid in ds.ids]


def faint_phases(params: Any, contrast_min: float) -> np.ndarray | None:
    """Per precipitate phase (:data:`semcoat.classes.PRECIPITATE_PHASES`), whether its grey in the image of the spec
    ``params`` (a rendered image's meta ``params``) differs from Fe2Al5's by less than ``contrast_min`` (0-1 grey);
    None when ``params`` is no spec this version reads."""
    if not isinstance(params, dict):
        return None
    try:
        grey = CoatingSpec.from_dict(params).grey
    except SemcoatError:  # another version's spec, or no spec at all
        return None
    return np.abs(np.array(grey.precipitate_phase_greys()) - grey.fe2al5) < contrast_min


def read_phase_map(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A dataset's precipitate-phase map (:mod:`semcoat.dataset`: 0 off the precipitates, 1 + the phase's index on
    them) as uint8 of the mask's ``shape``.

    Raises
    ------
    DatasetError
        When the file is unreadable, not an 8-bit single-channel image of ``shape``, or holds an unknown phase.
    """
    phases = _read_grey_png(path, "a precipitate-phase map")
    if phases.shape != shape:
        raise DatasetError(f"{path}: the phase map is {phases.shape[1]}x{phases.shape[0]} px, its mask "
                           f"{shape[1]}x{shape[0]}; run `semcoat dataset check` on its folder")
    top, n_phases = int(phases.max()), len(classes.PRECIPITATE_PHASES)
    if top > n_phases:
        raise DatasetError(f"{path}: phase value {top} is not 0 (no precipitate) or 1-{n_phases}")
    return phases


def faint_precipitates(phases: np.ndarray, faint_phase: np.ndarray) -> np.ndarray:
    """Pixels (bool) of a phase map (:func:`read_phase_map`) whose phase is faint (:func:`faint_phases`)."""
    lookup = np.zeros(256, bool)
    lookup[1:1 + faint_phase.size] = faint_phase
    return lookup[phases]


def ignore_faint_precipitates(samples: Sequence[Sample], contrast_min: float, n_classes: int) -> list[Sample]:
    """The samples, each rendered one with its faint precipitates marked :attr:`Sample.ignored`: those whose
    phase's grey differs from Fe2Al5's by less than ``contrast_min`` (0-1 grey), from the phase map the renderer
    writes beside the mask (:func:`faint_phases`, :func:`faint_precipitates`).

    The renderer labels every precipitate, but Al8Cr5 has about Fe2Al5's grey: on the presets 40-60 % of the
    precipitate pixels show nothing a model could learn, and labelling them teaches it to call plain Fe2Al5
    precipitate. Samples without a phase map (real labelled micrographs, older renders) or whose meta holds no spec
    this version reads are kept as they are.

    Raises
    ------
    DatasetError
        When a phase map is damaged (:func:`read_phase_map`).
    """
    if contrast_min <= 0:
        return list(samples)
    started = time.perf_counter()
    out, marked, faint_px, total_px, folders = [], 0, 0, 0, {}
    unmapped: dict[Path, int] = {}  # rendered images without a phase map, per folder
    for sample in samples:
        if sample.folder not in folders:
            folders[sample.folder] = read_dataset(sample.folder)
        dataset = folders[sample.folder]
        phase_path = dataset.phase_map_path(sample.sid)
        faint_phase = None
        if phase_path is not None:
            # a broken meta file is refused (Dataset.meta): its faint precipitates could not be told apart
            faint_phase = faint_phases(dataset.meta(sample.sid).get("params"), contrast_min)
        mask = read_mask(sample.mask, n_classes)
        total_px += int(np.count_nonzero(mask == classes.PRECIPITATE))
        if phase_path is None or faint_phase is None:
            if phase_path is None and "renderer" in dataset.info.generator_version:
                unmapped[sample.folder] = unmapped.get(sample.folder, 0) + 1
            out.append(sample)
            continue
        # only where the mask says precipitate: a mask edited after rendering keeps its own labels
        faint = faint_precipitates(read_phase_map(phase_path, mask.shape), faint_phase) & (mask == classes.PRECIPITATE)
        where = np.flatnonzero(faint.ravel()).astype(np.int32)
        marked, faint_px = marked + 1, faint_px + where.size
        out.append(replace(sample, ignored=where))
    for folder, count in unmapped.items():
        log.warning("%s: %d rendered image(s) have no precipitate-phase map (phases/<id>.png: rendered before "
                    "renderer 17?), so their faint precipitates keep their labels; render the batch again to leave "
                    "them out", folder, count)
    log.info("faint precipitates (phase grey within %.3f of Fe2Al5's) left out of the loss in %d of %d images: "
             "%d of %d precipitate pixels (%.1f s)", contrast_min, marked, len(out), faint_px, total_px,
             time.perf_counter() - started)
    return out


def split_indices(n: int, val_fraction: float, test_fraction: float,
                  seed: int) -> tuple[list[int], list[int], list[int]]:
    """(train, val, test) indices of ``n`` samples shuffled with ``seed``.

    Val and test each get ``round(fraction * n)`` samples, at least one when the fraction is positive and ``n`` leaves
    at least one sample for training.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DatasetError(f"val_fraction and test_fraction must be in [0, 1) and sum below 1 "
                           f"(got {val_fraction}, {test_fraction})")
    order = np.random.default_rng(seed).permutation(n).tolist()

    def share(fraction: float) -> int:
        return 0 if fraction == 0 else max(1, round(fraction * n))

    n_val, n_test = share(val_fraction), share(test_fraction)
    n_val = max(0, min(n_val, n - 1))  # at least one sample stays for training
    n_test = max(0, min(n_test, n - 1 - n_val))
    return order[n_val + n_test:], order[:n_val], order[n_val:n_val + n_test]


def decode_image(path: Path) -> tuple[np.ndarray, float]:
    """A grey image as decoded (rows, columns; uint8, uint16, other integers or float) and the value that stands for
    white: 255 or 65535 by depth, an odd integer type's largest value, 1 for floats (clipped to [0, 1] on scaling).

    Raises
    ------
    DatasetError
        When the file cannot be read as an image.
    """
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DatasetError(f"{path}: cannot be read as an image")
    if raw.ndim == 3:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGR2GRAY if raw.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    if raw.dtype.kind in "ui":
        top = 65535.0 if raw.dtype == np.uint16 else 255.0 if raw.dtype == np.uint8 else float(raw.max() or 1)
        return raw, top
    return raw, 1.0


def unit_float(raw: np.ndarray, white: float) -> np.ndarray:
    """float32 in [0, 1] of (part of) a decoded image and its white value (:func:`decode_image`)."""
    if raw.dtype.kind in "ui":
        return raw.astype(np.float32) / np.float32(white)
    return np.clip(raw.astype(np.float32), 0.0, 1.0)


def read_image(path: Path) -> np.ndarray:
    """A grey image as float32 (rows, columns) in [0, 1], scaled by its integer range.

    Raises
    ------
    DatasetError
        When the file cannot be read as an image.
    """
    return unit_float(*decode_image(path))


def _read_grey_png(path: Path, what: str) -> np.ndarray:
    """An 8-bit grey PNG of the dataset contract (a mask, a phase map) as uint8 (rows, columns). The header is checked
    first: OpenCV reads any format by its content, and a JPEG saved as ``.png`` would decode to changed labels."""
    try:
        data = path.read_bytes()
        header = pngio.read_header(data)
    except (OSError, pngio.PngError) as exc:
        raise DatasetError(f"{path}: expected an 8-bit grey PNG of {what} ({exc})") from exc
    if header.color_type != 0 or header.bit_depth != 8:
        raise DatasetError(f"{path}: expected an 8-bit grey PNG of {what}, found colour type {header.color_type} at "
                           f"{header.bit_depth} bit")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise DatasetError(f"{path}: expected an 8-bit grey PNG of {what} (it does not decode)")
    return pixels


def read_mask(path: Path, n_classes: int) -> np.ndarray:
    """A class-id mask as uint8 (rows, columns).

    Raises
    ------
    DatasetError
        When the file is unreadable, not 8-bit single-channel, or holds an id of no class (``>= n_classes``).
    """
    mask = _read_grey_png(path, "class ids")
    top = int(mask.max())
    if top >= n_classes:
        raise DatasetError(f"{path}: class id {top} is not in the class table (ids 0..{n_classes - 1})")
    return mask


def sample_mask(sample: Sample, n_classes: int) -> np.ndarray:
    """A sample's mask as training sees it: :func:`read_mask` with its :attr:`Sample.ignored` pixels IGNORE_ID."""
    mask = read_mask(sample.mask, n_classes)
    if sample.ignored is not None and sample.ignored.size:
        mask.ravel()[sample.ignored] = classes.IGNORE_ID
    return mask


def read_pair(sample: Sample, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(image float32 in [0, 1], mask uint8) of a sample, checked to have the same size."""
    (raw, white), mask = decode_pair(sample, n_classes)
    return unit_float(raw, white), mask


def decode_pair(sample: Sample, n_classes: int) -> tuple[tuple[np.ndarray, float], np.ndarray]:
    """((decoded image, its white value), mask uint8) of a sample, checked to have the same size: what
    :class:`PairCache` keeps (an 8-bit image takes a quarter of its float32 copy)."""
    (raw, white), mask = decode_image(sample.image), sample_mask(sample, n_classes)
    if raw.shape != mask.shape:
        raise DatasetError(f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]} px but its image is "
                           f"{raw.shape[1]}x{raw.shape[0]} px")
    return (raw, white), mask


class PairCache:
    """Decoded images and masks of one process, the least recently used dropped beyond ``max_bytes``.

    Decoding a 1024x768 PNG pair takes ~28 ms, four times the augmentation of a 256 px crop; a training draws
    thousands of crops from tens to hundreds of images, so each data-loader worker keeps what it decoded.
    """

    def __init__(self, n_classes: int, max_bytes: int) -> None:
        self.n_classes = n_classes
        self.max_bytes = max_bytes
        self._items: OrderedDict[Path, tuple[tuple[np.ndarray, float], np.ndarray]] = OrderedDict()
        self._bytes = 0

    def get(self, sample: Sample) -> tuple[tuple[np.ndarray, float], np.ndarray]:
        """The sample's decoded pair, from memory when it is held (:func:`decode_pair`)."""
        key = sample.image
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        pair = decode_pair(sample, self.n_classes)
        size = pair[0][0].nbytes + pair[1].nbytes
        if size <= self.max_bytes:
            while self._items and self._bytes + size > self.max_bytes:
                _, ((old, _w), old_mask) = self._items.popitem(last=False)
                self._bytes -= old.nbytes + old_mask.nbytes
            self._items[key] = pair
            self._bytes += size
        return pair


@dataclass
class MaskIndex:
    """What class-balanced sampling and loss weights need from the masks of a set of samples.

    Attributes
    ----------
    counts : (samples, classes) pixel count of each class in each mask (``IGNORE_ID`` pixels in none).
    locations : per sample, per class present, up to ``max_locations`` flat pixel indices of that class.
    shapes : per sample, (rows, columns).
    """

    counts: np.ndarray
    locations: list[dict[int, np.ndarray]]
    shapes: list[tuple[int, int]]


def index_masks(samples: Sequence[Sample], n_classes: int, max_locations: int = 4096, seed: int = 0) -> MaskIndex:
    """Class pixel counts and a random subset of each class's pixel positions, per sample (reads every mask once)."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((len(samples), n_classes), np.int64)
    locations: list[dict[int, np.ndarray]] = []
    shapes: list[tuple[int, int]] = []
    for i, sample in enumerate(samples):
        mask = sample_mask(sample, n_classes)
        flat = mask.ravel()
        counts[i] = np.bincount(flat, minlength=classes.IGNORE_ID + 1)[:n_classes]
        per_class: dict[int, np.ndarray] = {}
        order = np.argsort(flat, kind="stable")
        ends = np.cumsum(counts[i])
        for cid in np.flatnonzero(counts[i]):
            where = order[ends[cid] - counts[i, cid]:ends[cid]]
            if where.size > max_locations:
                where = rng.choice(where, max_locations, replace=False)
            per_class[int(cid)] = where.astype(np.int64)
        locations.append(per_class)
        shapes.append((int(mask.shape[0]), int(mask.shape[1])))
    return MaskIndex(counts, locations, shapes)


def class_weights(counts: np.ndarray, max_ratio: float = 10.0, power: float = 1.0) -> np.ndarray:
    """Loss weights of the classes from their pixel counts (or shares): median frequency balancing raised to
    ``power``, ``(median(f) / f_c) ** power``.

    ``power`` 1 is plain median frequency balancing; below 1 it still lifts the rare classes but does not push a
    model that hesitates between two classes towards the rarer one so hard (under a weighted cross-entropy a pixel
    is labelled ``argmax_c w_c p_c``). Weights are clipped to [1 / ``max_ratio``,
    ``max_ratio``] so that a rare class does not swamp the loss; a class with no pixel gets weight 1 (it never is a
    target; its false positives still cost through the softmax). Returns float32 (classes,).
    """
    totals = np.asarray(counts, np.float64).reshape(-1, np.shape(counts)[-1]).sum(axis=0)
    present = totals > 0
    weights = np.ones(totals.shape, np.float64)
    if present.any():
        freq = totals[present] / totals.sum()
        weights[present] = np.clip((np.median(freq) / freq) ** power, 1.0 / max_ratio, max_ratio)
    return weights.astype(np.float32)


def crop_origin(shape: tuple[int, int], crop: tuple[int, int], rng: np.random.Generator,
                centre: tuple[int, int] | None = None) -> tuple[int, int]:
    """Top-left corner of a ``crop`` (rows, columns) window in an image of ``shape``: one around a pixel drawn
    uniformly (see below), or holding ``centre`` (kept at a random place inside the window, not only the middle).
    Images smaller than the crop give a negative origin along that axis (the crop is padded, see :func:`crop_pair`).

    Without ``centre`` the window is centred on a uniformly drawn pixel and pushed inside the image. Uniform
    origins would hold the image's edge rows in 1 crop of ``rows - crop + 1`` (0.2 % for 256 px crops of 768 rows,
    against 50 % for the middle rows); on a cross-section those rows are the resin's top and the deepest steel, far
    from any interface, which a model must label too. Centred windows hold them in ``crop / 2`` of ``rows`` crops
    (17 %, the middle rows 33 %).
    """
    origin = []
    for axis in range(2):
        size, length = crop[axis], shape[axis]
        if length <= size:
            origin.append(-((size - length) // 2))
            continue
        if centre is None:
            middle = int(rng.integers(0, length))
            origin.append(min(max(middle - size // 2, 0), length - size))
        else:
            lo = max(0, centre[axis] - size + 1)
            hi = min(length - size, centre[axis])
            origin.append(int(rng.integers(lo, hi + 1)))
    return origin[0], origin[1]


def crop_pair(image: np.ndarray, mask: np.ndarray, origin: tuple[int, int],
              crop: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The same window of an image and its mask, aligned pixel for pixel. Columns outside the image are filled by
    reflection in both (a mirrored cross-section is a cross-section: horizontal flips are allowed); rows outside it
    repeat the edge row in the image and are :data:`~semcoat.classes.IGNORE_ID` in the mask, out of the loss,
    because a vertical mirror would put the surface down (a crop taller than the image)."""
    top, left = origin
    rows, cols = crop
    pad_rows = (max(0, -top), max(0, top + rows - image.shape[0]))
    pad_cols = (max(0, -left), max(0, left + cols - image.shape[1]))
    if any(pad_cols):
        sideways: Literal["reflect", "edge"] = "reflect" if image.shape[1] > 1 else "edge"
        image = np.pad(image, ((0, 0), pad_cols), mode=sideways)
        mask = np.pad(mask, ((0, 0), pad_cols), mode=sideways)
    if any(pad_rows):
        image = np.pad(image, (pad_rows, (0, 0)), mode="edge")
        mask = np.pad(mask, (pad_rows, (0, 0)), mode="constant", constant_values=classes.IGNORE_ID)
    top, left = top + pad_rows[0], left + pad_cols[0]
    return (np.ascontiguousarray(image[top:top + rows, left:left + cols]),
            np.ascontiguousarray(mask[top:top + rows, left:left + cols]))
