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
import math
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
    given pixel size that differs from the file's metadata. ``relabel_islands`` and ``flip_average`` are the options
    the mask was predicted with (``semcoat predict --keep-islands`` / ``--flip-average``); None in records of versions
    before they were recorded.
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
    relabel_islands: bool | None = None
    flip_average: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict, keys in field order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PredictionRecord:
        """A record from its JSON object; keys that records of earlier versions lack read as None (``failed``:
        False, ``warnings``: none), unknown keys are ignored.

        Raises
        ------
        PredictionsError
            Naming the field, when ``values`` is not an object, lacks ``image`` or holds a value of the wrong type
            (a string where a number belongs, a negative or non-finite pixel size, ...). The caller adds the file.
        """
        if not isinstance(values, dict):
            raise PredictionsError(f"a record must be a JSON object, not {type(values).__name__}")
        if "image" not in values:
            raise PredictionsError("a record lacks its 'image' (the file stem)")
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in values.items() if k in known}
        defaults: dict[str, Any] = dict.fromkeys(known, None) | {"failed": False, "warnings": []}
        merged = defaults | given
        for name, value in merged.items():
            problem = _FIELD_CHECKS[name](value)
            if problem:
                raise PredictionsError(f"{name} must be {problem}; got {_shown(value)}")
        return cls(**merged)


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "a string"


def _optional_text(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "a string or null"


def _optional_size(value: Any) -> str | None:
    ok = value is None or (_is_number(value) and value > 0)
    return None if ok else "a positive finite number of µm per pixel, or null"


def _optional_count(value: Any) -> str | None:
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    return None if ok else "a whole number of at least 0, or null"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _optional_flag(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else "true, false or null"


def _warnings(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(w, str) for w in value)
    return None if ok else "a list of strings"


_FIELD_CHECKS = {
    "image": _text, "source": _optional_text, "model": _optional_text, "pixel_size_um": _optional_size,
    "pixel_size_from": _optional_text, "metadata_pixel_size_um": _optional_size, "databar_top_row": _optional_count,
    "rows": _optional_count, "columns": _optional_count, "error": _optional_text, "failed": _flag,
    "warnings": _warnings, "relabel_islands": _optional_flag, "flip_average": _optional_flag,
}  # fmt: skip


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
        Naming the file (and the record and field) when it is not UTF-8 JSON (NaN and Infinity included), is nested
        too deeply, or is not a list of records as :meth:`PredictionRecord.from_dict` reads them, each image once.
    """
    path = Path(folder) / PREDICTIONS_JSON
    if not path.is_file():
        return {}

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        items = json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constant)
    except RecursionError as exc:
        raise PredictionsError(f"{path}: not a predictions file of `semcoat predict`: nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        raise PredictionsError(f"{path}: not a predictions file of `semcoat predict` ({str(exc):.200})") from exc
    except OSError as exc:
        raise PredictionsError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not isinstance(items, list):
        raise PredictionsError(
            f"{path}: not a predictions file of `semcoat predict`: a JSON list of records is expected, not "
            f"{type(items).__name__}"
        )
    records: dict[str, PredictionRecord] = {}
    for index, item in enumerate(items):
        where = f"record {index}" + (f" (image {_shown(item['image'])})" if isinstance(item, dict) and "image" in item
                                     else "")  # fmt: skip
        try:
            record = PredictionRecord.from_dict(item)
        except PredictionsError as exc:
            raise PredictionsError(f"{path}: {where}: {exc}") from exc
        if record.image in records:
            raise PredictionsError(f"{path}: {where}: image {record.image!r} appears twice; each image has one record")
        records[record.image] = record
    return records
