"""The batch spec: a base coating, how many images, a seed, and which parameters vary how.

Image ``i`` of a batch is ``BatchSpec.sample(i)``: the base spec with every randomised parameter drawn from a random
generator seeded by (batch seed, i) alone, so any image can be re-rendered anywhere, in any order, bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semcoat.errors import SemcoatError
from semcoat.params import (
    FieldError,
    SpecError,
    check_leaf,
    dataclass_errors,
    dataclass_from_dict,
    leaf_paths,
    param,
    shorten,
)
from semcoat.spec import CoatingSpec

# Each kind of distribution and the keys it takes.
DISTRIBUTION_KEYS = {"uniform": ("low", "high"), "normal": ("mean", "std"), "choice": ("values",)}
DISTRIBUTION_KINDS = tuple(DISTRIBUTION_KEYS)
BATCH_FIELDS = ("name", "count", "seed", "base", "randomize", "render")
# Properties of the whole dataset (dataset.json): every image of a batch shares them, so they cannot vary.
FRAME_PATHS = ("imaging.width_px", "imaging.height_px", "imaging.pixel_size_um", "imaging.bit_depth")
COATING_SECTIONS = tuple(f.name for f in dataclasses.fields(CoatingSpec))
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RENDER_ENGINES = ("auto", "raster", "workbench", "cycles")
MAX_IMAGES = 1_000_000


@dataclass
class Distribution:
    """How one parameter varies across a batch.

    ``uniform``: ``low``..``high``; ``normal``: ``mean`` +- ``std``, clipped to the parameter's accepted range;
    ``choice``: one of ``values`` with equal probability. Integer parameters are rounded.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    values: list[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Only the keys this kind uses."""
        keys = DISTRIBUTION_KEYS[self.kind]
        return {"kind": self.kind, **{k: getattr(self, k) for k in keys}}


@dataclass
class RenderSettings:
    """How the batch is cut into render tasks, and which engine draws it. Neither changes a pixel: every engine draws
    each pixel's phase at its centre, decided exactly beside the edges, so a batch may be re-chunked or resumed on
    another engine."""

    images_per_task: int = param(
        25, minimum=1, maximum=100_000, doc="Images one render process (one Slurm array task) renders in a row.")
    engine: str = param(
        "auto", choices=RENDER_ENGINES,
        doc="Render engine: 'raster' (the meshes drawn offscreen through Blender's GPU module: OpenGL/EGL, the "
            "fastest), 'workbench' (Blender's OpenGL rasteriser), 'cycles' (ray traced, needs no OpenGL) or 'auto' "
            "(raster where OpenGL starts, else Cycles). The images are the same.")


@dataclass
class BatchSpec:
    """A batch of randomised images: ``count`` samples of ``base`` with ``randomize`` applied, seeded by ``seed``."""

    name: str = "batch"
    count: int = 100
    seed: int = 0
    base: CoatingSpec = field(default_factory=CoatingSpec)
    randomize: dict[str, Distribution] = field(default_factory=dict)
    render: RenderSettings = field(default_factory=RenderSettings)

    # --- serialisation -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "name": self.name,
            "count": self.count,
            "seed": self.seed,
            "base": self.base.to_dict(),
            "randomize": {path: d.to_dict() for path, d in sorted(self.randomize.items())},
            "render": dataclasses.asdict(self.render),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any, source: str = "") -> BatchSpec:
        """Build and validate a batch spec from a dict; raise SpecError listing every problem."""
        errors: list[FieldError] = []
        if not isinstance(data, dict):
            raise SpecError([FieldError("", data, "expected a batch spec object (JSON {...})")], source)
        for key in data:
            if key in COATING_SECTIONS:
                errors.append(FieldError(key, "{...}", f"'{key}' is a section of the coating: put it under \"base\" "
                                         f"(a batch file holds {', '.join(BATCH_FIELDS)})"))
            elif key not in BATCH_FIELDS:
                errors.append(FieldError(key, data[key], f"unknown field; accepted: {', '.join(BATCH_FIELDS)}"))
        name = data.get("name", "batch")
        count = data.get("count", 100)
        seed = data.get("seed", 0)
        base = dataclass_from_dict(CoatingSpec, data.get("base", {}), "base", errors)
        render = dataclass_from_dict(RenderSettings, data.get("render", {}), "render", errors)
        randomize: dict[str, Distribution] = {}
        raw_randomize = data.get("randomize", {})
        if not isinstance(raw_randomize, dict):
            errors.append(FieldError("randomize", raw_randomize, 'expected an object {"section.field": {...}}'))
        else:
            for path, raw in raw_randomize.items():
                dist = _distribution_from_dict(f"randomize.{path}", raw, errors)
                if dist is not None:
                    randomize[path] = dist
        batch = cls(name=name, count=count, seed=seed, base=base or CoatingSpec(), randomize=randomize,
                    render=render or RenderSettings())
        errors.extend(batch._errors(consistency=not errors))
        if errors:
            raise SpecError(errors, source)
        return batch

    @classmethod
    def load(cls, path: str | Path) -> BatchSpec:
        """Read a batch spec JSON file; raise SpecError (bad content) or SemcoatError (no such file)."""
        return cls.from_dict(read_json(path), source=str(path))

    # --- validation ----------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise SpecError if anything is invalid (fields set from Python included)."""
        errors = dataclass_errors(self.base, "base") + dataclass_errors(self.render, "render")
        errors.extend(self._errors(consistency=not errors))
        if errors:
            raise SpecError(errors)

    def _errors(self, consistency: bool) -> list[FieldError]:
        """Problems of the batch-level fields; with ``consistency``, also the cross-field checks of the base spec
        (only meaningful once every leaf is valid)."""
        errors: list[FieldError] = []
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            errors.append(FieldError("name", self.name,
                                     "expected 1-64 characters of letters, digits, '_', '.', '-' (not starting with "
                                     "'.', '_' or '-'); the name becomes a folder and a Slurm job name"))
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not 1 <= self.count <= MAX_IMAGES:
            errors.append(FieldError("count", self.count, f"expected an integer in [1, {MAX_IMAGES}]"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            errors.append(FieldError("seed", self.seed, "expected an integer in [0, 2**63)"))
        leaves = leaf_paths(CoatingSpec)
        for path, dist in self.randomize.items():
            where = f"randomize.{path}"
            if path not in leaves:
                errors.append(FieldError(where, path, "unknown parameter; use a path like 'layers.fe2al5_thickness_um' "
                                         "(see `semcoat spec schema`)"))
                continue
            if path in FRAME_PATHS:
                errors.append(FieldError(where, path, "the image frame (size, pixel size, bit depth) is shared by "
                                         "every image of a dataset and cannot vary; set it in base, or render one "
                                         "batch per frame"))
                continue
            typ, meta = leaves[path]
            errors.extend(_distribution_errors(where, dist, typ, meta))
        if consistency and not errors:
            errors = [dataclasses.replace(e, path=f"base.{e.path}") for e in self.base.consistency_errors()]
        return errors

    # --- sampling ------------------------------------------------------------------------------------------------
    def rng(self, index: int) -> random.Random:
        """The random generator of image ``index``: depends on (seed, index) only."""
        if not 0 <= index < self.count:
            raise IndexError(f"image index {index} is outside this batch of {self.count} images (0..{self.count - 1})")
        digest = hashlib.sha256(f"semcoat/{self.seed}/{index}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def image_seed(self, index: int) -> int:
        """Seed (0 <= s < 2**63) for everything image ``index`` draws beyond its parameters (geometry, noise)."""
        digest = hashlib.sha256(f"semcoat/{self.seed}/{index}/image".encode()).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    def sample(self, index: int) -> CoatingSpec:
        """The coating spec of image ``index``: base spec + randomised parameters, validated.

        Raises SpecError naming the image when the drawn values contradict each other (e.g. a pore line deeper than
        the drawn layer thickness); ``semcoat spec check`` finds these before any render.
        """
        rng = self.rng(index)
        data = self.base.to_dict()
        leaves = leaf_paths(CoatingSpec)
        for path in sorted(self.randomize):
            typ, meta = leaves[path]
            value = _draw(rng, self.randomize[path], typ, meta)
            section_name, leaf = path.split(".", 1)
            data[section_name][leaf] = value
        return CoatingSpec.from_dict(data, source=f"batch {self.name!r} image {index}")

    def task_ranges(self) -> list[tuple[int, int]]:
        """``(start, count)`` of each render task, in order: images_per_task images each, the last one shorter."""
        step = self.render.images_per_task
        return [(start, min(step, self.count - start)) for start in range(0, self.count, step)]


def render_chunk_argv(semcoat_command: str | Sequence[str], batch_file: str, out_dir: str, start: int | str,
                      count: int | str, threads: int = 0) -> list[str]:
    """The command line that renders images ``start``..``start + count - 1`` of a batch into a dataset folder.

    One chunk is one Slurm array task, one local render process, one demo step: every caller builds the command here,
    so they cannot drift apart. ``semcoat_command`` is the ``semcoat`` executable (a path) or the argv that runs it
    (e.g. ``[sys.executable, "-m", "semcoat_cli"]``); ``start``/``count`` may be shell text such as ``"$start"`` for an
    sbatch script that computes them from ``SLURM_ARRAY_TASK_ID`` (quoting is the caller's business there).
    ``threads`` 0 means all cores.
    """
    prefix = [semcoat_command] if isinstance(semcoat_command, str) else list(semcoat_command)
    return [*prefix, "render", batch_file, "--out", out_dir, "--start", str(start), "--count", str(count),
            "--threads", str(threads)]


def is_coating_document(data: Any) -> bool:
    """True for a JSON object that holds coating sections only (``layers``, ``pores``, ...): one CoatingSpec.

    Anything else, ``{}`` included, is read as a batch file (all of whose fields have defaults), as ``semcoat render``
    reads it.
    """
    return isinstance(data, dict) and bool(data) and set(data) <= set(COATING_SECTIONS)


def read_json(path: str | Path) -> Any:
    """Read a JSON file, turning decode errors into a SpecError that names the file, line and column."""
    p = Path(path)
    if not p.is_file():
        raise SemcoatError(f"no such spec file: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SpecError([FieldError("", p.name, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")],
                        str(p)) from exc
    except UnicodeDecodeError as exc:
        raise SpecError([FieldError("", p.name, "not a UTF-8 text file")], str(p)) from exc
    except RecursionError as exc:
        raise SpecError([FieldError("", p.name, "JSON nested too deeply to be a spec (specs are 3 levels deep)")],
                        str(p)) from exc
    except ValueError as exc:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise SpecError([FieldError("", p.name, f"not a usable JSON file: {shorten(str(exc), 120)}")], str(p)) from exc


def _distribution_from_dict(path: str, raw: Any, errors: list[FieldError]) -> Distribution | None:
    if not isinstance(raw, dict):
        errors.append(FieldError(path, raw, 'expected an object like {"kind": "uniform", "low": 1, "high": 2}'))
        return None
    kind = raw.get("kind")
    if kind not in DISTRIBUTION_KINDS:
        errors.append(FieldError(f"{path}.kind", kind, f"expected one of {', '.join(DISTRIBUTION_KINDS)}"))
        return None
    needed = DISTRIBUTION_KEYS[kind]
    bad = False
    for key in raw:
        if key != "kind" and key not in needed:
            errors.append(FieldError(f"{path}.{key}", raw[key],
                                     f"not used by kind {kind!r}; it takes {', '.join(needed)}"))
            bad = True
    for key in needed:
        if key not in raw:
            errors.append(FieldError(f"{path}.{key}", None, f"missing; kind {kind!r} takes {', '.join(needed)}"))
            bad = True
    if bad:
        return None
    return Distribution(kind=kind, **{k: raw[k] for k in needed})


def _distribution_errors(path: str, dist: Distribution, typ: Any, meta: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    if dist.kind == "choice":
        if not isinstance(dist.values, list) or not dist.values:
            return [FieldError(f"{path}.values", dist.values, "expected a non-empty list of values")]
        for i, v in enumerate(dist.values):
            errors.extend(check_leaf(f"{path}.values[{i}]", v, typ, meta)[1])
        return errors
    if typ not in (int, float):
        return [FieldError(f"{path}.kind", dist.kind, "this parameter is not numeric: only kind 'choice' applies")]
    if dist.kind == "uniform":
        for key in ("low", "high"):
            errors.extend(check_leaf(f"{path}.{key}", getattr(dist, key), float, meta)[1])
        if not errors and dist.low > dist.high:  # type: ignore[operator]
            errors.append(FieldError(f"{path}.low", dist.low, f"must not exceed high ({dist.high})"))
    else:
        errors.extend(check_leaf(f"{path}.mean", dist.mean, float, meta)[1])
        errors.extend(check_leaf(f"{path}.std", dist.std, float, {"minimum": 0.0})[1])
    return errors


def _draw(rng: random.Random, dist: Distribution, typ: Any, meta: dict[str, Any]) -> Any:
    if dist.kind == "choice":
        assert dist.values is not None
        return dist.values[rng.randrange(len(dist.values))]
    if dist.kind == "uniform":
        value = rng.uniform(float(dist.low), float(dist.high))  # type: ignore[arg-type]
    else:
        value = rng.gauss(float(dist.mean), float(dist.std))  # type: ignore[arg-type]
        lo, hi = meta.get("minimum"), meta.get("maximum")
        value = min(hi, value) if hi is not None else value
        value = max(lo, value) if lo is not None else value
    if typ is int:
        return int(round(value))
    return round(value, 6)
