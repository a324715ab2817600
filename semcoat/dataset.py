"""The dataset-folder contract shared by renderer, trainer and analysis (one folder per batch).

Layout::

    DIR/dataset.json        name, classes, pixel_size_um, image size, bit depth, count, seed, spec, generator version
    DIR/images/<id>.png     grey image, 8 or 16 bit
    DIR/masks/<id>.png      8-bit class ids (semcoat.classes)
    DIR/meta/<id>.json      {"id", "index", "params": sampled parameters, "truth": measurements, ...}
    DIR/phases/<id>.png     optional (renders): 8-bit precipitate phase per pixel, 0 off the mask's precipitates,
                            1 + the phase's index in semcoat.classes.PRECIPITATE_PHASES on them

``<id>`` is the image index zero-padded to six digits. Each file is written to a temporary name and renamed into
place, and the meta file is written last: a sample is complete exactly when its meta file exists, so a run that is
killed mid-sample never leaves a sample that looks complete, and a resumed run rewrites it.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semcoat import classes, pngio
from semcoat.batch import MAX_IMAGES
from semcoat.errors import SemcoatError
from semcoat.measurements import MEASUREMENT_NAMES as MEASUREMENT_NAMES  # the names meta truth holds, re-exported
from semcoat.measurements import missing_names, value_problems
from semcoat.params import quoted, shorten

DATASET_FILE = "dataset.json"
SUBDIRS = ("images", "masks", "meta")
# Optional per-sample files: a sample is complete without them, and a folder may hold them for some samples only.
PHASES_DIR = "phases"
# The largest image side a dataset may declare (the spec's own limit on width_px and height_px).
MAX_SIDE_PX = 8192
_TMP_MARK = ".tmp-"
_ID_FILE = re.compile(r"^(\d{6,})\.(png|json)$")


class DatasetError(SemcoatError):
    """A dataset folder cannot be used as asked (with the folder and the reason)."""


def sample_id(index: int) -> str:
    """File stem of image ``index``."""
    return f"{index:06d}"


def sample_paths(root: Path, sid: str) -> tuple[Path, Path, Path]:
    """(image, mask, meta) paths of sample ``sid`` in dataset folder ``root``."""
    return root / "images" / f"{sid}.png", root / "masks" / f"{sid}.png", root / "meta" / f"{sid}.json"


def phase_map_path(root: Path, sid: str) -> Path:
    """Optional precipitate-phase map of sample ``sid`` (see the module's layout)."""
    return root / PHASES_DIR / f"{sid}.png"


@dataclass
class DatasetInfo:
    """What ``dataset.json`` holds."""

    name: str
    pixel_size_um: float
    image_width_px: int
    image_height_px: int
    count: int
    seed: int
    bit_depth: int = 8
    spec: dict[str, Any] = field(default_factory=dict)
    generator_version: str = ""
    classes: dict[str, str] = field(default_factory=lambda: {str(k): v for k, v in classes.CLASS_NAMES.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name, "classes": self.classes, "pixel_size_um": self.pixel_size_um,
            "image_width_px": self.image_width_px, "image_height_px": self.image_height_px,
            "bit_depth": self.bit_depth, "count": self.count, "seed": self.seed,
            "generator_version": self.generator_version, "spec": self.spec,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> DatasetInfo:
        """Parse ``dataset.json`` content; DatasetError names the file and the bad key."""
        if not isinstance(data, dict):
            raise DatasetError(f"{source}: expected a JSON object")
        required: dict[str, type | tuple[type, ...]] = {
            "name": str, "pixel_size_um": (int, float), "image_width_px": int, "image_height_px": int, "count": int,
            "seed": int}
        for key, typ in required.items():
            if key not in data:
                raise DatasetError(f"{source}: missing key {key!r}")
            if isinstance(data[key], bool) or not isinstance(data[key], typ):
                raise DatasetError(f"{source}: key {key!r} has the wrong type (got {quoted(data[key])})")
        if not (0 < data["pixel_size_um"] < math.inf):
            raise DatasetError(f"{source}: pixel_size_um must be a positive finite number of µm per pixel "
                               f"(got {data['pixel_size_um']!r})")
        if not 1 <= data["count"] <= MAX_IMAGES:
            raise DatasetError(f"{source}: count must be an integer in [1, {MAX_IMAGES}] (got {quoted(data['count'])})")
        for key in ("image_width_px", "image_height_px"):
            if not 1 <= data[key] <= MAX_SIDE_PX:
                raise DatasetError(
                    f"{source}: {key} must be an integer in [1, {MAX_SIDE_PX}] (got {quoted(data[key])})")
        if data.get("bit_depth", 8) not in (8, 16):
            raise DatasetError(f"{source}: bit_depth must be 8 or 16 (got {data.get('bit_depth')!r})")
        if not isinstance(data.get("spec", {}), dict):
            raise DatasetError(f"{source}: spec must be an object (got {data.get('spec')!r})")
        table = data.get("classes", {})
        if not isinstance(table, dict) or not all(
                isinstance(k, str) and k.isdecimal() and int(k) < 256 and isinstance(v, str) for k, v in table.items()):
            raise DatasetError(f"{source}: classes must map mask values '0'..'255' to names, like "
                               f"{json.dumps({str(c.id): c.name for c in classes.CLASSES[:2]})} (got {table!r})")
        return cls(
            name=data["name"], pixel_size_um=float(data["pixel_size_um"]), image_width_px=data["image_width_px"],
            image_height_px=data["image_height_px"], count=data["count"], seed=data["seed"],
            bit_depth=data.get("bit_depth", 8), spec=data.get("spec", {}),
            generator_version=data.get("generator_version", ""),
            classes=data.get("classes", {str(k): v for k, v in classes.CLASS_NAMES.items()}),
        )


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a uniquely named temporary file in the same folder and a rename.

    The temporary name is unique across processes and machines (writers on several nodes share one folder, and in
    containers they may all be PID 1); it is removed if the write fails.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{_TMP_MARK}")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; a dataset is meant to be read by others
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_info(root: str | Path) -> DatasetInfo:
    """Read and check ``DIR/dataset.json``."""
    p = Path(root) / DATASET_FILE
    if not p.is_file():
        raise DatasetError(f"{root} is not a dataset folder: {DATASET_FILE} is missing")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{p}: not valid JSON ({exc})") from exc
    except (RecursionError, ValueError) as exc:  # nested too deeply, or an integer of thousands of digits
        raise DatasetError(f"{p}: not a usable dataset.json ({shorten(str(exc), 120)})") from exc
    return DatasetInfo.from_dict(data, str(p))


def _differing_batch_keys(mine: DatasetInfo, theirs: DatasetInfo) -> list[str]:
    """What makes two dataset infos belong to different batches. The render settings (task size) change no pixel,
    so a batch may be re-chunked; another generator version would mix images of two generators."""
    def key(info: DatasetInfo) -> dict[str, Any]:
        d = info.to_dict()
        d["spec"] = {k: v for k, v in d["spec"].items() if k != "render"}
        return d

    a, b = key(mine), key(theirs)
    compared = ("name", "count", "seed", "spec", "image_width_px", "image_height_px", "pixel_size_um", "bit_depth",
                "generator_version")
    return sorted(k for k in compared if a[k] != b[k])


class DatasetWriter:
    """Writes samples into a dataset folder; several writers (array tasks) may share one folder."""

    def __init__(self, root: Path, info: DatasetInfo) -> None:
        self.root = root
        self.info = info

    @classmethod
    def open(cls, root: str | Path, info: DatasetInfo) -> DatasetWriter:
        """Create the folder (or join an existing one of the same batch) and write ``dataset.json``.

        Several writers of one batch (array tasks) may open the folder at the same moment. Raises DatasetError when
        the folder holds anything else or a dataset of another batch, so nothing of it is overwritten.
        """
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise DatasetError(f"{path} exists and is not a folder")
        # what writers of the same batch may already have made, temporaries too
        ours = {*SUBDIRS, PHASES_DIR, DATASET_FILE}
        if path.is_dir() and any(e.name not in ours and _TMP_MARK not in e.name for e in path.iterdir()):
            raise DatasetError(f"{path} is not empty and holds no {DATASET_FILE}; choose an empty or new folder")
        if path.is_dir() and _holds_samples(path) and not (path / DATASET_FILE).is_file():
            # dataset.json is written before any sample and never removed, so samples without it were not put there
            # by a writer of this batch: they cannot be matched to any batch, and adopting them would mix two
            # batches. Samples are looked for first: a writer starting together with this one may write dataset.json
            # and then a sample between the two looks, which the other order would take for a deleted dataset.json.
            raise DatasetError(
                f"{path} holds samples but no {DATASET_FILE} (deleted?), so they cannot be matched to this batch; "
                f"restore {DATASET_FILE}, or choose an empty or new folder")
        for sub in (*SUBDIRS, PHASES_DIR):
            if (path / sub).exists() and not (path / sub).is_dir():
                raise DatasetError(f"{path / sub} exists and is not a folder; a dataset folder keeps its samples' "
                                   f"files in the folders {', '.join((*SUBDIRS, PHASES_DIR))}: move that file away")
        path.mkdir(parents=True, exist_ok=True)
        if not (path / DATASET_FILE).is_file():
            write_atomic(path / DATASET_FILE, (json.dumps(info.to_dict(), indent=2) + "\n").encode())
        existing = read_info(path)  # ours, or one another writer put there first
        differing = _differing_batch_keys(info, existing)
        if differing:
            raise DatasetError(
                f"{path} already holds dataset {existing.name!r} of another batch (differs in: "
                f"{', '.join(differing)}); choose another output folder or remove that one")
        for sub in SUBDIRS:
            (path / sub).mkdir(exist_ok=True)
        return cls(path, info)

    def paths(self, sid: str) -> tuple[Path, Path, Path]:
        """(image, mask, meta) paths of sample ``sid``."""
        return sample_paths(self.root, sid)

    def is_complete(self, sid: str) -> bool:
        """True when all three files of the sample exist (meta is written last)."""
        return all(p.is_file() for p in self.paths(sid))

    def is_intact(self, sid: str) -> bool:
        """True when the sample is complete and its files pass the checker (readable, right size, valid meta).

        A resumed render uses this, so a sample damaged after it was written is rendered again, not skipped.
        """
        return self.is_complete(sid) and not sample_problems(*self.paths(sid), self.info,
                                                             phase_map_path(self.root, sid))

    def discard(self, sid: str) -> None:
        """Remove every file of sample ``sid`` and any temporary an interrupted write left; meta goes first, so the
        sample never looks complete while it is being removed."""
        image, mask, meta = self.paths(sid)
        for p in (meta, image, mask, phase_map_path(self.root, sid)):
            p.unlink(missing_ok=True)
            for tmp in p.parent.glob(f".{p.name}{_TMP_MARK}*"):
                tmp.unlink(missing_ok=True)

    def write_sample(self, sid: str, image_png: bytes, mask_png: bytes, meta: dict[str, Any],
                     phases_png: bytes | None = None) -> None:
        """Write one sample atomically: image, mask, the optional phase map, then meta (the commit mark)."""
        image_path, mask_path, meta_path = self.paths(sid)
        write_atomic(image_path, image_png)
        write_atomic(mask_path, mask_png)
        phases_path = phase_map_path(self.root, sid)
        if phases_png is None:
            phases_path.unlink(missing_ok=True)  # a phase map belongs to the mask written with it
        else:
            phases_path.parent.mkdir(exist_ok=True)
            write_atomic(phases_path, phases_png)
        write_atomic(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())


@dataclass
class Dataset:
    """A dataset folder opened for reading: its info and the ids of its complete samples."""

    root: Path
    info: DatasetInfo
    ids: list[str]

    def image_path(self, sid: str) -> Path:
        """Grey image of sample ``sid``."""
        return sample_paths(self.root, sid)[0]

    def mask_path(self, sid: str) -> Path:
        """Class-id mask of sample ``sid``."""
        return sample_paths(self.root, sid)[1]

    def meta(self, sid: str) -> dict[str, Any]:
        """Parsed meta file of sample ``sid``.

        Raises
        ------
        DatasetError
            Naming the file, when it cannot be read, is no JSON or holds no JSON object.
        """
        path = sample_paths(self.root, sid)[2]
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise DatasetError(f"{path}: unreadable ({str(exc):.120}); run `semcoat dataset check` on its "
                               "folder") from exc
        if not isinstance(meta, dict):
            raise DatasetError(f"{path}: a JSON object is expected, not {type(meta).__name__}; run `semcoat "
                               "dataset check` on its folder")
        return meta

    def phase_map_path(self, sid: str) -> Path | None:
        """Precipitate-phase map of sample ``sid``, or None when the folder holds none for it."""
        path = phase_map_path(self.root, sid)
        return path if path.is_file() else None

    @property
    def is_complete(self) -> bool:
        """True when every one of the ``count`` samples is complete."""
        return len(self.ids) == self.info.count


def read_dataset(root: str | Path, require_complete: bool = False) -> Dataset:
    """Open a dataset folder; with ``require_complete`` raise DatasetError if any sample is missing."""
    path = Path(root)
    info = read_info(path)
    ids = [sample_id(i) for i in range(info.count) if all(p.is_file() for p in sample_paths(path, sample_id(i)))]
    ds = Dataset(path, info, ids)
    if require_complete and not ds.is_complete:
        raise DatasetError(f"{path}: {info.count - len(ids)} of {info.count} samples are missing or incomplete; "
                           f"run `semcoat dataset check {path}` for the list")
    return ds


@dataclass
class CheckReport:
    """What ``check_dataset`` found: problems (each one sentence naming the file) and the complete sample count."""

    root: Path
    problems: list[str]
    complete: int
    expected: int

    @property
    def ok(self) -> bool:
        """True when there is no problem at all."""
        return not self.problems


def _holds_samples(root: Path) -> bool:
    """Whether any sub-folder of ``root`` holds a file other than a writer's temporary."""
    return any(_TMP_MARK not in e.name for sub in (*SUBDIRS, PHASES_DIR) if (root / sub).is_dir()
               for e in (root / sub).iterdir())


def _ranges(indices: Iterable[int]) -> str:
    """Compact text of sorted indices: ``0-3, 7, 9-10``."""
    out: list[str] = []
    items = sorted(indices)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(sample_id(items[i]) if i == j else f"{sample_id(items[i])}-{sample_id(items[j])}")
        i = j + 1
    return ", ".join(out)


def _size_problem(path: Path, data: bytes, info: DatasetInfo, what: str) -> str | None:
    """Why a PNG's header does not fit the dataset's image size (None: it fits), read before anything is decoded:
    a small file may claim a huge frame and would take seconds of decoding only to be refused."""
    try:
        header = pngio.read_header(data)
    except pngio.PngError:
        return None  # the decoder names the damage
    if (header.width, header.height) != (info.image_width_px, info.image_height_px):
        return (f"{path}: {what} is {header.width}x{header.height} px, dataset.json says "
                f"{info.image_width_px}x{info.image_height_px}")
    return None


def _check_mask(path: Path, info: DatasetInfo, allowed: bytes) -> tuple[list[str], bytes | None]:
    """The mask's problems, and its pixels (None where unreadable, mis-sized or not 8-bit)."""
    data = path.read_bytes()
    size_problem = _size_problem(path, data, info, "mask")
    if size_problem:
        return [size_problem], None
    try:
        header, pixels = pngio.decode_grey(data)
    except pngio.PngError as exc:
        return [f"{path}: unreadable mask ({exc})"], None
    problems = []
    if header.bit_depth != 8:
        problems.append(f"{path}: mask must be 8-bit class ids, found {header.bit_depth}-bit")
        return problems, None
    unknown = set(pixels.translate(None, allowed))
    if unknown:
        problems.append(f"{path}: unknown class id(s) {sorted(unknown)}; accepted: {sorted(allowed)}")
    return problems, pixels


def _check_image(path: Path, info: DatasetInfo) -> list[str]:
    data = path.read_bytes()
    size_problem = _size_problem(path, data, info, "image")
    if size_problem:
        return [size_problem]
    try:
        header = pngio.verify(data)  # every byte, not only the header: damage means a re-render
    except pngio.PngError as exc:
        return [f"{path}: unreadable image ({exc})"]
    problems = []
    if not header.is_grey or header.bit_depth != info.bit_depth:
        problems.append(f"{path}: expected a {info.bit_depth}-bit grey PNG, found colour type {header.color_type} "
                        f"at {header.bit_depth} bit")
    return problems


def _check_meta(path: Path) -> list[str]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [f"{path}: not valid JSON ({exc})"]
    except (RecursionError, ValueError) as exc:  # nested too deeply, or an integer of thousands of digits
        return [f"{path}: not a usable meta file ({shorten(str(exc), 120)})"]
    if not (isinstance(meta, dict) and isinstance(meta.get("params"), dict) and isinstance(meta.get("truth"), dict)):
        return [f"{path}: expected an object with 'params' and 'truth' objects"]
    missing = missing_names(meta["truth"])
    if missing:
        return [f"{path}: 'truth' lacks {', '.join(missing)}"]
    return [f"{path}: truth.{problem}" for problem in value_problems(meta["truth"])]


def _check_phase_map(path: Path, mask_pixels: bytes | None, info: DatasetInfo) -> list[str]:
    """A phase map must be an 8-bit grey PNG of the mask's size whose non-zero pixels, each a known phase, are exactly
    the mask's precipitate pixels (``mask_pixels``; None where the mask is unreadable: its own check says why)."""
    if not path.is_file():
        return [f"{path}: not a file (a phase map is an 8-bit grey PNG)"]
    data = path.read_bytes()
    size_problem = _size_problem(path, data, info, "phase map")
    if size_problem:
        return [size_problem]
    try:
        header, pixels = pngio.decode_grey(data)
    except pngio.PngError as exc:
        return [f"{path}: unreadable phase map: it must be an 8-bit grey PNG ({exc})"]
    if header.bit_depth != 8:
        return [f"{path}: phase map must be an 8-bit grey PNG, found {header.bit_depth}-bit"]
    phases = classes.PRECIPITATE_PHASES
    unknown = set(pixels.translate(None, bytes(range(len(phases) + 1))))
    if unknown:
        return [f"{path}: unknown phase value(s) {sorted(unknown)}; accepted: 0 (no precipitate) and "
                f"1-{len(phases)} (1 + the index in {[p.name for p in phases]})"]
    if mask_pixels is None or len(mask_pixels) != len(pixels):
        return []  # the mask's own check says why
    on_precipitate = mask_pixels.translate(bytes(1 if i == classes.PRECIPITATE else 0 for i in range(256)))
    on_phase = pixels.translate(bytes(1 if i else 0 for i in range(256)))
    if on_precipitate != on_phase:
        differ = sum(a != b for a, b in zip(on_precipitate, on_phase, strict=True))
        return [f"{path}: phase map does not match the mask's precipitates ({differ} pixels differ)"]
    return []


def sample_problems(image: Path, mask: Path, meta: Path, info: DatasetInfo, phases: Path | None = None) -> list[str]:
    """Problems of the existing files of one sample: unreadable or mis-sized PNGs, unknown class ids, bad meta, and
    a phase map (``phases``, optional) that does not fit its mask."""
    allowed = bytes(sorted(int(k) for k in info.classes))
    problems: list[str] = []
    mask_pixels = None
    if image.is_file():
        problems.extend(_check_image(image, info))
    if mask.is_file():
        found, mask_pixels = _check_mask(mask, info, allowed)
        problems.extend(found)
    if meta.is_file():
        problems.extend(_check_meta(meta))
    if phases is not None and phases.exists():
        problems.extend(_check_phase_map(phases, mask_pixels, info))
    return problems


def check_dataset(root: str | Path) -> CheckReport:
    """Check a dataset folder against the contract; every problem names its file and says what is wrong."""
    path = Path(root)
    try:
        info = read_info(path)
    except DatasetError as exc:
        return CheckReport(path, [str(exc)], 0, 0)
    problems: list[str] = []
    unknown_classes = set(int(k) for k in info.classes) - set(classes.CLASS_IDS)
    if unknown_classes:
        problems.append(f"{path / DATASET_FILE}: classes holds unknown id(s) {sorted(unknown_classes)}")
    never_written: list[int] = []
    complete = 0
    for sub in (*SUBDIRS, PHASES_DIR):
        folder = path / sub
        if not folder.is_dir():
            if folder.exists():
                problems.append(f"{folder}: not a folder")
            elif sub != PHASES_DIR:  # the phase maps are optional
                problems.append(f"{folder}: folder missing")
            continue
        for entry in sorted(folder.iterdir()):
            if _TMP_MARK in entry.name:
                problems.append(f"{entry}: leftover temporary file of an interrupted write")
                continue
            m = _ID_FILE.match(entry.name)
            expected_ext = "json" if sub == "meta" else "png"
            if not m or m.group(2) != expected_ext or int(m.group(1)) >= info.count:
                problems.append(f"{entry}: unexpected file (expected <id>.{expected_ext} with id < {info.count})")
            elif not entry.is_file():
                problems.append(f"{entry}: not a file")
    for i in range(info.count):
        sid = sample_id(i)
        image, mask, meta = sample_paths(path, sid)
        phases = phase_map_path(path, sid)
        present = [p.is_file() for p in (image, mask, meta)]
        if not any(present):
            if phases.exists():
                problems.append(f"{phases}: phase map of a sample that has no other file (interrupted write?)")
            never_written.append(i)
            continue
        if not present[2]:
            problems.append(f"{path}/*/{sid}: incomplete sample (no meta file: interrupted write?)")
        for p, ok in zip((image, mask, meta), present, strict=True):
            if not ok:
                problems.append(f"{p}: missing")
        found = sample_problems(image, mask, meta, info, phases)
        problems.extend(found)
        if all(present) and not found:
            complete += 1
    if never_written:
        problems.append(f"{len(never_written)} of {info.count} samples never written: {_ranges(never_written)}")
    return CheckReport(path, problems, complete, info.count)
