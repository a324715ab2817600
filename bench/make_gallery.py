"""Render the README's gallery: each preset, and each realism feature of issue 11 switched on alone, beside its mask.

    .venv/bin/python bench/make_gallery.py [--out docs/gallery] [--seed 0] [--readme README.md] [--only NAME ...]

Each panel is one image rendered by the render node (Blender; the PNG `semcoat render` writes), beside its exact mask
over it in the colours of `semcoat.classes` (`analysis.predict.overlay`, as `make_example.py`). A preset panel shows
the whole 1024x768 frame of a preset batch's first image (seed ``--seed``) at 1/4 size; a feature panel shows a
384x288 px crop at 1/2 size of the 20h_650C preset with that feature alone switched on (the preset's base coating,
the presets' mean display, realism otherwise off), where the feature shows: the surface, the layer, the bottom
interface or the steel (whole frames for tilt and framing), along the surface where the feature differs most from the
same coating without it (rendered once, same seed). A feature whose parameters the spec does not hold (yet) is
skipped and named.

Writes ``<out>/<name>.png`` (the render, 8-bit grey, reduced by area averaging) and ``<out>/<name>_mask.png`` (the
overlay over a lightly smoothed copy, 32 colours, 8-bit indexed: noise is what makes a PNG big, and the overlay is
there to show where the classes lie), removes other PNGs there, and rewrites the table between the gallery markers of
``--readme`` (when they are there). About 25 KB per panel.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from analysis.predict import overlay
from semcoat import classes
from semcoat.batch import BatchSpec
from semcoat.params import leaf_paths
from semcoat.presets import PRESETS, preset, preset_batch
from semcoat.spec import CoatingSpec

CROP_W, CROP_H = 384, 288
CROP_SCALE = 0.5  # a crop shown at 192x144
WHOLE_SCALE = 0.25  # a 1024x768 frame shown at 256x192
OVERLAY_SMOOTH_PX = 1.0  # sigma of the blur under the overlay's colours
OVERLAY_COLOURS = 32
README_START = "<!-- gallery: made by bench/make_gallery.py, do not edit by hand -->"
README_END = "<!-- end of gallery -->"
# The presets' mean display (presets.py): the steel near 0.75 of full scale.
DISPLAY = {"imaging.contrast": 0.8, "imaging.brightness": -0.08}


@dataclass(frozen=True)
class Panel:
    """One gallery image: the feature's ``overrides`` (parameter path -> value) on the feature base with ``setting``
    (what frames the panel, in the comparison render without the feature too), shown around ``where``."""

    name: str
    title: str
    overrides: dict[str, Any] = field(default_factory=dict)
    where: str = "layer"  # mount | surface | layer | interface | steel | whole
    setting: dict[str, Any] = field(default_factory=dict)


FEATURES = (
    # Issue 11 points 1-3: precipitates by phase and shape, cracks, resolution.
    Panel("cracks", "Cracks", {"cracks.density_per_100um": 4.0, "cracks.width_um": 0.8}, "surface"),
    Panel("precipitate_phases", "Precipitate phases (Al8Cr5 ~ Fe2Al5 grey, Cr2Al)",
          {"precipitates.al8cr5_share": 1.0, "precipitates.cr2al_share": 1.0, "precipitates.cr23c6_share": 0.0}),
    Panel("precipitate_groups", "Precipitate clusters and strings", {"precipitates.cluster_fraction": 0.8}),
    Panel("precipitate_cubes", "Cube-like precipitates", {"precipitates.cube_fraction": 0.8}),
    Panel("pullout_pits", "Pull-out pits (pores)", {"precipitates.pullout_fraction": 0.4}),
    Panel("specks", "Sub-resolution specks", {"precipitates.speck_density_per_um2": 10.0}),
    Panel("probe_halo", "Probe halo (1.0 um core, 30 % in a 5 um halo)",
          {"imaging.probe_fwhm_um": 1.0, "imaging.probe_halo_fraction": 0.3, "imaging.probe_halo_fwhm_um": 5.0},
          "surface"),
    # Point 4: the bottom interface.
    Panel("substrate_blend", "FeAl blending into the steel (3 um)", {"grey.substrate_blend_um": 3.0}, "interface"),
    Panel("sub_bands", "FeAl2 / Fe3Al sub-bands",
          {"layers.feal2_thickness_um": 1.0, "layers.fe3al_thickness_um": 1.5}, "interface"),
    Panel("kirkendall", "Kirkendall voids", {"pores.kirkendall_per_100um": 10.0}, "interface"),
    Panel("patchy_feal", "Patchy FeAl", {"layers.feal_coverage": 0.5}, "interface"),
    # Point 5: pores.
    Panel("irregular_pores", "Irregular and merged pores",
          {"pores.irregularity": 1.0, "pores.merged_fraction": 0.5}),
    Panel("outer_pores", "Pores crowding to the outer layer",
          {"pores.outer_weighting": 1.0, "pores.area_fraction_pct": 4.0}, "surface"),
    Panel("pore_interiors", "Pore interiors up to resin grey, bright rims",
          {"grey.pore_fill_max": 1.0, "grey.pore_rim": 0.12, "grey.pore_rim_width_um": 0.4}),
    # Point 6: the mount and the top edge.
    Panel("edge_rounding", "Edge rounding (3 um)", {"imaging.edge_rounding_um": 3.0,
                                                    "imaging.edge_rounding_brightness": 0.35}, "surface"),
    Panel("charging", "Charging streaks", {"imaging.charging_amplitude": 0.12, "imaging.charging_line_fraction": 0.8},
          "surface", {"layers.surface_roughness_amplitude_um": 3.0}),
    Panel("plating", "Edge-retention plating", {"layers.plating_thickness_um": 4.0}, "mount"),
    Panel("shrinkage_gap", "Shrinkage gap", {"layers.shrinkage_gap_um": 4.0}, "mount"),
    Panel("resin_filler", "Resin filler specks", {"layers.resin_filler_per_100um2": 3.0}, "mount"),
    # Point 7: scale and framing.
    Panel("tilt", "Tilt (4 deg)", {"imaging.tilt_deg": 4.0}, "whole", {"layers.surface_depth_um": 22.0}),
    Panel("close_up", "Close-up framing (0.06 um/px, the frame cuts the coating)",
          {"imaging.pixel_size_um": 0.06, "imaging.partial_frame": True, "layers.surface_depth_um": 5.0}, "whole"),
    # Point 8: the steel.
    Panel("martensite", "Martensite laths in the steel", {"grey.steel_lath_contrast": 0.08}, "steel"),
    Panel("steel_particles", "Bright particles in the steel",
          {"grey.steel_particle_density_per_100um2": 6.0, "grey.steel_particle_radius_um": 0.2}, "steel"),
    # Point 9: surface-side phases.
    Panel("feal3_band", "FeAl3 band", {"layers.feal3_thickness_um": 4.0}, "surface"),
    Panel("slurry_particles", "Leftover slurry particles", {"layers.slurry_particles_per_100um": 3.0}, "mount",
          {"layers.surface_depth_um": 30.0}),
    # Point 10: noise.
    Panel("low_dose", "Low dose (30 e-/px)", {"imaging.dose_electrons_per_px": 30.0}),
    Panel("line_noise", "Line-correlated noise", {"imaging.line_noise_std": 0.025,
                                                  "imaging.line_noise_length_px": 150.0}),
    Panel("frame_averaging", "8 frames averaged (1 px jitter)", {"imaging.frame_count": 8,
                                                                 "imaging.scan_line_jitter_px": 1.0}),
    Panel("jpeg", "Saved as JPEG (quality 40)", {"imaging.jpeg_quality": 40}),
)


def feature_spec(panel: Panel, feature: bool = True) -> CoatingSpec:
    """The 20h_650C preset's coating with the presets' mean display, ``panel``'s setting and (with ``feature``) its
    overrides (validated)."""
    data = preset("20h_650C").to_dict()
    for path, value in {**DISPLAY, **panel.setting, **(panel.overrides if feature else {})}.items():
        section, leaf = path.split(".", 1)
        data[section][leaf] = value
    return CoatingSpec.from_dict(data, source=f"gallery panel {panel.name}")


def _band_rows(mask: np.ndarray, where: str) -> int:
    """The row to centre a crop on: the surface, the middle of the layer, the bottom interface or the steel."""
    height = mask.shape[0]
    coating_rows = np.flatnonzero(np.isin(mask, (classes.FE2AL5, classes.PORE, classes.PRECIPITATE)).any(axis=1))
    steel_rows = np.flatnonzero((mask == classes.SUBSTRATE).mean(axis=1) > 0.5)
    surface = int(np.median(np.argmax(mask != classes.BACKGROUND, axis=0)))
    interface = int(steel_rows[0]) if steel_rows.size else height
    centre = {
        "mount": surface - CROP_H // 6,
        "surface": surface + CROP_H // 6,
        "layer": (surface + interface) // 2 if coating_rows.size else height // 2,
        "interface": interface,
        "steel": interface + CROP_H // 2 + 20,
    }[where]
    return int(np.clip(centre, CROP_H // 2, height - CROP_H // 2))


def _best_left(grey: np.ndarray, plain: np.ndarray | None, top: int) -> int:
    """The crop's left column: where the render differs most from the same coating without the feature (both blurred,
    so their noise does not count); the centre without a plain render or a difference."""
    centre = (grey.shape[1] - CROP_W) // 2
    if plain is None or plain.shape != grey.shape:
        return centre
    rows = slice(top, top + CROP_H)
    diff = np.abs(cv2.GaussianBlur(grey[rows].astype(np.float32), (0, 0), 4.0)
                  - cv2.GaussianBlur(plain[rows].astype(np.float32), (0, 0), 4.0)).sum(axis=0)
    window = np.convolve(diff, np.ones(CROP_W), mode="valid")  # window[k]: columns k .. k + CROP_W - 1
    return int(np.argmax(window)) if window.max() > 1.5 * window[centre] + 1e-6 else centre


def panel_pictures(grey: np.ndarray, mask: np.ndarray, where: str,
                   plain: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the render, its overlay: RGB uint8) cropped around ``where`` (along the surface where it differs most from
    ``plain``, the render without the feature) or the whole frame, reduced for the page."""
    if where == "whole":
        image, labels, scale = grey, mask, WHOLE_SCALE
    else:
        top = _band_rows(mask, where) - CROP_H // 2
        left = _best_left(grey, plain, top)
        image, labels = grey[top:top + CROP_H, left:left + CROP_W], mask[top:top + CROP_H, left:left + CROP_W]
        scale = CROP_SCALE
    size = (int(round(image.shape[1] * scale)), int(round(image.shape[0] * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small_labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    return small, overlay(cv2.GaussianBlur(small, (0, 0), OVERLAY_SMOOTH_PX), small_labels)


def write_panel(out: Path, name: str, render_grey: np.ndarray, overlay_rgb: np.ndarray) -> list[Path]:
    """Write ``name.png`` (grey) and ``name_mask.png`` (indexed colours); the paths written."""
    from PIL import Image

    grey_path, mask_path = out / f"{name}.png", out / f"{name}_mask.png"
    cv2.imwrite(str(grey_path), render_grey, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    indexed = Image.fromarray(overlay_rgb).quantize(OVERLAY_COLOURS, dither=Image.Dither.NONE)
    indexed.save(mask_path, format="PNG", optimize=True)
    return [grey_path, mask_path]


def render(spec: CoatingSpec, renderer: Any, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(8-bit grey image, mask) of ``spec`` rendered as image 0 of a one-image batch."""
    from blender_addon.render_node.batch_render import PhaseTimes, render_sample

    batch = BatchSpec(name=name, count=1, seed=seed, base=spec)
    image_png, mask_png, _, _ = render_sample(batch, 0, spec, renderer, PhaseTimes())
    grey = cv2.imdecode(np.frombuffer(image_png, np.uint8), cv2.IMREAD_UNCHANGED)
    if grey.dtype != np.uint8:
        grey = (grey // 257).astype(np.uint8)
    return grey, cv2.imdecode(np.frombuffer(mask_png, np.uint8), cv2.IMREAD_UNCHANGED)


def readme_table(entries: list[tuple[str, str]], out: Path, columns: int = 2) -> str:
    """The markdown table of the panels (``columns`` per row), image paths relative to the repository root."""
    head = "| " + " | ".join([" "] * columns) + " |\n|" + "---|" * columns + "\n"
    cells = [f"![{title}]({(out / f'{name}.png').as_posix()})![its mask]({(out / f'{name}_mask.png').as_posix()})"
             f"<br>{title}" for name, title in entries]
    cells += [" "] * (-len(cells) % columns)
    rows = ["| " + " | ".join(cells[i:i + columns]) + " |" for i in range(0, len(cells), columns)]
    return head + "\n".join(rows) + "\n"


def update_readme(readme: Path, table: str) -> bool:
    """Replace the text between the gallery markers of ``readme`` with ``table``; False when the markers are absent."""
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return False
    before, rest = text.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    readme.write_text(f"{before}{README_START}\n{table}{README_END}{after}", encoding="utf-8")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/gallery")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readme", default="README.md", help="rewrite the gallery table between its markers here")
    parser.add_argument("--only", nargs="*", help="render only these panels (the README table is left alone)")
    args = parser.parse_args()

    from blender_addon.render_node.renderer import Renderer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    known = set(leaf_paths(CoatingSpec))
    panels = [Panel(name, f"Preset {name}", where="whole") for name in PRESETS] + list(FEATURES)
    entries: list[tuple[str, str]] = []
    written: set[str] = set()
    renderer = Renderer()
    plains: dict[str, np.ndarray] = {}  # the render without the feature, per setting
    try:
        for panel in panels:
            missing = [p for p in {**panel.overrides, **panel.setting} if p not in known]
            if missing:
                print(f"skipped {panel.name}: the spec has no {', '.join(missing)}")
                continue
            entries.append((panel.name, panel.title))
            if args.only and panel.name not in args.only:
                continue
            plain = None
            if panel.name in PRESETS:
                batch = preset_batch(panel.name, count=1, seed=args.seed)
                grey, mask = render(batch.sample(0), renderer, args.seed, panel.name)
            else:
                key = repr(sorted(panel.setting.items()))
                if key not in plains and panel.where != "whole":
                    plains[key] = render(feature_spec(panel, feature=False), renderer, args.seed, "plain")[0]
                plain = plains.get(key)
                grey, mask = render(feature_spec(panel), renderer, args.seed, panel.name)
            paths = write_panel(out, panel.name, *panel_pictures(grey, mask, panel.where, plain))
            written.update(p.name for p in paths)
            print(f"{panel.name}: {sum(p.stat().st_size for p in paths) / 1024:.0f} KB")
    finally:
        renderer.close()
    if args.only:
        return
    for stale in out.glob("*.png"):
        if stale.name not in written:
            stale.unlink()
    total = sum(p.stat().st_size for p in out.glob("*.png"))
    print(f"{len(written) // 2} panels, {total / 1024:.0f} KB in all")
    readme = Path(args.readme)
    if readme.is_file() and update_readme(readme, readme_table(entries, out)):
        print(f"{readme}: gallery table rewritten")
    elif readme.is_file():
        print(f"{readme}: no gallery markers; the table is:\n{readme_table(entries, out)}", file=sys.stderr)


if __name__ == "__main__":
    main()
