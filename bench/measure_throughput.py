"""How many 1024 x 768 masks ``analysis.measure.measure`` handles per second on one core (target: at least 100/s).

Run: ``python bench/measure_throughput.py [--seconds 3] [--width 1024] [--height 768]``. Prints masks/s.
"""

from __future__ import annotations

import argparse
import os
import time

# One core: numpy's element-wise work is single-threaded already; this keeps any BLAS pool from joining in.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from analysis.measure import measure  # noqa: E402
from semcoat.classes import FE2AL5, FEAL, PORE, PRECIPITATE, SUBSTRATE  # noqa: E402


def realistic_mask(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A coating like a rendered one: wavy surface, ~45 % of the height of Fe2Al5, FeAl, pores, a pore line."""
    rng = np.random.default_rng(seed)
    c = np.arange(width)
    surface = (0.15 * height + 0.03 * height * np.sin(2 * np.pi * 2.5 * c / width + rng.uniform(0, 6))).astype(int)
    bottom = surface + int(0.45 * height) + (0.02 * height * np.sin(2 * np.pi * 4 * c / width)).astype(int)
    rows = np.arange(height)[:, None]
    mask = np.zeros((height, width), np.uint8)
    mask[rows >= surface] = FE2AL5
    mask[rows >= bottom] = FEAL
    mask[rows >= bottom + int(0.02 * height)] = SUBSTRATE
    yy, xx = np.mgrid[-6:7, -6:7]
    for value, count, depth_range in ((PORE, 500, None), (PRECIPITATE, 300, None), (PORE, width // 12, 0.35)):
        for _ in range(count):
            x = int(rng.integers(6, width - 7))
            band = bottom[x] - surface[x]
            d = depth_range * band + rng.normal(0, 1.5) if depth_range else rng.uniform(6, band - 7)
            y = int(surface[x] + d)
            r = rng.uniform(2, 6)
            disc = (yy**2 + xx**2) <= r * r
            window = mask[y - 6 : y + 7, x - 6 : x + 7]
            window[disc & (window == FE2AL5)] = value
    return mask


def main() -> None:
    """Measure masks for a few seconds and print the throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=768)
    args = parser.parse_args()

    masks = [realistic_mask(args.width, args.height, seed) for seed in range(8)]
    first = measure(masks[0], 0.1)
    print(f"example: {first.as_dict()}")
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        measure(masks[n % len(masks)], 0.1)
        n += 1
    elapsed = time.perf_counter() - start
    print(f"{args.width}x{args.height} masks: {n / elapsed:.1f} masks/s ({1e3 * elapsed / n:.2f} ms each, one core)")


if __name__ == "__main__":
    main()
