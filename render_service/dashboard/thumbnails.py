"""Small pictures of a batch's samples for the dashboard: the grey image, or its mask's classes blended over it.

Made on the API's side with numpy and the core's PNG codec only (the API needs no OpenCV, Pillow, torch or bpy), and
kept on disk under ``<data dir>/cache/thumbnails/<batch id>/``, outside the dataset folder (whose files and archive
are the batch's contents). A thumbnail is named after the size and modification time of the files it was made from,
so a sample written again gets a new one. Decoding a render with the core's pure-Python PNG reader takes about 0.1 s
for 512x384 and up to a second for a 16-bit 1024x768 image on this project's 2-core machine: each thumbnail is made
once, one at a time per process, so opening a batch page never fills the API's threads with decoding.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from render_service.files import FileRefused, open_file
from semcoat import pngio
from semcoat.classes import BACKGROUND, CLASSES
from semcoat.dataset import write_atomic
from semcoat.predictions import OVERLAY_ALPHA

THUMBNAIL_MAX_PX = 320
KINDS = ("image", "overlay")
SAMPLE_ID = re.compile(r"\d{6,12}")
_PALETTE = np.zeros((256, 3), np.float32)
_PALETTE[[c.id for c in CLASSES]] = [c.color_rgb for c in CLASSES]
_making = threading.Lock()


class NoThumbnail(FileRefused):
    """The sample has no picture to show (not rendered yet, unreadable, or an unknown kind): a 404."""


def shrink_factor(width_px: int, height_px: int, max_px: int = THUMBNAIL_MAX_PX) -> int:
    """The whole factor that brings the longer side to at most ``max_px`` (1 when it already fits)."""
    return max(1, -(-max(width_px, height_px) // max_px))


def shrink_grey(pixels: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each ``factor`` x ``factor`` block (the last partial row/column of blocks dropped); same dtype."""
    rows, cols = pixels.shape[0] // factor, pixels.shape[1] // factor
    if factor == 1 or rows == 0 or cols == 0:
        return pixels
    blocks = pixels[:rows * factor, :cols * factor].reshape(rows, factor, cols, factor)
    return np.round(blocks.mean(axis=(1, 3))).astype(pixels.dtype)


def shrink_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """The class at the centre of each ``factor`` x ``factor`` block (class ids are not averaged)."""
    rows, cols = mask.shape[0] // factor, mask.shape[1] // factor
    if factor == 1 or rows == 0 or cols == 0:
        return mask
    return mask[factor // 2:rows * factor:factor, factor // 2:cols * factor:factor]


def display_grey(pixels: np.ndarray) -> np.ndarray:
    """A uint8 or uint16 grey image as uint8 for the screen (16-bit by its upper byte)."""
    return (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels.astype(np.uint8)


def blend_classes(grey: np.ndarray, mask: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """(rows, columns, 3) uint8: each class's colour (:mod:`semcoat.classes`) blended at ``alpha`` over the uint8
    ``grey``; background pixels stay grey, as in a prediction folder's overlays."""
    rgb = np.repeat(grey.astype(np.float32)[..., None], 3, axis=2)
    coloured = mask != BACKGROUND
    rgb[coloured] = (1 - alpha) * rgb[coloured] + alpha * _PALETTE[mask[coloured]]
    return np.round(rgb).astype(np.uint8)


def decode(data: bytes) -> np.ndarray:
    """A greyscale PNG as a (rows, columns) uint8/uint16 array; :class:`semcoat.pngio.PngError` if it is not one."""
    header, raw = pngio.decode_grey(data)
    dtype = ">u2" if header.bit_depth == 16 else np.uint8
    return np.frombuffer(raw, dtype=dtype).reshape(header.height, header.width).astype(
        np.uint16 if header.bit_depth == 16 else np.uint8)


def make_thumbnail(image_png: bytes, mask_png: bytes | None, kind: str, max_px: int = THUMBNAIL_MAX_PX) -> bytes:
    """PNG bytes of the thumbnail ``kind`` (``image``: grey; ``overlay``: classes over it, needs ``mask_png``)."""
    image = decode(image_png)
    factor = shrink_factor(image.shape[1], image.shape[0], max_px)
    grey = display_grey(shrink_grey(image, factor))
    if kind == "image":
        return pngio.encode_grey(grey.shape[1], grey.shape[0], 8, grey.tobytes())
    if mask_png is None:
        raise NoThumbnail("the sample has no mask")
    mask = decode(mask_png)
    if mask.shape != image.shape or mask.dtype != np.uint8:
        raise NoThumbnail(f"the mask ({mask.shape[1]}x{mask.shape[0]}) does not fit the image "
                          f"({image.shape[1]}x{image.shape[0]})")
    rgb = blend_classes(grey, shrink_mask(mask, factor))
    return pngio.encode_rgb(rgb.shape[1], rgb.shape[0], rgb.tobytes())


def _read(root: Path, relative: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a dataset file and its stat (opened as the files API opens it: no symlink, nothing outside)."""
    handle, _ = open_file(root, relative)
    with handle:
        return handle.read(), os.fstat(handle.fileno())


def thumbnail(dataset_dir: Path, cache_dir: Path, sample: str, kind: str,
              make: Callable[[bytes, bytes | None, str], bytes] = make_thumbnail) -> bytes:
    """The thumbnail ``kind`` of sample ``sample`` of the dataset folder, from ``cache_dir`` or made and stored there.

    Raises NoThumbnail for an unknown kind or sample id, a sample whose files are missing (or are symlinks), or
    pictures the PNG reader refuses.
    """
    if kind not in KINDS:
        raise NoThumbnail(f"no thumbnail kind {kind[:40]!r}; accepted: {', '.join(KINDS)}")
    if not SAMPLE_ID.fullmatch(sample):
        raise NoThumbnail(f"no sample {sample[:40]!r}: sample ids are 6 to 12 digits")
    image_png, image_stat = _read(dataset_dir, f"images/{sample}.png")
    mask_png, mask_stat = _read(dataset_dir, f"masks/{sample}.png") if kind == "overlay" else (None, image_stat)
    stamp = f"{image_stat.st_size}-{image_stat.st_mtime_ns}-{mask_stat.st_size}-{mask_stat.st_mtime_ns}"
    cached = cache_dir / f"{sample}.{kind}.{THUMBNAIL_MAX_PX}.{stamp}.png"
    if cached.is_file():
        return cached.read_bytes()
    with _making:
        if cached.is_file():  # made by another request while this one waited
            return cached.read_bytes()
        try:
            png = make(image_png, mask_png, kind)
        except pngio.PngError as exc:
            raise NoThumbnail(f"sample {sample} cannot be shown: {exc}") from exc
        cache_dir.mkdir(parents=True, exist_ok=True)
        for old in cache_dir.glob(f"{sample}.{kind}.*.png"):
            old.unlink(missing_ok=True)  # made from an earlier copy of the sample
        write_atomic(cached, png)
    return png
