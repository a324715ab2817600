"""How well the classical baseline (`semcoat predict --model classical`) segments rendered images: Dice per class and
measurement errors against the ground truth. The reference figure a trained model has to beat.

Run: ``python bench/baseline_accuracy.py [--preset NAME ...] [--count 30] [--seed 11] [--dataset DIR]``.
Renders a batch of each preset (default: every preset) into a temporary folder (or uses ``--dataset``), segments every
image, prints a table per preset.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.baseline import segment
from analysis.files import read_grey_image, read_mask
from analysis.measure import NoCoatingError, measure
from semcoat.classes import CLASSES
from semcoat.dataset import read_dataset
from semcoat.measurements import NUMERIC_NAMES, YES_NO_NAMES


def dice(pred: np.ndarray, truth: np.ndarray, class_id: int) -> float | None:
    """Dice of one class, None when the class is in neither mask."""
    p, t = pred == class_id, truth == class_id
    total = int(p.sum() + t.sum())
    return None if total == 0 else 2.0 * int((p & t).sum()) / total


def evaluate(dataset_dir: Path) -> None:
    """Segment every image of a dataset folder and print Dice per class and the measurement errors."""
    ds = read_dataset(dataset_dir, require_complete=True)
    dices: dict[int, list[float]] = {c.id: [] for c in CLASSES}
    errors: dict[str, list[float]] = {n: [] for n in NUMERIC_NAMES}
    flips: dict[str, int] = dict.fromkeys(YES_NO_NAMES, 0)
    failed, seconds = 0, 0.0
    for sid in ds.ids:
        image, truth_mask = read_grey_image(ds.image_path(sid)), read_mask(ds.mask_path(sid))
        started = time.perf_counter()
        pred = segment(image)
        seconds += time.perf_counter() - started
        for class_id, values in dices.items():
            d = dice(pred, truth_mask, class_id)
            if d is not None:
                values.append(d)
        truth = ds.meta(sid)["truth"]
        try:
            got = measure(pred, ds.info.pixel_size_um).as_dict()
        except NoCoatingError:
            failed += 1
            continue
        for name in flips:
            flips[name] += int(got[name] != truth[name])
        for name, values in errors.items():
            if got[name] is not None and truth[name] is not None:
                values.append(abs(got[name] - truth[name]))
    n = len(ds.ids)
    print(f"{n} images of {ds.info.name} ({ds.info.image_width_px}x{ds.info.image_height_px} px, "
          f"{ds.info.pixel_size_um} um/px); segmentation {seconds / n:.2f} s per image; {failed} not measurable")
    print("Dice per class: mean (worst image)")
    for c in CLASSES:
        values = dices[c.id]
        if values:
            print(f"  {c.name:12s} {np.mean(values):.3f} ({min(values):.3f})  over {len(values)} images")
    print("measurement errors: mean absolute error over images where both are defined")
    for name, values in errors.items():
        if values:
            print(f"  {name:28s} {np.mean(values):.3f}  (n={len(values)})")
    for name, count in flips.items():
        print(f"  {name:28s} {count} of {n - failed} differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", nargs="+", help="presets to render (default: every preset)")
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--dataset", type=Path, help="evaluate this dataset folder instead of rendering one")
    args = parser.parse_args()
    if args.dataset:
        evaluate(args.dataset)
        return
    from blender_addon.render_node.batch_render import render_range
    from blender_addon.render_node.renderer import Renderer
    from semcoat.presets import PRESETS, preset_batch

    for name in args.preset or list(PRESETS):
        batch = preset_batch(name, count=args.count, seed=args.seed)
        with tempfile.TemporaryDirectory(prefix="semcoat-baseline-") as tmp:
            render_range(batch, Path(tmp) / "ds", Renderer)
            evaluate(Path(tmp) / "ds")
        print()


if __name__ == "__main__":
    main()
