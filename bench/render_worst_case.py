"""The most work one image may ask for: specs that pass validation at the bounds of ``semcoat.spec``.

    .venv/bin/python bench/render_worst_case.py [--case NAME ...] [--threads 0] [--seed 1]

Each case runs in a fresh process (so its peak memory is its own) and prints, per image: seconds of geometry,
scene update, render (the engine auto picks, with any read-back), image formation (specimen texture, artefacts, SEM
image), truth and PNG encoding; the inclusions drawn; the longest stretch between two stop checks (how late a Ctrl-C
can be honoured); and the process's peak resident memory (VmHWM) with the part the image added on top of a started
renderer.

Cases:
  inclusions  1024x768 px; scattered pores, pore-line pores and precipitates each just under
              MAX_INCLUSIONS_PER_IMAGE, at their area-fraction maxima, with the radii that reach the cap, elongated and
              spread in size (the hardest spec for placement found so far)
  round       as ``inclusions`` with round inclusions of one size (the most inclusions that fit)
  frame       the largest common frame MAX_FRAME_PIXELS allows, of a preset-like coating (preset area fractions,
              ~500 inclusions of each kind: the preset radii would exceed the cap in a frame this large)
  both        the largest frame and every kind of inclusion just under the cap
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = ("inclusions", "round", "frame", "both")
CAP_SHARE = 0.998  # just under the cap
# Common SEM frames, largest first: the "frame" and "both" cases take the largest that MAX_FRAME_PIXELS allows.
LARGE_FRAMES = ((6144, 4096), (4096, 3072), (3072, 2304), (2048, 1536))


def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _base(width_px: int, height_px: int, pixel_um: float) -> dict[str, Any]:
    """A coating filling most of the frame: 8 % resin, up to 75 % Fe2Al5 with a wide pore line, then the substrate."""
    height_um = height_px * pixel_um
    thick = min(0.75 * height_um, 1000.0)  # the spec's maxima: 1000 um of Fe2Al5, a 200 um pore line
    return {
        "layers": {"surface_depth_um": 0.08 * height_um, "fe2al5_thickness_um": thick,
                   "fe2al5_thickness_variation_um": 0.02 * height_um,
                   "surface_roughness_amplitude_um": 0.02 * height_um,
                   "interface_roughness_amplitude_um": 0.02 * height_um},
        "pore_line": {"present": True, "depth_um": 0.5 * thick, "width_um": min(0.3 * thick, 200.0),
                      "lateral_coverage": 1.0},
        "imaging": {"width_px": width_px, "height_px": height_px, "pixel_size_um": pixel_um, "data_bar": True},
    }


RADIUS_FIELDS = {"pores": ("radius_mean_um", "radius_std_um"),
                 "pore_line": ("pore_radius_mean_um", "pore_radius_std_um"),
                 "precipitates": ("radius_mean_um", "radius_std_um")}


def _radii_for_count(data: dict[str, Any], std_ratio: float, count: float) -> None:
    """Set every kind's mean radius (std = ``std_ratio`` x mean) so that its expected count (``expected_inclusions``)
    is ``count``: just under the cap, the smallest radii a valid spec may ask for at these area fractions."""
    from semcoat.spec import CoatingSpec

    probe_um = 10.0  # large enough for any frame here to stay under the cap
    for section, (mean_field, std_field) in RADIUS_FIELDS.items():
        data[section].update({mean_field: probe_um, std_field: std_ratio * probe_um})
    expected = CoatingSpec.from_dict(data).expected_inclusions()
    for section, (mean_field, std_field) in RADIUS_FIELDS.items():
        mean = probe_um * (expected[section] / count) ** 0.5
        data[section].update({mean_field: mean, std_field: std_ratio * mean})


def case_spec(name: str) -> Any:
    """The validated CoatingSpec of a case."""
    from semcoat.spec import MAX_FRAME_PIXELS, MAX_INCLUSIONS_PER_IMAGE, CoatingSpec

    big = name in ("frame", "both")
    width, height = next(f for f in LARGE_FRAMES if f[0] * f[1] <= MAX_FRAME_PIXELS) if big else (1024, 768)
    data = _base(width, height, 0.2)
    if name == "frame":  # a preset-like coating: preset fractions, a few hundred inclusions of each kind
        data["pores"] = {"area_fraction_pct": 2.0}
        data["precipitates"] = {"area_fraction_pct": 2.0}
        data["pore_line"].update({"area_fraction_pct": 30.0})
        _radii_for_count(data, 0.5, 500.0)
        return CoatingSpec.from_dict(data)
    round_ = name == "round"
    data["pores"] = {"area_fraction_pct": 30.0, "elongation": 1.0 if round_ else 10.0}
    data["precipitates"] = {"area_fraction_pct": 30.0, "elongation": 1.0 if round_ else 20.0,
                            "orientation_spread_deg": 180.0}
    data["pore_line"].update({"area_fraction_pct": 80.0})
    _radii_for_count(data, 0.0 if round_ else 0.5, CAP_SHARE * MAX_INCLUSIONS_PER_IMAGE)
    return CoatingSpec.from_dict(data)


def run_case(name: str, threads: int, seed: int) -> dict[str, Any]:
    """Render one image of case ``name`` in this process; the figures as a dict."""
    from blender_addon.render_node import batch_render
    from blender_addon.render_node.renderer import Renderer
    from semcoat.batch import BatchSpec

    spec = case_spec(name)
    batch = BatchSpec.from_dict({"name": f"worst-{name}", "count": 1, "seed": seed, "base": spec.to_dict()})
    renderer = Renderer(threads=threads)
    rss_started = _vm_kib("VmRSS")
    gaps: list[tuple[float, str]] = []
    last: dict[str, Any] = {"t": time.perf_counter(), "where": "start"}

    def should_stop() -> bool:  # records the longest stretch between two checks, and where it ended
        now = time.perf_counter()
        caller = sys._getframe(1)
        if caller.f_code.co_name == "check":
            caller = caller.f_back or caller
        where = f"{Path(caller.f_code.co_filename).stem}.{caller.f_code.co_name}:{caller.f_lineno}"
        gaps.append((now - last["t"], f"{last['where']} -> {where}"))
        last.update(t=now, where=where)
        return False

    times = batch_render.PhaseTimes()
    t0 = time.perf_counter()
    last["t"] = t0
    image_png, mask_png, meta, _ = batch_render.render_sample(batch, 0, batch.sample(0), renderer, times,
                                                              should_stop)
    wall = time.perf_counter() - t0
    gaps.append((time.perf_counter() - last["t"], f"{last['where']} -> end"))
    renderer.close()
    designed = meta["designed"]
    expected = spec.expected_inclusions()
    return {
        "case": name, "frame": f"{spec.imaging.width_px}x{spec.imaging.height_px}", "wall_s": wall,
        **times.as_dict(), "longest_unchecked_s": max(gaps)[0], "longest_unchecked_at": max(gaps)[1],
        "checks": len(gaps),
        "expected": {k: round(v) for k, v in expected.items()},
        "drawn": {"pores": designed["pore_count"], "precipitates": designed["precipitate_count"]},
        "peak_rss_mib": _vm_kib("VmHWM") / 1024, "image_mib": (_vm_kib("VmHWM") - rss_started) / 1024,
        "png_mib": (len(image_png) + len(mask_png)) / 2**20, "threads": threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", choices=CASES, help="case(s) to run (default: all)")
    parser.add_argument("--threads", type=int, default=0, help="Cycles threads (0 = all cores)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", metavar="CASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_case(args.worker, args.threads, args.seed)))
        return
    import os

    print(f"{os.cpu_count()} cores; Cycles threads: {args.threads or 'all'}; one image per case, fresh process each",
          flush=True)
    print(f"{'case':<11} {'frame':>9} {'wall s':>7} {'geom':>6} {'scene':>6} {'render':>6} {'image':>6} {'truth':>6} "
          f"{'write':>6} {'unchecked s':>11} {'pores':>6} {'prec.':>6} {'peak MiB':>8} {'image MiB':>9}")
    for name in args.case or CASES:
        cmd = [sys.executable, __file__, "--worker", name, "--threads", str(args.threads), "--seed", str(args.seed)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.exit(f"case {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{r['case']:<11} {r['frame']:>9} {r['wall_s']:7.2f} {r['geometry_s']:6.2f} {r['scene_s']:6.2f} "
              f"{r['render_s']:6.2f} {r['image_s']:6.2f} {r['truth_s']:6.2f} {r['write_s']:6.2f} "
              f"{r['longest_unchecked_s']:11.2f} {r['drawn']['pores']:6d} {r['drawn']['precipitates']:6d} "
              f"{r['peak_rss_mib']:8.0f} {r['image_mib']:9.0f}", flush=True)
        print(f"{'':<11} expected (nominal) {r['expected']}; {r['checks']} stop checks, the longest stretch "
              f"between two: {r['longest_unchecked_at']}; PNGs {r['png_mib']:.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
