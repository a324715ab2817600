"""The text a calibration prints: what was measured per image, and the ranges written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from analysis.calibrate import ImageEstimates
from analysis.calibrate_spec import CalibratedBatch

# (column title, spec path or details key, format): the figures a lab checks first.
COLUMNS = (
    ("um/px", "pixel_size_um", "{:.4g}"),
    ("bar", "databar_height_px", "{:d}"),
    ("resin", "grey.resin", "{:.3f}"),
    ("Fe2Al5", "grey.fe2al5", "{:.3f}"),
    ("FeAl", "grey.feal", "{:.3f}"),
    ("steel", "grey.substrate", "{:.3f}"),
    ("precip", "grey.precipitate", "{:.3f}"),
    ("grain %", "spreads", "{}"),
    ("blur um", "imaging.probe_fwhm_um", "{:.3f}"),
    ("surf/intf", "blur_edges", "{}"),
    ("halo", "imaging.probe_halo_fraction", "{:.2f}"),
    ("halo um", "imaging.probe_halo_fwhm_um", "{:.2f}"),
    ("dose e-", "imaging.dose_electrons_per_px", "{:.0f}"),
    ("det.noise", "imaging.detector_noise_std", "{:.4f}"),
    ("line", "imaging.line_noise_std", "{:.4f}"),
    ("shading", "imaging.shading_amplitude", "{:.3f}"),
    ("scr/100um", "imaging.scratch_density_per_100um", "{:.1f}"),
)


def _cell(est: ImageEstimates, key: str, fmt: str) -> str:
    if key == "pixel_size_um":
        return fmt.format(est.pixel_size_um)
    if key == "databar_height_px":
        return fmt.format(est.databar_height_px)
    if key == "spreads":  # each phase's grain spread around its grey, percent: Fe2Al5 / substrate
        spreads = [est.details.get(f"spread_{name}") for name in ("fe2al5", "substrate")]
        return "/".join("-" if v is None else f"{100 * v:.1f}" for v in spreads)
    if key == "blur_edges":
        edges = [est.details.get(f"core_fwhm_um_{kind}") for kind in ("surface", "interface")]
        return "/".join("-" if v is None else f"{v:.2f}" for v in edges)
    value = est.values.get(key)
    return "-" if value is None else fmt.format(value)


def table(estimates: Sequence[ImageEstimates]) -> str:
    """One row per image: the frame and the main estimates (``-``: not estimated, see the warnings)."""
    rows = [["image", *(title for title, _k, _f in COLUMNS)]]
    for est in estimates:
        rows.append([Path(est.source).name, *(_cell(est, key, fmt) for _t, key, fmt in COLUMNS)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in rows)


def ranges_text(result: CalibratedBatch) -> str:
    """The ranges written (from how many images each), then the notes on what was decided."""
    lines = ["ranges written (uniform; measured min..max widened):"]
    for path, r in result.ranges.items():
        dist = result.batch.randomize.get(path)
        written = f"{dist.low:.4g}..{dist.high:.4g}" if dist is not None and dist.kind == "uniform" else "(base)"
        lines.append(f"  {path:38s} {written:22s} measured {min(r.values):.4g}..{max(r.values):.4g} "
                     f"in {len(r.values)} image(s)")
    img = result.batch.base.imaging
    bar = f", data bar {img.data_bar_height_px} px" if img.data_bar else ", no data bar"
    lines.append(f"frame: {img.width_px}x{img.height_px} px at {img.pixel_size_um:g} um/px, {img.bit_depth} bit{bar}")
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)
