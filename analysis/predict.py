"""Prediction on real micrographs: read, crop the data bar, segment tile by tile, measure, write the results.

The output folder is a prediction folder: its layout, what ``predictions.json`` holds and what a failed image leaves
behind are the contract of :mod:`semcoat.predictions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis import databar_crop, files, sem_tiff, tiling
from analysis.frame_columns import frame_columns
from analysis.layer_islands import remove_layer_islands
from analysis.measure import (
    FRAME_MIN_COLUMN_SHARE,
    MaskError,
    Measurements,
    check_layered,
    check_pixel_size_um,
    measure,
)
from analysis.model import SegmentationModel, WholeImageModel, load_model
from semcoat.classes import BACKGROUND, CLASSES
from semcoat.errors import InvalidArgument, SemcoatError
from semcoat.measurements import measurement
from semcoat.predictions import (
    IMAGES_DIR,
    MASKS_DIR,
    OVERLAY_ALPHA,
    OVERLAYS_DIR,
    PICTURE_DIRS,
    PIXEL_SIZE_FROM_OPTION,
    PREDICTIONS_JSON,
    RESULTS_CSV,
    PredictionRecord,
    picture_path,
    write_predictions,
)

# A given pixel size differing from a file's metadata by more than this share of the metadata's value is warned about.
PIXEL_SIZE_MISMATCH = 0.01
# A mask with at least this share of its pixels relabelled as layer islands is warned about (the held-out renders'
# masks: 0.01-0.1 % where the model read well, 20-24 % where it read deep steel as Fe2Al5).
ISLANDS_WARN_SHARE = 0.01
# Smaller tiles leave a U-Net's deepest level with no context.
MIN_TILE_PX = 32


class PixelSizeError(SemcoatError):
    """No pixel size is known for an image: its metadata has none and none was given."""


@dataclass(frozen=True)
class ImageInput:
    """A micrograph ready for segmentation: grey pixels (data bar cropped) and what is known about it.

    Attributes
    ----------
    path : the source file.
    image : grey pixels, (rows, columns), original dtype, data bar cropped.
    pixel_size_um : µm per pixel.
    pixel_size_from : where the pixel size came from (:data:`semcoat.predictions.PIXEL_SIZE_ORIGINS`).
    databar_top_row : first row of the cropped data bar in the source file, None when there was none.
    metadata_pixel_size_um : µm per pixel according to the file's SEM metadata, None when it has none.
    warnings : what was ignored on the way (e.g. a metadata pixel size that is not a scale, overridden).
    """

    path: Path
    image: np.ndarray
    pixel_size_um: float
    pixel_size_from: str
    databar_top_row: int | None
    metadata_pixel_size_um: float | None = None
    warnings: tuple[str, ...] = ()


def load_input(path: str | Path, pixel_size_um: float | None = None, crop: bool = True) -> ImageInput:
    """Read a micrograph, find its pixel size and crop its data bar.

    Parameters
    ----------
    path : str or Path
        TIFF (8 or 16 bit), PNG or JPEG.
    pixel_size_um : float, optional
        µm per pixel; overrides the file's metadata when given.
    crop : bool
        Remove the instrument's data bar: from the row the Thermo/FEI metadata gives (``ResolutionY``), else where
        :func:`analysis.databar_crop.find_databar_top` finds it. False disables both: the whole image is kept.

    Raises
    ------
    PixelSizeError
        When neither ``pixel_size_um`` nor the file's SEM metadata gives a pixel size.
    files.ImageReadError, sem_tiff.SemMetadataError
        For unreadable files and metadata; a metadata pixel size that is not a scale (outside 1e-5 to 100 µm) too,
        unless ``pixel_size_um`` is given (then it becomes a warning).
    databar_crop.DatabarError
        When ``crop`` and the metadata's scan height would keep less than half of the rows.
    """
    path = Path(path)
    image = files.read_grey_image(path)
    warnings: tuple[str, ...] = ()
    try:
        meta = _metadata(path)
    except sem_tiff.SemPixelSizeError as exc:
        if pixel_size_um is None:
            raise
        meta, warnings = exc.metadata, (f"{exc}; ignored: the given {float(pixel_size_um):.6g} µm/px is used",)
    size, source = _pixel_size(path, meta, pixel_size_um)
    top = None
    if crop:
        try:
            image, top = databar_crop.crop_databar(image, meta.scan_height_px)
        except databar_crop.DatabarError as exc:
            raise databar_crop.DatabarError(f"{path}: {exc}") from exc
    return ImageInput(path, image, size, source, top, meta.pixel_size_um, warnings)


def _metadata(path: Path) -> sem_tiff.SemMetadata:
    if path.suffix.lower() in (".tif", ".tiff"):
        return sem_tiff.read_sem_metadata(path)
    return sem_tiff.NO_METADATA


def _pixel_size(path: Path, meta: sem_tiff.SemMetadata, pixel_size_um: float | None) -> tuple[float, str]:
    """µm per pixel and where it comes from: the given value wins over the file's metadata."""
    if pixel_size_um is not None:
        return float(pixel_size_um), PIXEL_SIZE_FROM_OPTION
    if meta.pixel_size_um is not None:
        return meta.pixel_size_um, meta.instrument
    raise PixelSizeError(
        f"{path}: no pixel size: the file has no Thermo/FEI or Zeiss SEM metadata, and none was given",
        argument="pixel_size_um",
    )


def pixel_size_warning(path: str | Path, pixel_size_um: float | None, metadata_um: float | None) -> str | None:
    """A warning when ``pixel_size_um`` (given, µm) differs from the file's metadata by more than 1 %, else None."""
    if pixel_size_um is None or metadata_um is None:
        return None
    relative = pixel_size_um / metadata_um - 1.0
    if abs(relative) <= PIXEL_SIZE_MISMATCH:
        return None
    return (
        f"{path}: the pixel size given, {pixel_size_um:.6g} µm/px, differs from the file's SEM metadata, "
        f"{metadata_um:.6g} µm/px ({relative:+.1%}); the given one wins: the measurements use {pixel_size_um:.6g} µm/px"
    )


def _known_pixel_size(path: Path, pixel_size_um: float | None) -> tuple[float | None, str | None, float | None]:
    """Best effort for a failed image: (pixel size, its origin, the metadata's); None where unknown, never raises."""
    try:
        meta = _metadata(path)
    except SemcoatError:
        meta = sem_tiff.NO_METADATA
    if pixel_size_um is not None:
        return pixel_size_um, PIXEL_SIZE_FROM_OPTION, meta.pixel_size_um
    if meta.pixel_size_um is not None:
        return meta.pixel_size_um, meta.instrument, meta.pixel_size_um
    return None, None, None


def _round6(value: float | None) -> float | None:
    """A pixel size for the record: 6 significant digits (0.16999999999999998 -> 0.17)."""
    return None if value is None else float(f"{value:.6g}")


def class_probabilities(
    model: SegmentationModel, image: np.ndarray, tile_px: int = 512, overlap_px: int = 64, flip_average: bool = False
) -> np.ndarray:
    """Class probabilities (classes, rows, columns; float32) of a grey micrograph, predicted tile by tile
    (:func:`analysis.tiling.predict_probabilities`).

    With ``flip_average`` they are the mean of the image's and its left-right mirror's (mirrored back): test-time
    augmentation by the one mirror the physics allows (the surface stays up; the training flips the same way), which
    takes some of the network's noise off edges and small features at twice the inference time (as nnU-Net's mirroring).
    """
    # An ONNX model with a fixed input size gets tiles of exactly that size (its fixed batch size it handles itself).
    tile_shape = getattr(model, "input_size", None)
    if tile_shape is not None:
        overlap_px = min(overlap_px, min(tile_shape) // 4)
    unit = files.to_unit_float(image)

    def probabilities(pixels: np.ndarray) -> np.ndarray:
        return tiling.predict_probabilities(model, pixels, model.n_classes, tile_px, overlap_px, tile_shape=tile_shape)

    probs = probabilities(unit)
    if flip_average:
        mirrored = probabilities(np.ascontiguousarray(unit[:, ::-1]))[:, :, ::-1]
        probs = ((probs + mirrored) * np.float32(0.5)).astype(np.float32, copy=False)
    return probs


def segment_micrograph(
    model: SegmentationModel,
    image: np.ndarray,
    tile_px: int = 512,
    overlap_px: int = 64,
    relabel_islands: bool = True,
    flip_average: bool = False,
) -> tuple[np.ndarray, int]:
    """The class-id mask of :func:`predict_mask`, and how many of its pixels were relabelled as layer islands (0
    without relabelling, and for a WholeImageModel)."""
    if isinstance(model, WholeImageModel):
        return model.segment(files.to_unit_float(image)), 0
    probs = class_probabilities(model, image, tile_px, overlap_px, flip_average)
    likeliest = probs.argmax(axis=0).astype(np.uint8)
    if not relabel_islands:
        return likeliest, 0
    mask = remove_layer_islands(probs)
    return mask, int(np.count_nonzero(mask != likeliest))


def predict_mask(
    model: SegmentationModel,
    image: np.ndarray,
    tile_px: int = 512,
    overlap_px: int = 64,
    relabel_islands: bool = True,
    flip_average: bool = False,
) -> np.ndarray:
    """Class-id mask (uint8, same shape) of a grey micrograph, predicted tile by tile (whole for a WholeImageModel).

    With ``relabel_islands`` a model's patches of steel or coating cut off from their layer take the likeliest class
    that fits there (:func:`analysis.layer_islands.remove_layer_islands`); else each pixel takes its likeliest class.
    ``flip_average``: see :func:`class_probabilities`. A WholeImageModel (the classical baseline) reasons about the
    layers itself and gives no probabilities: its mask is kept as it is either way.
    """
    return segment_micrograph(model, image, tile_px, overlap_px, relabel_islands, flip_average)[0]


def islands_warning(relabelled_px: int, mask: np.ndarray) -> str | None:
    """A warning for a mask of which at least :data:`ISLANDS_WARN_SHARE` was relabelled as layer islands: the model
    misread a large patch (or the frame is unusual), and the user should look at the overlay."""
    share = relabelled_px / max(mask.size, 1)
    if share < ISLANDS_WARN_SHARE:
        return None
    return (
        f"the model read {relabelled_px} px ({share:.1%} of the frame) as steel or coating cut off from its layer; "
        "they were given the likeliest class that fits there (check the overlay; --keep-islands keeps the model's "
        "reading)"
    )


def to_display_uint8(image: np.ndarray) -> np.ndarray:
    """A grey image as uint8 for display (integers by their dtype's range, floats from [0, 1])."""
    return np.round(files.to_unit_float(image) * 255.0).astype(np.uint8)


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """RGB uint8 picture of the classes (colours of :mod:`semcoat.classes`) blended over a grey image.

    Background is left uncoloured; ``alpha`` is the colour's weight elsewhere.
    """
    grey = to_display_uint8(image).astype(np.float32)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    palette = np.array([c.color_rgb for c in sorted(CLASSES, key=lambda c: c.id)], np.float32)
    coloured = mask != BACKGROUND
    rgb[coloured] = (1 - alpha) * rgb[coloured] + alpha * palette[mask[coloured]]
    return np.round(rgb).astype(np.uint8)


def frame_note(path: str | Path, mask: np.ndarray, result: Measurements) -> str | None:
    """Why measurements of an image are empty because its frame cuts the coating, or None when it does not.

    A close-up (the surface above the top edge, or the Fe2Al5 band running off the bottom edge) has no thickness, and
    what needs the edge it does not show (the pore line's depth needs the surface, FeAl the band's bottom) is None:
    the note names the edges missing and the measurements left empty. A whole frame whose FeAl runs off the bottom
    edge gets a note for its FeAl thickness.

    Parameters
    ----------
    path : the image, named in the note.
    mask : its predicted class ids (the mask ``result`` was measured on).
    result : its measurements (:func:`analysis.measure.measure`).
    """
    values = result.as_dict()
    empty = [measurement(name).title for name, value in values.items() if value is None]
    if result.fe2al5_thickness_um is not None:
        if result.feal_present and result.feal_thickness_um is None:
            return f"{path}: FeAl runs off the bottom edge in most columns: its thickness is not measured (left empty)"
        return None
    cols = frame_columns(mask)
    n_banded = max(1, int(np.count_nonzero(cols.banded)))
    missing = []
    if np.count_nonzero(cols.surface_seen) < FRAME_MIN_COLUMN_SHARE * n_banded:
        missing.append("the surface lies above the top edge")
    if np.count_nonzero(cols.bottom_seen) < FRAME_MIN_COLUMN_SHARE * n_banded:
        missing.append("the Fe2Al5 band runs off the bottom edge (no FeAl or substrate below it in the frame)")
    if not missing:
        missing.append("fewer than half of the columns show both the surface and the band's bottom")
    return (
        f"{path}: the frame cuts the coating ({'; '.join(missing)}): {', '.join(empty)} not measured (left empty); "
        "the fractions are of the band the frame shows"
    )


def _named(path: Path, exc: Exception) -> str:
    """The error's message, prefixed with the file when it does not name it already."""
    message = str(exc) or type(exc).__name__
    return message if str(path) in message else f"{path}: {message}"


def check_options(pixel_size_um: float | None, tile_px: int, overlap_px: int) -> None:
    """Refuse prediction options that cannot work, before anything is read or written.

    Raises
    ------
    InvalidArgument
        About the argument (``pixel_size_um``, ``tile_px``, ``overlap_px``), with its value and what is accepted.
    """
    if pixel_size_um is not None:
        check_pixel_size_um(pixel_size_um)
    if tile_px < MIN_TILE_PX:
        raise InvalidArgument(f"the tile edge must be at least {MIN_TILE_PX} pixels; got {tile_px}", argument="tile_px")
    if not 0 <= overlap_px < tile_px:
        raise InvalidArgument(
            f"the tile overlap must be at least 0 and less than the tile edge ({tile_px} px); got {overlap_px}",
            argument="overlap_px",
        )


def _write_outputs(out: Path, stem: str, item: ImageInput, mask: np.ndarray) -> None:
    for folder, array in (
        (IMAGES_DIR, to_display_uint8(item.image)),
        (MASKS_DIR, mask),
        (OVERLAYS_DIR, overlay(item.image, mask)),
    ):
        path = picture_path(out, folder, stem)
        try:
            files.write_png(path, array)
        except OSError as exc:
            raise files.OutputPathError(f"{path}: cannot write the output ({exc.strerror or exc})") from exc


def _remove_outputs(out: Path, stem: str) -> None:
    """Remove an image's outputs of an earlier run, so that a failed image leaves nothing that looks current."""
    for folder in PICTURE_DIRS:
        picture_path(out, folder, stem).unlink(missing_ok=True)


def predict_files(
    model_path: str | Path,
    image_paths: Sequence[str | Path],
    out_dir: str | Path,
    pixel_size_um: float | None = None,
    crop: bool = True,
    tile_px: int = 512,
    overlap_px: int = 64,
    on_image: Callable[[PredictionRecord, SemcoatError | None], None] | None = None,
    relabel_islands: bool = True,
    flip_average: bool = False,
) -> list[PredictionRecord]:
    """Segment and measure micrographs; write images, masks, overlays, ``measurements.csv`` and ``predictions.json``.

    Options and the output folder are checked before the model is loaded and before anything is written, so those
    mistakes fail fast and leave nothing behind; images are then read, segmented and measured one at a time.
    An image that fails (unreadable, no pixel size, not segmented, or a predicted mask with nothing to measure) is
    recorded as failed (see the module docstring) and the batch goes on; callers check ``record.failed``.
    ``on_image`` is called after each image with its record and, for a failed image, the error (whose ``argument``
    may name what the caller could give, e.g. ``pixel_size_um``).
    ``relabel_islands`` and ``flip_average``: see :func:`predict_mask`.
    ``pixel_size_um`` overrides every file's metadata; where it differs from it by more than 1 % the record holds a
    warning naming both values.

    Raises
    ------
    InvalidArgument
        For bad options (pixel size, tile and overlap) and repeated file stems.
    files.OutputPathError
        When the output folder cannot be created or written, or would be written over the inputs (it is, holds or
        lies inside the dataset or folder they come from: see :func:`files.check_output_apart`).
    ModelLoadError
        When the model cannot be loaded.
    """
    check_options(pixel_size_um, tile_px, overlap_px)
    out = Path(out_dir)
    paths = [Path(p) for p in image_paths]
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        raise InvalidArgument(
            f"images must have distinct file stems (outputs are named after them); got {stems}", argument="image_paths"
        )
    files.check_output_dir(out)
    files.check_output_apart(out, paths, output_is_folder=True)
    model = load_model(model_path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in (RESULTS_CSV, PREDICTIONS_JSON):  # a stale summary must not pass for this run's
            (out / name).unlink(missing_ok=True)
    except OSError as exc:
        raise files.OutputPathError(f"{out}: cannot create or write the output folder ({exc.strerror or exc})") from exc
    records: list[PredictionRecord] = []
    rows: list[files.ResultRow] = []
    for path in paths:
        stem = path.stem
        try:
            item = load_input(path, pixel_size_um, crop)
            mask, relabelled_px = segment_micrograph(
                model, item.image, tile_px, overlap_px, relabel_islands, flip_average
            )
        # Unreadable image or metadata, no pixel size, a model that fails on it: this image fails alone. Anything
        # else is a bug and stops the run.
        except SemcoatError as exc:
            _remove_outputs(out, stem)
            size, source, meta_size = _known_pixel_size(path, pixel_size_um)
            warning = pixel_size_warning(path, pixel_size_um, meta_size)
            record = PredictionRecord(
                stem, str(path), str(model_path), _round6(size), source, _round6(meta_size), None, None, None,
                _named(path, exc), True, [warning] if warning else [], relabel_islands, flip_average,
            )  # fmt: skip
            rows.append((stem, record.pixel_size_um, None))
            failure: SemcoatError | None = exc
        else:
            _write_outputs(out, stem, item, mask)
            result: Measurements | None = None
            error, failure, note = None, None, None
            try:
                measured = measure(mask, item.pixel_size_um, source=str(item.path))
                check_layered(mask, source=str(item.path))  # numbers from noise or a photo are no measurements
            except MaskError as exc:
                error, failure = _named(path, exc), exc
            else:
                result, note = measured, frame_note(path, mask, measured)  # why a close-up's values are empty
            warnings = [pixel_size_warning(path, pixel_size_um, item.metadata_pixel_size_um),
                        islands_warning(relabelled_px, mask), note]  # fmt: skip
            record = PredictionRecord(
                stem, str(item.path), str(model_path), _round6(item.pixel_size_um), item.pixel_size_from,
                _round6(item.metadata_pixel_size_um), item.databar_top_row, int(mask.shape[0]), int(mask.shape[1]),
                error, error is not None, [*item.warnings, *(w for w in warnings if w)], relabel_islands, flip_average,
            )  # fmt: skip
            rows.append((stem, record.pixel_size_um, result))
        records.append(record)
        if on_image is not None:
            on_image(record, failure)
    try:
        files.write_results_csv(out / RESULTS_CSV, rows)
        write_predictions(out, records)
    except OSError as exc:
        raise files.OutputPathError(f"{out}: cannot write the summary files ({exc.strerror or exc})") from exc
    return records
