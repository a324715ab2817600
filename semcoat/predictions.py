"""The prediction-folder contract: what ``semcoat predict`` writes and ``semcoat report`` (and the service) read.

Layout::

    OUT/images/<stem>.png     the micrograph as analysed (data bar cropped), 8-bit grey
    OUT/masks/<stem>.png      predicted class ids (semcoat.classes), 8-bit grey
    OUT/overlays/<stem>.png   the classes' colours (semcoat.classes) blended at OVERLAY_ALPHA over the micrograph,
                              8-bit RGB; background left uncoloured
    OUT/measurements.csv      one row per image, in the order given: the columns of
                              semcoat.measurements.TABLE_COLUMNS (image, pixel_size_um, every measurement)
    OUT/predictions.json      a list with one PredictionRecord object per image, in the same order

``<stem>`` is the micrograph's file name without its suffix; the stems of one run are distinct. An image that fails
does not stop the run: it gets an empty measurements row (its pixel size when known), ``failed: true`` and its error
in ``predictions.json``. One that cannot be read, has no pixel size or cannot be segmented gets no image, mask or
overlay (stale ones of an earlier run are removed); one whose predicted mask has nothing to measure keeps them, so
that one can see why. ``measurements.csv`` and ``predictions.json`` are removed when a run starts and written last,
each in one piece: a folder holding them holds a finished run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from semcoat.dataset import write_atomic
from semcoat.errors import SemcoatError

IMAGES_DIR = "images"
MASKS_DIR = "masks"
OVERLAYS_DIR = "overlays"
PICTURE_DIRS = (IMAGES_DIR, MASKS_DIR, OVERLAYS_DIR)
RESULTS_CSV = "measurements.csv"
PREDICTIONS_JSON = "predictions.json"
# Weight of a class's colour over the grey micrograph in the overlays.
OVERLAY_ALPHA = 0.45
# Where a record's pixel size came from: the caller's value, or the SEM metadata of the file.
PIXEL_SIZE_FROM_OPTION = "option"
PIXEL_SIZE_ORIGINS = (PIXEL_SIZE_FROM_OPTION, "thermo-fei", "zeiss")


class PredictionsError(SemcoatError):
    """A ``predictions.json`` that cannot be read (with the file and the reason)."""


def picture_path(folder: str | Path, subdir: str, stem: str) -> Path:
    """Path of image ``stem``'s PNG in ``subdir`` (one of :data:`PICTURE_DIRS`) of prediction folder ``folder``."""
    return Path(folder) / subdir / f"{stem}.png"


@dataclass(frozen=True)
class PredictionRecord:
    """What ``predictions.json`` says about one image.

    ``error`` says why an image ``failed``: not read, no pixel size or not segmented (no pictures written), or a
    predicted mask with no measurable coating (pictures written, measurements empty). ``model`` is the model given
    (a path or ``classical``). ``pixel_size_um`` is the one the measurements use (µm per pixel), ``pixel_size_from``
    its origin (:data:`PIXEL_SIZE_ORIGINS`), ``metadata_pixel_size_um`` the file's own (None without SEM metadata);
    pixel sizes are rounded to 6 significant digits. ``databar_top_row`` is the first row of the cropped data bar in
    the source file (None without one). ``rows`` and ``columns`` are the analysed image's size in pixels (data bar
    cropped); they, and the pixel size, are None when the image failed before they were known. ``warnings``: e.g. a
    given pixel size that differs from the file's metadata.
    """

    image: str
    source: str
    model: str
    pixel_size_um: float | None
    pixel_size_from: str | None
    metadata_pixel_size_um: float | None
    databar_top_row: int | None
    rows: int | None
    columns: int | None
    error: str | None
    failed: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict, keys in field order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PredictionRecord:
        """A record from its JSON object; keys that records of earlier versions lack read as None (``failed``:
        False, ``warnings``: none), unknown keys are ignored. KeyError when ``image`` is missing."""
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in values.items() if k in known}
        defaults: dict[str, Any] = dict.fromkeys(known, None) | {"failed": False, "warnings": []}
        return cls(**(defaults | given | {"image": values["image"]}))


def predictions_text(records: Iterable[PredictionRecord]) -> str:
    """The text of ``predictions.json``: a JSON list of the records, indented by 2."""
    return json.dumps([r.to_dict() for r in records], indent=2)


def write_predictions(folder: str | Path, records: Iterable[PredictionRecord]) -> Path:
    """Write ``folder/predictions.json`` in one piece (a temporary sibling renamed into place); return its path."""
    path = Path(folder) / PREDICTIONS_JSON
    write_atomic(path, predictions_text(records).encode("utf-8"))
    return path


def read_predictions(folder: str | Path) -> dict[str, PredictionRecord]:
    """The records of ``folder/predictions.json`` by image stem; empty when the folder has none (a bare table).

    Raises
    ------
    PredictionsError
        When the file is not a JSON list of objects that each name their ``image``.
    """
    path = Path(folder) / PREDICTIONS_JSON
    if not path.is_file():
        return {}
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(items, list):
            raise TypeError(f"a JSON list of records is expected, not {type(items).__name__}")
        records = [PredictionRecord.from_dict(item) for item in items]
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, AttributeError) as exc:
        raise PredictionsError(f"{path}: not a predictions file of `semcoat predict` ({exc})") from exc
    return {r.image: r for r in records}
