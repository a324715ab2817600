"""How well ``semcoat spec calibrate`` recovers the parameters renders were made with: per image and parameter, the
true value, the estimate and the error, then the worst errors against the issue's targets (greys ±0.02, blur ±20 %,
dose ±25 %).

Run: ``python bench/calibrate_recovery.py [--count 10] [--seed 5]``. Renders the recovery test's batch
(``tests/blender_addon/test_calibrate_recovery.py``: 512 x 384 px at 0.15 µm/px, greys, probe core and halo, dose,
detector noise, shading, scratches and edge brightening drawn per image) into a temporary folder, writes the images
as Thermo/FEI TIFFs and calibrates each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the recovery test's batch and TIFF writer (tests/ is not installed)

from analysis.calibrate import calibrate_files  # noqa: E402
from blender_addon.render_node.batch_render import render_range  # noqa: E402
from blender_addon.render_node.renderer import Renderer  # noqa: E402
from semcoat.batch import BatchSpec  # noqa: E402
from tests.blender_addon.test_calibrate_recovery import recovery_batch, write_fei_tiffs  # noqa: E402

# (spec path, relative error?) in the order printed.
PARAMETERS = (
    ("grey.resin", False), ("grey.fe2al5", False), ("grey.substrate", False),
    ("imaging.probe_fwhm_um", True), ("imaging.probe_halo_fraction", False), ("imaging.probe_halo_fwhm_um", True),
    ("imaging.dose_electrons_per_px", True), ("imaging.detector_noise_std", False),
    ("imaging.shading_amplitude", False),
)


def scratch_count(batch: BatchSpec, index: int) -> int:
    """How many scratches the render node drew into image ``index`` (its scratch stream's Poisson draw)."""
    img = batch.sample(index).imaging
    rng = np.random.default_rng([batch.image_seed(index), 3])
    return int(rng.poisson(img.scratch_density_per_100um * img.width_px * img.pixel_size_um / 100.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    batch = recovery_batch(args.count, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        render_range(batch, folder / "ds", Renderer)
        tiffs = write_fei_tiffs(folder / "ds", folder / "tiff")
        t0 = time.perf_counter()
        estimates = calibrate_files(tiffs, None)
        seconds = (time.perf_counter() - t0) / max(len(estimates), 1)
        errors: dict[str, list[float]] = {p: [] for p, _ in PARAMETERS}
        print(f"{'image':8s} {'parameter':32s} {'true':>10s} {'estimate':>10s} {'error':>9s}")
        for path, est in zip(tiffs, estimates, strict=True):
            truth = json.loads((folder / "ds" / "meta" / f"{path.stem}.json").read_text())["params"]
            for param, relative in PARAMETERS:
                section, leaf = param.split(".")
                true, got = float(truth[section][leaf]), est.values.get(param)
                if got is None:
                    print(f"{path.stem:8s} {param:32s} {true:10.4g} {'-':>10s}")
                    continue
                error = (got / true - 1.0) if relative else got - true
                errors[param].append(error)
                print(f"{path.stem:8s} {param:32s} {true:10.4g} {got:10.4g} {error:+9.3{'%' if relative else 'f'}}")
            index = int(path.stem)
            print(f"{path.stem:8s} {'scratches (drawn / detected)':32s} {scratch_count(batch, index):10d} "
                  f"{int(est.details.get('scratches', 0)):10d}")
    print(f"\n{len(estimates)} images, {seconds:.1f} s each to calibrate")
    for param, relative in PARAMETERS:
        e = np.abs(errors[param])
        if e.size:
            unit = "%" if relative else ""
            scale = 100.0 if relative else 1.0
            print(f"{param:32s} worst |error| {e.max() * scale:.3g}{unit}, median {np.median(e) * scale:.3g}{unit}")


if __name__ == "__main__":
    main()
