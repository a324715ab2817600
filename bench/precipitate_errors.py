"""Where a model's precipitate errors lie, on rendered sets with ground truth: precision and recall against the
contrasted precipitates (phase grey >= 0.08 from Fe2Al5, as ``bench/train_quality.py`` scores them), recall by how
visible each precipitate is (Rose's criterion: contrast x sqrt(area) / noise), the Dice of an ideal observer that
finds exactly the visible ones with perfect edges, and how far the false precipitate pixels lie from true ones.

Run: ``python bench/precipitate_errors.py --model MODEL --data DIR [--data DIR ...] [--offset F] [--flip-average]``
(``MODEL``: .onnx, TorchScript or a .ckpt; ``DIR``: rendered datasets with phase maps, e.g. ``bench/
train_quality.py``'s ``DIR/data/heldout_*``). ``--offset`` adds a logit offset to the precipitate class (what
``semcoat train calibrate --classes precipitate`` would set) to see what it trades.

Per precipitate (8-connected component of the contrasted precipitate pixels): its contrast is its mean grey minus
that of a ring 3-4 px around it (Fe2Al5 pixels only), the noise the standard deviation of a 15 px high-pass over
Fe2Al5 pixels at least 7 px from any inclusion; a precipitate with too small a ring counts as invisible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import train_quality as tq  # bench/ is the script's folder, so its sibling imports as a module

VISIBILITY_BINS = ((">= 5", 5.0, np.inf), ("3-5", 3.0, 5.0), ("< 3", -np.inf, 3.0))
HIGH_PASS_PX = 15
FAR_FROM_INCLUSIONS_PX = 15  # the dilation's edge: pixels 7 px or more from a pore, precipitate or crack
RING_INNER_PX, RING_OUTER_PX = 5, 9  # dilation edges: the ring is 3-4 px outside the precipitate
MIN_RING_PX = 8


def visibility(image: np.ndarray, truth: np.ndarray, contrasted: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rose's signal-to-noise ratio of each contrasted precipitate of one image, and its pixels (as index arrays)."""
    from semcoat.classes import CRACK, FE2AL5, PORE, PRECIPITATE

    grey = image.astype(np.float32)
    fe2al5 = truth == FE2AL5
    inclusions = np.isin(truth, (PORE, PRECIPITATE, CRACK)).astype(np.uint8)
    far = fe2al5 & (cv2.dilate(inclusions, np.ones((FAR_FROM_INCLUSIONS_PX,) * 2, np.uint8)) == 0)
    high_pass = grey - cv2.blur(grey, (HIGH_PASS_PX, HIGH_PASS_PX))
    noise = float(high_pass[far].std()) if far.any() else float("nan")
    count, labels, stats, _ = cv2.connectedComponentsWithStats(contrasted.astype(np.uint8), connectivity=8)
    ratios, pixels = [], []
    margin = RING_OUTER_PX
    for k in range(1, count):
        x, y, w, h, area = stats[k]
        r0, c0 = max(0, y - margin), max(0, x - margin)
        r1, c1 = y + h + margin, x + w + margin
        own = labels[r0:r1, c0:c1] == k
        own_u8 = own.astype(np.uint8)
        ring = ((cv2.dilate(own_u8, np.ones((RING_OUTER_PX,) * 2, np.uint8)) > 0)
                & ~(cv2.dilate(own_u8, np.ones((RING_INNER_PX,) * 2, np.uint8)) > 0) & fe2al5[r0:r1, c0:c1])
        window = grey[r0:r1, c0:c1]
        if ring.sum() < MIN_RING_PX or not np.isfinite(noise) or noise <= 0:
            ratios.append(0.0)
        else:
            ratios.append(float((window[own].mean() - window[ring].mean()) * np.sqrt(area) / noise))
        rows, cols = np.nonzero(own)
        pixels.append(np.stack([rows + r0, cols + c0]))
    return np.array(ratios), pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, action="append", required=True, help="rendered dataset, repeatable")
    parser.add_argument("--offset", type=float, default=0.0, help="logit offset added to the precipitate class")
    parser.add_argument("--flip-average", action="store_true", help="as semcoat predict --flip-average")
    args = parser.parse_args()

    import training  # noqa: F401  (sets OMP_WAIT_POLICY before anything loads torch's OpenMP runtime)
    from analysis.files import read_grey_image, read_mask
    from analysis.layer_islands import remove_layer_islands
    from analysis.model import load_model
    from analysis.predict import class_probabilities
    from semcoat.classes import PRECIPITATE
    from semcoat.dataset import read_dataset

    model = load_model(args.model)
    true_px = predicted_px = true_positive_px = 0
    false_by_distance = np.zeros(3)  # within 1 px of any true precipitate, 1-2 px, farther
    by_bin = {name: np.zeros(4) for name, _, _ in VISIBILITY_BINS}  # pixels, found pixels, precipitates, found
    dice_scores: list[float] = []
    for folder in args.data:
        dataset = read_dataset(folder, require_complete=True)
        for sid in dataset.ids:
            image, truth = read_grey_image(dataset.image_path(sid)), read_mask(dataset.mask_path(sid))
            probabilities = class_probabilities(model, image, flip_average=args.flip_average)
            if args.offset:
                probabilities[PRECIPITATE] *= np.float32(np.exp(args.offset))
                probabilities /= probabilities.sum(axis=0, keepdims=True)
            predicted = remove_layer_islands(probabilities) == PRECIPITATE
            contrasted, faint = tq.split_precipitates(dataset, sid, truth)
            scored = predicted & ~faint  # the faint ones' pixels count on neither side, as in train_quality
            true_px += int(contrasted.sum())
            predicted_px += int(scored.sum())
            true_positive_px += int((scored & contrasted).sum())
            if contrasted.any():
                dice_scores.append(2 * float((scored & contrasted).sum()) / float(scored.sum() + contrasted.sum()))
            false = scored & ~contrasted
            any_precipitate = (truth == PRECIPITATE).astype(np.uint8)
            near1 = cv2.dilate(any_precipitate, np.ones((3, 3), np.uint8)) > 0
            near2 = cv2.dilate(any_precipitate, np.ones((5, 5), np.uint8)) > 0
            false_by_distance += [(false & near1).sum(), (false & near2 & ~near1).sum(), (false & ~near2).sum()]
            ratios, pixels = visibility(image, truth, contrasted)
            for ratio, where in zip(ratios, pixels, strict=True):
                name = next(n for n, low, high in VISIBILITY_BINS if low <= ratio < high)
                found = int(predicted[where[0], where[1]].sum())
                by_bin[name] += [where.shape[1], found, 1, found >= 0.5 * where.shape[1]]

    precision = true_positive_px / max(predicted_px, 1)
    recall = true_positive_px / max(true_px, 1)
    print(f"{args.model}: {', '.join(str(d) for d in args.data)}; offset {args.offset:+g}"
          f"{', flip-averaged' if args.flip_average else ''}")
    print(f"  Dice (per image, mean) {np.mean(dice_scores):.3f}; pixels: precision {precision:.3f}, recall "
          f"{recall:.3f}; predicted / true precipitate pixels {predicted_px / max(true_px, 1):.2f}")
    print("  recall by visibility (Rose's SNR): share of the pixels, pixels found, precipitates found (half or more)")
    for name, (px, found, count, found_count) in by_bin.items():
        print(f"    {name:>5}: {px / max(true_px, 1):5.1%} of pixels, {found / max(px, 1):.3f} found; "
              f"{int(count)} precipitates, {found_count / max(count, 1):.0%} found")
    visible = by_bin[VISIBILITY_BINS[0][0]][0] / max(true_px, 1)
    print("  an ideal observer finding exactly the visible (>= 5) ones with perfect edges: Dice "
          f"{2 * visible / (1 + visible):.3f}")
    total_false = max(predicted_px - true_positive_px, 1)
    near1, near2, far = false_by_distance / total_false
    print(f"  false precipitate pixels: {near1:.0%} within 1 px of a true precipitate, {near2:.0%} 1-2 px off, "
          f"{far:.0%} farther")


if __name__ == "__main__":
    main()
