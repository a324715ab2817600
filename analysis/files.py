"""Reading masks and micrographs, writing PNGs and measurement tables.

Masks are single-channel PNG/TIFF files of class ids. Micrographs may be TIFF (8 or 16 bit), PNG or JPEG; colour
files are reduced to grey.
"""

from __future__ import annotations

import csv
import math
import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from analysis.measure import MaskError, Measurements, measure, validate_mask
from semcoat import pngio
from semcoat.dataset import write_atomic
from semcoat.errors import SemcoatError
from semcoat.measurements import MEASUREMENT_NAMES, PIXEL_SIZE_COLUMN, TABLE_COLUMNS, CellError, format_cell, parse_cell

MASK_SUFFIXES = (".png", ".tif", ".tiff")
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
# One row of a measurements table: image (file stem), µm per pixel (None when unknown), measurements (None: empty).
ResultRow = tuple[str, float | None, Measurements | None]


class ImageReadError(SemcoatError):
    """A micrograph that cannot be read or is not an image (with the file and the reason)."""


class OutputPathError(SemcoatError):
    """An output path that cannot be written (with the path, the reason and what is expected)."""


class MissingInputError(SemcoatError):
    """An input file or folder that does not exist, or a folder with nothing to read in it."""


class ResultsTableError(SemcoatError):
    """A measurements table that cannot be read (with the file, the line and the reason)."""


def _existing_ancestor(path: Path) -> Path:
    parent = path.absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _check_creatable(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable folder (nothing is created)."""
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise OutputPathError(f"{path}: cannot create the {what}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"{path}: cannot create the {what}: no permission to write in {ancestor}")


def check_output_file(path: str | Path) -> None:
    """Refuse an output file path that cannot be written, before any work: a folder, or an unwritable location.

    Raises
    ------
    OutputPathError
        Naming the path and why it cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: is a folder; give a file path for the output (e.g. {path / 'results.csv'})")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{path}: the file exists and is not writable")
    if not path.exists():
        _check_creatable(path, "output file")


def check_output_dir(path: str | Path) -> None:
    """Refuse an output folder that cannot be created or written, before any work (nothing is created).

    Raises
    ------
    OutputPathError
        Naming the path and why it cannot be used.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path}: is a file; the output must be a folder (existing or new)")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(f"{path}: no permission to write in this folder")
    if not path.exists():
        _check_creatable(path, "output folder")


def _real(path: Path) -> Path:
    """The path with every symlink of its existing part resolved (``os.path.realpath``; the path need not exist)."""
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _dataset_holding(path: Path) -> Path | None:
    """The dataset folder (one holding ``dataset.json``) that a file of ``images/``, ``masks/`` or ``meta/`` lies in."""
    from semcoat.dataset import DATASET_FILE

    folder = path.parent.parent
    return folder if (folder / DATASET_FILE).is_file() else None


def check_output_apart(out: str | Path, inputs: Iterable[str | Path], output_is_folder: bool) -> None:
    """Refuse an output that would be written over the inputs, before any work (real paths: symlinks resolved).

    Refused: an output that is an input file; an output folder that holds an input file or folder (its own files
    would replace them); an output that is, or lies inside, a folder given as an input or the dataset folder an
    input file comes from (a dataset's layout is a contract its checker verifies). An output inside the plain
    folder that merely holds input files (``predict *.tif --out pred/``) overwrites nothing and is accepted.

    Raises
    ------
    OutputPathError
        Naming the output and the input it would be written over.
    """
    from semcoat.dataset import DATASET_FILE

    given = Path(out)
    target = _real(given)
    what = "output folder" if output_is_folder else "output file"
    for item in map(Path, inputs):
        real = _real(item)
        if real.is_dir():
            folders = [real]
        else:
            if target == real:
                raise OutputPathError(
                    f"{given}: the {what} is the input {item}; choose an output elsewhere, the "
                    "inputs are never overwritten"
                )
            if output_is_folder and target in real.parents:
                raise OutputPathError(
                    f"{given}: the {what} holds the input {item} and its files could replace it; "
                    "choose a folder outside the inputs"
                )
            dataset = _dataset_holding(real)
            folders = [dataset] if dataset is not None else []
        for folder in folders:
            if output_is_folder and folder != target and target in folder.parents:
                raise OutputPathError(
                    f"{given}: the {what} holds the input folder {folder} and its files could "
                    "replace the inputs; choose a folder outside the inputs"
                )
            if _inside(target, folder):
                kind = "dataset folder" if (folder / DATASET_FILE).is_file() else "input folder"
                where = "is" if target == folder else "lies inside"
                raise OutputPathError(
                    f"{given}: the {what} {where} the {kind} {folder} (input {item}); choose an "
                    "output outside the inputs, they are never written to"
                )


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a UTF-8 text file through a uniquely named temporary sibling renamed into place (the dataset contract's
    writer): a failure never leaves a partial file, and concurrent writers never share a temporary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"))


@dataclass(frozen=True)
class MaskSource:
    """A mask file to measure and the pixel size that applies to it (None: take it from the command line)."""

    path: Path
    pixel_size_um: float | None


# The largest image read (rows x columns): the core's PNG limit, 8192 x 8192, twice the side of the largest common
# SEM frame. Checked from the file's header before any pixel is decoded: a small file can declare gigabytes.
MAX_IMAGE_PIXELS = pngio.MAX_PIXELS
# The most bytes a decoded TIFF may take (8192 x 8192 at 4 bytes a pixel: 16-bit grey and alpha, 8-bit RGBA, float).
MAX_DECODED_BYTES = 4 * MAX_IMAGE_PIXELS
# What decoders raise on a damaged or hostile file (besides OSError): the file's fault, never the caller's. The code
# guarded by it only decodes.
_DECODER_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, EOFError, SyntaxError, OverflowError,
    ZeroDivisionError, RecursionError, struct.error, zlib.error,
    NotImplementedError,  # a codec the decoder lacks (tifffile: packed 14-bit samples need imagecodecs)
)  # fmt: skip


def check_image_size(path: str | Path, columns: int, rows: int) -> None:
    """Refuse an image size (as its header declares it) that is empty or over :data:`MAX_IMAGE_PIXELS`.

    Raises
    ------
    ImageReadError
        Naming the file, its declared size and the accepted maximum.
    """
    if columns <= 0 or rows <= 0:
        raise ImageReadError(f"{path}: the image is empty ({columns} x {rows} px)")
    if columns * rows > MAX_IMAGE_PIXELS:
        raise ImageReadError(
            f"{path}: the file declares a {columns} x {rows} px image, over the {MAX_IMAGE_PIXELS:,} px this reader "
            "takes (8192 x 8192); it was not decoded"
        )


def _pil_open(path: Path, formats: tuple[str, ...]) -> Any:
    """A lazily opened Pillow image (header read, pixels not yet), its declared size checked."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 M pixels and refuses from 179 M; the check below refuses from 67 M (8192 x 8192).
            # Its notes on damaged tags are left out too: the decoder's error says what matters, naming the file.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path, formats=formats)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            f"{path}: the file declares an image over the {MAX_IMAGE_PIXELS:,} px this reader takes (8192 x 8192): "
            f"{exc}; it was not decoded"
        ) from exc
    try:
        check_image_size(path, *im.size)
    except ImageReadError:
        im.close()
        raise
    return im


def read_mask(path: str | Path) -> np.ndarray:
    """Read a class-id mask (single-channel PNG or TIFF; palette PNGs give their indices).

    The declared size is checked before decoding (at most :data:`MAX_IMAGE_PIXELS`).

    Raises
    ------
    MaskError
        Naming the file, when it cannot be read, is too big, has colour channels or holds unknown class ids.
    """
    import warnings

    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on damaged tags; the error below says it
            with _pil_open(Path(path), ("PNG", "TIFF")) as im:
                if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                    raise MaskError(
                        f"mask must be a single-channel image of class ids; got PIL mode {im.mode}", str(path)
                    )
                mask = np.asarray(im)
    except ImageReadError as exc:
        raise MaskError(str(exc).removeprefix(f"{path}: "), str(path)) from exc
    except UnidentifiedImageError as exc:
        raise MaskError("cannot read mask: not a PNG or TIFF image", str(path)) from exc
    except _DECODER_ERRORS as exc:
        raise MaskError(f"cannot read mask ({_reason(exc)})", str(path)) from exc
    return validate_mask(mask, str(path))


def _reason(exc: BaseException) -> str:
    """A decoder's complaint, short: its text (capped) or its kind."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def measure_file(path: str | Path, pixel_size_um: float) -> Measurements:
    """Read and measure one mask file; errors name the file."""
    return measure(read_mask(path), pixel_size_um, source=str(path))


def dataset_pixel_size(ds: Any) -> float:
    """The pixel size of an open dataset (:class:`semcoat.dataset.Dataset`), when it is one the analysis accepts.

    Raises
    ------
    semcoat.dataset.DatasetError
        Naming the dataset's ``dataset.json``, the value and the accepted range (1e-5 to 100 µm).
    """
    from analysis.measure import check_pixel_size_um
    from semcoat.dataset import DATASET_FILE, DatasetError

    try:
        return check_pixel_size_um(ds.info.pixel_size_um)
    except SemcoatError as exc:
        raise DatasetError(f"{Path(ds.root) / DATASET_FILE}: pixel_size_um: {exc}") from exc


def resolve_masks(inputs: Sequence[str | Path], check_pixel_size: bool = True) -> list[MaskSource]:
    """Expand mask files and folders into the masks to measure.

    A dataset folder (with ``dataset.json``) contributes its complete samples' masks with the dataset's pixel size
    (checked unless ``check_pixel_size`` is False: a caller with a pixel size of its own); a folder with a ``masks/``
    subfolder contributes that; any other folder its mask files; a file itself.

    Raises
    ------
    MissingInputError
        When an input does not exist or a folder holds no mask.
    semcoat.dataset.DatasetError
        For a dataset folder that cannot be read, or whose pixel size the analysis does not accept.
    """
    from semcoat.dataset import DATASET_FILE, read_dataset

    out: list[MaskSource] = []
    for item in map(Path, inputs):
        if item.is_file():
            out.append(MaskSource(item, None))
        elif (item / DATASET_FILE).is_file():
            ds = read_dataset(item)
            size = dataset_pixel_size(ds) if check_pixel_size else ds.info.pixel_size_um
            out.extend(MaskSource(ds.mask_path(sid), size) for sid in ds.ids)
        elif item.is_dir():
            folder = item / "masks" if (item / "masks").is_dir() else item
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MASK_SUFFIXES)
            if not files:
                raise MissingInputError(f"{item}: no mask files ({', '.join(MASK_SUFFIXES)}) in {folder}")
            out.extend(MaskSource(p, None) for p in files)
        else:
            raise MissingInputError(f"{item}: no such mask file or folder")
    return out


def read_grey_image(path: str | Path) -> np.ndarray:
    """Read a micrograph as a 2-D array, keeping its integer depth (uint8 or uint16); colour becomes grey.

    TIFFs are read with tifffile (first page), PNG and JPEG with OpenCV. The size the file declares is checked
    before any pixel is decoded: at most :data:`MAX_IMAGE_PIXELS` pixels (and :data:`MAX_DECODED_BYTES` for a TIFF).

    Raises
    ------
    ImageReadError
        Naming the file, when it cannot be decoded, is too big, is empty or its layout is not an image.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            image = _read_tiff(path)
        else:
            image = _read_png_or_jpeg(path)
    except ImageReadError:
        raise
    # tifffile's TiffFileError is a ValueError; a decoder's complaint about the file is the file's fault.
    except _DECODER_ERRORS as exc:
        raise ImageReadError(f"{path}: cannot read the image ({_reason(exc)})") from exc
    return to_grey(np.asarray(image), str(path))


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.pages:
            raise ImageReadError(f"{path}: the TIFF holds no image")
        page = tif.pages.first
        shape = tuple(int(n) for n in page.shape)
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] > 4):
            raise ImageReadError(f"{path}: expected a grey or RGB image; the TIFF's first page has shape {shape}")
        check_image_size(path, shape[1], shape[0])
        size = int(np.prod(shape)) * np.dtype(page.dtype).itemsize
        if size > MAX_DECODED_BYTES:
            raise ImageReadError(
                f"{path}: the TIFF's {shape[1]} x {shape[0]} px of {page.dtype} x {shape[2] if len(shape) == 3 else 1} "
                f"would take {size / 2**20:.0f} MiB decoded, over the {MAX_DECODED_BYTES // 2**20} MiB this reader "
                "takes; it was not decoded"
            )
        return np.asarray(page.asarray())


def _read_png_or_jpeg(path: Path) -> np.ndarray:
    import cv2
    from PIL import UnidentifiedImageError

    try:
        _pil_open(path, ("PNG", "JPEG")).close()  # the declared size, before OpenCV decodes anything
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{path}: not a PNG or JPEG image (supported: {', '.join(IMAGE_SUFFIXES)})") from exc
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError(f"{path}: cannot decode the image (supported: {', '.join(IMAGE_SUFFIXES)})")
    if image.ndim == 3:
        image = image[..., 2::-1] if image.shape[2] >= 3 else image  # BGR(A) to RGB
    return np.asarray(image)


def to_grey(image: np.ndarray, source: str = "image") -> np.ndarray:
    """Reduce (rows, columns, channels) to (rows, columns) by luminance, keeping the dtype; 2-D passes unchanged."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] in (1, 2):
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        # In blocks of rows: a float64 copy of a whole 8192 x 8192 RGB image would take 1.6 GB.
        grey = np.empty(image.shape[:2], image.dtype)
        weights = np.array([0.299, 0.587, 0.114])
        for r in range(0, image.shape[0], 512):
            grey[r : r + 512] = np.round(image[r : r + 512, :, :3].astype(np.float64) @ weights)
        return grey
    raise ImageReadError(f"{source}: expected a grey or RGB image; got an array of shape {image.shape}")


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Scale a grey image to float32 in [0, 1]: integers by their dtype's maximum, floats clipped."""
    if image.dtype.kind in "ui":
        return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def png_bytes(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8/uint16 grey (rows, columns) or uint8 RGB (rows, columns, 3) array, through the core's
    codec (:mod:`semcoat.pngio`), the one PNG encoder of the analysis.

    Raises
    ------
    ValueError
        For other shapes and dtypes (a caller's bug: the analysis writes only these).
    """
    a = np.asarray(array)
    if a.ndim == 2 and a.dtype in (np.uint8, np.uint16):
        # PNG stores 16-bit samples big-endian.
        big_endian = a.astype(a.dtype.newbyteorder(">"))
        return pngio.encode_grey(a.shape[1], a.shape[0], a.dtype.itemsize * 8, big_endian.tobytes())
    if a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8:
        return pngio.encode_rgb(a.shape[1], a.shape[0], np.ascontiguousarray(a).tobytes())
    raise ValueError(f"expected uint8/uint16 grey or uint8 RGB pixels; got {a.dtype} of shape {a.shape}")


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8/uint16 grey or uint8 RGB array as PNG (folders created; see :func:`png_bytes`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(array))


def write_results_csv_to(stream: TextIO, rows: Iterable[ResultRow]) -> None:
    """Write the measurements table to an open text stream (see :func:`write_results_csv`)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for image, pixel_size_um, m in rows:
        values = m.as_dict() if m is not None else {}
        writer.writerow([image, format_cell(pixel_size_um), *(format_cell(values.get(n)) for n in MEASUREMENT_NAMES)])


def write_results_csv(path: str | Path, rows: Iterable[ResultRow]) -> None:
    """Write one row per image: ``image`` (file stem), ``pixel_size_um``, then every measurement.

    Empty cells for missing values (an image that failed has only its name, and its pixel size when known). The file
    appears complete or not at all (written to a temporary sibling, then renamed).
    """
    import io as stdio

    buffer = stdio.StringIO()
    write_results_csv_to(buffer, rows)
    write_text_atomic(path, buffer.getvalue())


def read_results_csv(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a measurements table (as written by :func:`write_results_csv`) into ``{image: {name: value}}``.

    Each row's dict holds every measurement name and ``pixel_size_um`` (None for an empty cell, or for tables of
    earlier versions without that column); other columns are ignored, missing measurement columns give None.

    Raises
    ------
    ResultsTableError
        Naming the file (and line) of a table without an ``image`` column, with a repeated image or a bad cell.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return _read_results(path, csv.DictReader(f))
    except UnicodeDecodeError as exc:
        raise ResultsTableError(f"{path}: not a measurements table: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:  # a NUL byte, a field over the csv module's limit
        raise ResultsTableError(f"{path}: not a measurements table: {str(exc):.200}") from exc


def _read_results(path: Path, reader: csv.DictReader[str]) -> dict[str, dict[str, Any]]:
    from analysis.measure import check_pixel_size_um

    if reader.fieldnames is None or "image" not in reader.fieldnames:
        columns = ", ".join(map(repr, (reader.fieldnames or [])[:12]))
        raise ResultsTableError(f"{path}: a results table needs an 'image' column; columns: {columns:.300}")
    out: dict[str, dict[str, Any]] = {}
    for line, row in enumerate(reader, start=2):
        image = row["image"]
        if not isinstance(image, str) or not image:
            raise ResultsTableError(f"{path}:{line}: the image cell is empty; each row names its image")
        if image in out:
            raise ResultsTableError(f"{path}:{line}: image {image!r:.80} appears twice; each image needs one row")
        try:
            values = {n: parse_cell(n, _cell(row.get(n))) for n in (*MEASUREMENT_NAMES, PIXEL_SIZE_COLUMN)}
        except CellError as exc:
            raise ResultsTableError(f"{path}:{line}: {str(exc):.300}") from exc
        for name, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ResultsTableError(f"{path}:{line}: {name} must be a finite number; got {value}")
        size = values[PIXEL_SIZE_COLUMN]
        if size is not None:
            try:
                check_pixel_size_um(size)
            except SemcoatError as exc:
                raise ResultsTableError(f"{path}:{line}: {PIXEL_SIZE_COLUMN}: {exc}") from exc
        out[image] = values
    return out


def _cell(value: Any) -> str:
    """A cell as the csv module gives it: text, None for a short row, a list for a long row's extra cells."""
    return value if isinstance(value, str) else ""
