"""From the estimates of a lab's micrographs to a batch spec whose randomisation covers what was measured.

The batch starts from a preset (its geometry, inclusions and the randomisation of everything calibration does not
measure) and takes from the images:

- the frame: image size (data bar included), pixel size and bit depth of the most common frame, and the data bar;
- every estimated parameter: a ``uniform`` range from the smallest to the largest estimate, widened on each side by
  a tenth of that span and at least by the estimate's own uncertainty (:data:`WIDENING`), within the parameter's
  accepted range; the base value is the median;
- contrast 1 and brightness 0, not randomised: the greys are display greys (:mod:`analysis.calibrate_model`), so the
  images' gain and offset are in them (the grey ranges cover the images' spread);
- greys of phases the images do not show (FeAl, pores, precipitates, cracks) from a measured phase by the ratio of
  their physical defaults;
- the layer geometry so that the coating fits the frame: surface depth and Fe2Al5 thickness ranges from the
  segmentation, FeAl in the share of images that show it, the pore line's depth and width scaled with the thickness,
  and the roughness ranges capped where they would push the coating out of the frame;
- close-ups: where images of the batch's frame cut the coating (the surface above the top edge or the substrate
  below the bottom edge), the batch draws cut frames too (``imaging.partial_frame``), its surface depth reaching as
  far above the frame as the thickest drawn band needs to end where the images without the surface show its bottom
  (or to fill the frame, for images of the band alone); what a close-up does not show (thickness, FeAl) is unknown:
  it does not count in the ranges or the FeAl share, and the preset's range stays where no image shows it.

The render node's newer scan parameters are treated explicitly when the spec has them (:func:`_scan_notes`).
"""

from __future__ import annotations

import copy
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from analysis.calibrate import ImageEstimates
from semcoat.batch import BatchSpec, Distribution
from semcoat.errors import SemcoatError
from semcoat.params import SpecError, leaf_paths
from semcoat.presets import preset_batch
from semcoat.spec import MAX_FRAME_PIXELS, CoatingSpec, GreyLevelSpec

# Per parameter: (absolute, relative to the median) least widening of each side of the measured range; the span of
# the estimates widens each side by SPAN_WIDENING of itself. The floors are about each estimate's own error on renders
# of known parameters (bench and tests/blender_addon/test_calibrate_recovery.py).
WIDENING: dict[str, tuple[float, float]] = {
    "grey.resin": (0.01, 0.0),
    "grey.fe2al5": (0.01, 0.0),
    "grey.feal": (0.01, 0.0),
    "grey.substrate": (0.015, 0.0),
    "grey.pore": (0.01, 0.0),
    "grey.precipitate": (0.02, 0.0),
    "imaging.probe_fwhm_um": (0.0, 0.1),
    "imaging.probe_halo_fraction": (0.03, 0.0),
    "imaging.probe_halo_fwhm_um": (0.0, 0.2),
    "imaging.dose_electrons_per_px": (0.0, 0.1),
    "imaging.detector_noise_std": (0.002, 0.1),
    "imaging.line_noise_std": (0.002, 0.1),
    "imaging.shading_amplitude": (0.015, 0.0),
    "imaging.scratch_density_per_100um": (1.0, 0.0),
    "imaging.scratch_contrast": (0.01, 0.25),
    "layers.surface_depth_um": (0.5, 0.05),
    "layers.fe2al5_thickness_um": (1.0, 0.05),
    "layers.feal_thickness_um": (0.5, 0.1),
}
SPAN_WIDENING = 0.1
# Scale parameters spread over decades (a dose of 50 and one of 1500 in one set): widened by factors, not by a share
# of the span.
LOG_SCALE = ("imaging.dose_electrons_per_px", "imaging.probe_fwhm_um", "imaging.probe_halo_fwhm_um")
# Parameters the preset randomises that calibration replaces by neutral values (the measured greys hold them).
NEUTRAL = {"imaging.brightness": 0.0, "imaging.contrast": 1.0}
# Phases without a flat region or particle in the images: their grey follows a measured phase's by the ratio of the
# physical defaults.
DERIVED_GREYS = {"grey.feal": "grey.fe2al5", "grey.precipitate": "grey.fe2al5", "grey.pore": "grey.resin",
                 "grey.crack": "grey.resin"}
# Share of the usable frame height the deepest drawn coating may reach (the substrate must stay in the frame).
MAX_REACH_SHARE = 0.97
MAX_DRAWS_CHECKED = 2000


class CalibrationError(SemcoatError):
    """Calibration could not produce a batch (no usable image, or the measured coating cannot fit the frame)."""


@dataclass(frozen=True)
class MeasuredRange:
    """What the images gave for one parameter and the range written for it."""

    path: str
    values: tuple[float, ...]
    low: float
    high: float

    @property
    def median(self) -> float:
        """The median of the per-image estimates, inside the range."""
        return min(self.high, max(self.low, statistics.median(self.values)))


@dataclass
class CalibratedBatch:
    """The batch spec written, the ranges it took from the images and what was decided on the way."""

    batch: BatchSpec
    ranges: dict[str, MeasuredRange]
    notes: list[str] = field(default_factory=list)


def _bounds(path: str) -> tuple[float | None, float | None]:
    meta = leaf_paths(CoatingSpec)[path][1]
    return meta.get("minimum"), meta.get("maximum")


def measured_range(path: str, values: Sequence[float]) -> MeasuredRange:
    """The written range of one parameter: min..max of ``values`` widened (see :data:`WIDENING`; by factors for
    :data:`LOG_SCALE`), within the parameter's accepted range."""
    lo, hi = min(values), max(values)
    absolute, relative = WIDENING.get(path, (0.0, 0.1))
    if path in LOG_SCALE and lo > 0:
        factor = max((hi / lo) ** SPAN_WIDENING, 1.0 + relative)
        low, high = lo / factor, hi * factor
    else:
        margin = max(SPAN_WIDENING * (hi - lo), absolute, relative * abs(statistics.median(values)))
        low, high = lo - margin, hi + margin
    minimum, maximum = _bounds(path)
    if minimum is not None:
        low = max(low, minimum)
    if maximum is not None:
        high = min(high, maximum)
    return MeasuredRange(path, tuple(values), round(low, 6), round(max(high, low), 6))


def measured_ranges(estimates: Sequence[ImageEstimates]) -> dict[str, MeasuredRange]:
    """The range of every parameter at least one image gave (presence flags aside)."""
    values: dict[str, list[float]] = {}
    for est in estimates:
        for path, value in est.values.items():
            values.setdefault(path, []).append(value)
    leaves = leaf_paths(CoatingSpec)
    return {path: measured_range(path, v) for path, v in sorted(values.items())
            if path in leaves and leaves[path][0] in (int, float)}


def _set(batch: BatchSpec, path: str, value: object) -> None:
    section, leaf = path.split(".", 1)
    setattr(getattr(batch.base, section), leaf, value)


def _get(batch: BatchSpec, path: str) -> float:
    section, leaf = path.split(".", 1)
    return float(getattr(getattr(batch.base, section), leaf))


def _high(batch: BatchSpec, path: str) -> float:
    """The largest value image draws of ``path`` can take."""
    dist = batch.randomize.get(path)
    if dist is None:
        return _get(batch, path)
    if dist.kind == "uniform":
        return float(dist.high)  # type: ignore[arg-type]
    if dist.kind == "normal":
        return float(dist.mean) + 4.0 * float(dist.std)  # type: ignore[arg-type]
    return float(max(v for v in dist.values or [0.0]))


def _write_range(batch: BatchSpec, r: MeasuredRange) -> None:
    batch.randomize[r.path] = Distribution("uniform", low=r.low, high=r.high)
    _set(batch, r.path, round(r.median, 6))


def _frame_of(e: ImageEstimates) -> tuple[int, int, float, int]:
    return e.width_px, e.height_px, round(e.pixel_size_um, 6), e.bit_depth


def _chosen_frame(estimates: Sequence[ImageEstimates]) -> tuple[int, int, float, int]:
    """The most common frame of the images (the first seen among equals): the one the batch renders."""
    return Counter(_frame_of(e) for e in estimates).most_common(1)[0][0]


def _frame(batch: BatchSpec, estimates: Sequence[ImageEstimates], notes: list[str]) -> None:
    frames = Counter(_frame_of(e) for e in estimates)
    chosen = _chosen_frame(estimates)
    n = frames[chosen]
    width, height, pixel, bits = chosen
    if len(frames) > 1:
        others = ", ".join(f"{Path(e.source).name} ({e.width_px}x{e.height_px} px, {e.pixel_size_um:.6g} um/px, "
                           f"{e.bit_depth} bit)" for e in estimates if _frame_of(e) != chosen)
        notes.append(f"frame: {n} of {len(estimates)} images are {width}x{height} px at {pixel:g} um/px, {bits} bit: "
                     f"the batch renders that frame (one frame per batch); {others} count in the ranges")
    bars = [e.databar_height_px for e in estimates if _frame_of(e) == chosen]
    if width * height > MAX_FRAME_PIXELS:
        scale = (MAX_FRAME_PIXELS / (width * height)) ** 0.5
        notes.append(f"frame: {width}x{height} px is more than one render may hold ({MAX_FRAME_PIXELS} px); the batch "
                     f"renders {int(width * scale)}x{int(height * scale)} px at the same pixel size")
        bars = [int(b * scale) for b in bars]
        width, height = int(width * scale), int(height * scale)
    img = batch.base.imaging
    img.width_px, img.height_px, img.pixel_size_um, img.bit_depth = width, height, pixel, bits
    with_bar = [b for b in bars if b > 0]
    img.data_bar = len(with_bar) * 2 > len(bars)
    if img.data_bar:
        img.data_bar_height_px = int(min(max(8, statistics.median(with_bar)), height // 2 - 1, 1024))


def _greys(batch: BatchSpec, ranges: dict[str, MeasuredRange], notes: list[str]) -> None:
    defaults = GreyLevelSpec()
    for path, source in DERIVED_GREYS.items():
        if path in ranges or source not in ranges:
            continue
        ratio = getattr(defaults, path.split(".")[1]) / getattr(defaults, source.split(".")[1])
        r = ranges[source]
        low, high = min(1.0, r.low * ratio), min(1.0, r.high * ratio)
        if path == "grey.feal" and "grey.substrate" in ranges:  # between Fe2Al5 and the substrate, as in physics
            sub = ranges["grey.substrate"]
            share = (defaults.feal - defaults.fe2al5) / (defaults.substrate - defaults.fe2al5)
            low, high = r.low + share * (sub.low - r.low), r.high + share * (sub.high - r.high)
        derived = MeasuredRange(path, (), round(low, 6), round(max(low, high), 6))
        batch.randomize[path] = Distribution("uniform", low=derived.low, high=derived.high)
        _set(batch, path, round(0.5 * (derived.low + derived.high), 6))
        notes.append(f"{path}: not measured (no such phase wide enough in the images); {derived.low:.3f}.."
                     f"{derived.high:.3f} from {source} by the ratio of their physical defaults")


def _geometry(batch: BatchSpec, estimates: Sequence[ImageEstimates], ranges: dict[str, MeasuredRange],
              notes: list[str]) -> None:
    lay = batch.base.layers
    old_low = float(batch.randomize["layers.fe2al5_thickness_um"].low or lay.fe2al5_thickness_um) \
        if "layers.fe2al5_thickness_um" in batch.randomize else lay.fe2al5_thickness_um
    for path in ("layers.surface_depth_um", "layers.fe2al5_thickness_um", "layers.feal_thickness_um"):
        if path in ranges:
            _write_range(batch, ranges[path])
    flags = [e.values["layers.feal_present"] > 0.5 for e in estimates if "layers.feal_present" in e.values]
    if flags:
        shown = sum(flags)
        if shown in (0, len(flags)):
            lay.feal_present = shown > 0
            batch.randomize.pop("layers.feal_present", None)
        else:
            batch.randomize["layers.feal_present"] = Distribution("choice", values=[True] * shown + [False] * (
                len(flags) - shown))
            lay.feal_present = True
    if "layers.fe2al5_thickness_um" in ranges:
        # The pore line keeps its relative depth in the layer (the preset's draws fit its own thickness range).
        scale = ranges["layers.fe2al5_thickness_um"].low / max(old_low, 1e-6)
        for path in ("pore_line.depth_um", "pore_line.width_um"):
            value = _get(batch, path) * scale
            _set(batch, path, round(max(value, 0.1), 4))
            dist = batch.randomize.get(path)
            if dist is not None and dist.kind == "uniform":
                low, high = float(dist.low or 0.0), float(dist.high or 0.0)
                batch.randomize[path] = Distribution("uniform", low=round(max(low * scale, 0.1), 4),
                                                     high=round(max(high * scale, 0.1), 4))
        notes.append(f"pore_line.depth_um, width_um: the preset's, scaled by {scale:.3g} with the Fe2Al5 thickness")
    thickness = ranges.get("layers.fe2al5_thickness_um")
    _cut_frames(batch, estimates, ranges, notes)
    _fit_frame(batch, notes, min(thickness.values) if thickness else 0.5 * _get(batch, "layers.fe2al5_thickness_um"))


def _cut_frames(batch: BatchSpec, estimates: Sequence[ImageEstimates], ranges: dict[str, MeasuredRange],
                notes: list[str]) -> None:
    """Let the batch draw frames that cut the coating when images of its frame do (see the module docstring)."""
    chosen = _chosen_frame(estimates)
    in_frame = [e for e in estimates if _frame_of(e) == chosen]
    cut = [e for e in in_frame if e.cuts_coating]
    if not cut or "imaging.partial_frame" not in leaf_paths(CoatingSpec):
        return
    img, lay = batch.base.imaging, batch.base.layers
    img.partial_frame = True
    batch.randomize.pop("imaging.partial_frame", None)
    names = ", ".join(Path(e.source).name for e in cut[:5]) + (" ..." if len(cut) > 5 else "")
    notes.append(f"imaging.partial_frame: true: {len(cut)} of the {len(in_frame)} images of the batch's frame cut "
                 f"the coating ({names}); what they do not show (thickness, FeAl, surface depth) is not in the ranges")
    if "layers.fe2al5_thickness_um" not in ranges:
        notes.append("layers.fe2al5_thickness_um: the preset's range (no image shows the whole band)")
    surface = ranges.get("layers.surface_depth_um")
    # No image shows the surface: it stays above the frame (at most at its top edge), as in every image.
    high = surface.high if surface is not None else 0.0
    low = surface.low if surface is not None else high
    hidden = [e for e in cut if not e.shows_surface]
    if hidden:
        # The surface as far above the frame as the thickest drawn band needs to end where those images show its
        # bottom, or to fill the frame where they show neither edge.
        thickest_um = _high(batch, "layers.fe2al5_thickness_um")
        usable_um = (img.height_px - (img.data_bar_height_px if img.data_bar else 0)) * img.pixel_size_um
        lowest = min(e.details.get("band_bottom_depth_um", usable_um) - thickest_um for e in hidden)
        low = min(low, lowest - WIDENING["layers.surface_depth_um"][0], high - 1.0)
        notes.append(f"layers.surface_depth_um: {low:.1f}..{high:.1f} um (negative: above the top edge): down to "
                     f"where a band of up to {thickest_um:.1f} um ends where the images without the surface show its "
                     "bottom (or fills the frame)")
    batch.randomize["layers.surface_depth_um"] = Distribution("uniform", low=round(low, 2), high=round(high, 2))
    lay.surface_depth_um = round(min(high, max(low, lay.surface_depth_um)), 2)


# Parameters calibration does not measure that push the coating towards the frame's edges: the preset's guesses give
# way first (scaled down to at most MIN_UNMEASURED_SHARE of themselves), then the measured thickness range's top.
UNMEASURED_REACH = ("layers.fe2al5_thickness_variation_um", "layers.surface_roughness_amplitude_um",
                    "layers.interface_roughness_amplitude_um", "imaging.tilt_deg")
DEEPENING = ("layers.surface_depth_um", "layers.fe2al5_thickness_um", "layers.feal_thickness_um",
             *UNMEASURED_REACH)
SHRINK_STEPS = (1.0, 0.75, 0.5, 0.25)
FRAME_PROBLEM_PATHS = ("layers", "layers.surface_depth_um")


def _extreme(batch: BatchSpec, path: str, deepest: bool) -> float:
    """The draw of ``path`` that puts the coating deepest (``deepest``) or its surface highest: the largest value
    (of the absolute value for a signed tilt), except the surface depth's smallest for the highest surface."""
    dist = batch.randomize.get(path)
    if path == "layers.surface_depth_um" and not deepest:
        if dist is not None and dist.kind == "uniform":
            return float(dist.low)  # type: ignore[arg-type]
        return _get(batch, path) if dist is None or dist.kind != "choice" else float(min(dist.values or [0.0]))
    if path == "imaging.tilt_deg":
        if dist is None:
            return abs(_get(batch, path))
        if dist.kind == "uniform":
            return max(abs(float(dist.low)), abs(float(dist.high)))  # type: ignore[arg-type]
        return abs(_high(batch, path))
    return _high(batch, path)


def _frame_problems(batch: BatchSpec) -> list[str]:
    """What the spec's own check says about the deepest and the highest coating the batch can draw."""
    leaves = leaf_paths(CoatingSpec)
    problems = []
    for deepest in (True, False):
        worst = copy.deepcopy(batch.base)
        for path in DEEPENING:
            if path in leaves:
                section, leaf = path.split(".", 1)
                setattr(getattr(worst, section), leaf, _extreme(batch, path, deepest))
        worst.layers.feal_present = worst.layers.feal_present or "layers.feal_present" in batch.randomize
        problems += [str(e) for e in worst.consistency_errors() if e.path in FRAME_PROBLEM_PATHS]
    return problems


def _scale(batch: BatchSpec, path: str, factor: float) -> None:
    """Scale ``path``'s base value and its uniform range's bounds by ``factor``."""
    _set(batch, path, round(_get(batch, path) * factor, 4))
    dist = batch.randomize.get(path)
    if dist is not None and dist.kind == "uniform":
        batch.randomize[path] = Distribution("uniform", low=round(float(dist.low) * factor, 4),  # type: ignore[arg-type]
                                             high=round(float(dist.high) * factor, 4))  # type: ignore[arg-type]


def _fit_frame(batch: BatchSpec, notes: list[str], thinnest_um: float) -> None:
    """Keep every drawn coating inside the frame, as the spec's own check counts it (surface depth, layers,
    roughness, thickness variation, tilt): shrink the preset's guesses first, then the Fe2Al5 thickness range's top,
    never below ``thinnest_um`` (the thinnest measured: the range must still cover a measured coating)."""
    if not _frame_problems(batch):
        return
    leaves = leaf_paths(CoatingSpec)
    unmeasured = [p for p in UNMEASURED_REACH if p in leaves]
    original = copy.deepcopy(batch)
    for factor in SHRINK_STEPS[1:]:
        for path in unmeasured:
            _set(batch, path, _get(original, path))
            if path in original.randomize:
                batch.randomize[path] = copy.deepcopy(original.randomize[path])
            _scale(batch, path, factor)
        if not _frame_problems(batch):
            notes.append(f"{', '.join(unmeasured)}: the preset's scaled by {factor} so every drawn coating stays in "
                         "the frame")
            return
    notes.append(f"{', '.join(unmeasured)}: the preset's scaled by {SHRINK_STEPS[-1]}")
    path = "layers.fe2al5_thickness_um"
    dist = batch.randomize.get(path)
    low = float(dist.low) if dist is not None and dist.kind == "uniform" else _get(batch, path)  # type: ignore[arg-type]
    high = _high(batch, path)
    for _ in range(80):  # the thickness range's top down, in steps of 2.5 % of its bottom
        high -= 0.025 * low
        if high < thinnest_um:
            raise CalibrationError(
                "the measured coating cannot fit the frame: " + "; ".join(_frame_problems(batch)[:1])
                + "; calibrate on images whose frame shows the substrate")
        batch.randomize[path] = Distribution("uniform", low=round(min(low, high), 4), high=round(high, 4))
        batch.base.layers.fe2al5_thickness_um = round(min(batch.base.layers.fe2al5_thickness_um, high), 4)
        if not _frame_problems(batch):
            notes.append(f"{path}: capped at {high:.1f} um so every drawn coating stays in the frame")
            return
    raise CalibrationError("the measured coating cannot fit the frame: " + "; ".join(_frame_problems(batch)[:1]))


def _scan_notes(batch: BatchSpec, sources: Sequence[str], ranges: dict[str, MeasuredRange],
                notes: list[str]) -> None:
    """The render node's frame-averaging, line-noise and JPEG parameters, where the spec has them: the dose and the
    noise are measured on the final images, so frames are not averaged again (``frame_count`` 1); the line noise
    measured is the scan lines' offsets, written as noise as long as several frame widths (shorter line noise shows
    as pixel noise, in the detector noise); JPEG saving only for JPEG inputs (its quality is not estimated)."""
    leaves = leaf_paths(CoatingSpec)
    jpeg = any(Path(s).suffix.lower() in (".jpg", ".jpeg") for s in sources)
    settings: list[tuple[str, object, str]] = [
        ("imaging.frame_count", 1, "the dose and noise are the final images' (averaging included)"),
        ("imaging.jpeg_quality", 90 if jpeg else 0,
         "the inputs are JPEG files (quality not estimated)" if jpeg else "the inputs are not JPEG files"),
    ]
    if "imaging.line_noise_std" in ranges:
        r = ranges["imaging.line_noise_std"]
        notes.append(f"imaging.line_noise_std: {r.low:.4g}..{r.high:.4g} from the scan lines' offsets")
        settings.append(("imaging.line_noise_length_px", float(4 * batch.base.imaging.width_px),
                         "an offset per scan line, as measured; shorter line noise is in the detector noise"))
    else:
        settings.append(("imaging.line_noise_std", 0.0, "not measured"))
    for path, value, why in settings:
        if path in leaves:
            batch.randomize.pop(path, None)
            _set(batch, path, value)
            notes.append(f"{path}: {value} ({why})")


def build_batch(estimates: Sequence[ImageEstimates], preset: str, count: int = 100, seed: int = 0,
                name: str = "calibrated") -> CalibratedBatch:
    """The batch spec calibrated on ``estimates`` (see the module docstring).

    Raises
    ------
    CalibrationError
        When there is no estimate, or the measured coating cannot fit the frame.
    InvalidArgument
        For an unknown preset.
    """
    if not estimates:
        raise CalibrationError("no usable image: nothing to calibrate on")
    batch = copy.deepcopy(preset_batch(preset, count=count, seed=seed))
    batch.name = name
    notes: list[str] = [f"base: preset {preset} (geometry, inclusions and what calibration does not measure)"]
    ranges = measured_ranges(estimates)
    scratches = ranges.get("imaging.scratch_density_per_100um")
    if scratches is not None and max(scratches.values) == 0:
        # Not seen is not none: grooves a few percent deep, blurred by the probe, hide in the noise.
        del ranges["imaging.scratch_density_per_100um"]
        ranges.pop("imaging.scratch_contrast", None)
        notes.append("imaging.scratch_density_per_100um, scratch_contrast: no scratch stood out of the noise in any "
                     "image (faint ones hide in it): the preset's ranges kept")
    _frame(batch, estimates, notes)
    for path, value in NEUTRAL.items():
        batch.randomize.pop(path, None)
        _set(batch, path, value)
    notes.append("imaging.contrast 1, imaging.brightness 0: the greys are display greys (the images' gain and offset "
                 "are in them)")
    for path, r in ranges.items():
        if path.startswith(("grey.", "imaging.")):
            _write_range(batch, r)
    _greys(batch, ranges, notes)
    _geometry(batch, estimates, ranges, notes)
    _scan_notes(batch, [e.source for e in estimates], ranges, notes)
    try:
        batch.validate()
        for index in range(min(batch.count, MAX_DRAWS_CHECKED)):
            batch.sample(index)
    except SpecError as exc:
        raise CalibrationError(f"the calibrated batch does not validate ({exc}); this is a calibration bug or an "
                               "image set whose coatings do not fit their frame") from exc
    return CalibratedBatch(batch, ranges, notes)
