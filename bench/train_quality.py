"""Training quality: render (or reuse) batches of both presets, train the U-Net for at most ``--minutes`` on this
machine, export ``DIR/model.onnx``, and print per-class Dice on held-out images next to the classical baseline on the
same images, and the same on a harder held-out set (lower dose, more probe blur, weaker precipitate contrast).

Run: ``python bench/train_quality.py --out DIR [--minutes 20] [--train-count 150] [--heldout-count 12]``.
Rendered batches are kept in ``DIR/data`` (reused when complete). ``DIR/metrics.json`` holds every figure.
Dice is per image, averaged over the images holding the class (as ``bench/baseline_accuracy.py`` reports it).
The precipitate target counts images whose precipitate grey differs from Fe2Al5 by >= 0.08; the rest are reported
apart.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

PRESETS = ("5h_650C", "20h_650C")
CONTRAST_MIN = 0.08
TARGETS = {"fe2al5": 0.99, "feal": 0.95, "substrate": 0.99, "pore": 0.98, "precipitate": 0.90}


def harder(spec: dict[str, Any]) -> dict[str, Any]:
    """A batch spec made harder: lower dose, more probe blur, precipitate grey closer to Fe2Al5."""
    r = spec["randomize"]
    r["imaging.dose_electrons_per_px"] = {"kind": "uniform", "low": 40.0, "high": 120.0}
    r["imaging.probe_fwhm_um"] = {"kind": "uniform", "low": 1.0, "high": 1.4}  # presets: 0.3-1.0
    fe = spec["base"]["grey"]["fe2al5"]
    r["grey.precipitate"] = {"kind": "normal", "mean": fe + 0.07, "std": 0.02}
    spec["name"] = spec["name"] + "-hard"
    return spec


def render(preset: str, count: int, seed: int, out: Path, hard: bool = False) -> Path:
    """Render a preset batch into ``out`` unless it is already complete there."""
    from blender_addon.render_node.batch_render import render_range
    from blender_addon.render_node.renderer import Renderer
    from semcoat.batch import BatchSpec
    from semcoat.dataset import read_dataset
    from semcoat.presets import preset_batch

    if (out / "dataset.json").is_file() and read_dataset(out).is_complete:
        return out
    spec = json.loads(preset_batch(preset, count=count, seed=seed).to_json())
    batch = BatchSpec.from_dict(harder(spec) if hard else spec)
    started = time.perf_counter()
    render_range(batch, out, Renderer)
    print(f"rendered {count} images of {batch.name} in {time.perf_counter() - started:.0f} s -> {out}", flush=True)
    return out


def train(out: Path, datasets: list[Path], minutes: float, crops_per_epoch: int, extra: list[str]) -> Path:
    """Fit the U-Net config (with ``extra`` CLI arguments) for at most ``minutes``; return the best checkpoint."""
    from training.lightning_cli import CONFIG_DIR, run

    cli = run(["fit", "--config", str(CONFIG_DIR / "unet.yaml"),
               "--data.datasets", json.dumps([str(d) for d in datasets]), "--data.val_fraction", "0.04",
               "--data.test_fraction", "0", "--data.crops_per_epoch", str(crops_per_epoch),
               "--trainer.max_time", f"00:00:{int(minutes):02d}:{int(round((minutes % 1) * 60)):02d}",
               "--trainer.default_root_dir", str(out / "run"), "--trainer.enable_progress_bar", "false", *extra])
    best = cli.trainer.checkpoint_callback.best_model_path  # type: ignore[union-attr]
    print(f"trained {cli.trainer.current_epoch} epochs, {cli.trainer.global_step} steps; best {best}", flush=True)
    return Path(best)


def dice(pred: np.ndarray, truth: np.ndarray, cid: int) -> float | None:
    """Dice of one class, None when the class is in neither mask."""
    p, t = pred == cid, truth == cid
    total = int(p.sum() + t.sum())
    return None if total == 0 else 2.0 * int((p & t).sum()) / total


def evaluate(folders: list[Path], model_path: Path) -> dict[str, Any]:
    """Per-class Dice of the model (tiled, as ``semcoat predict``) and of the classical baseline on every image."""
    from analysis.baseline import segment
    from analysis.files import read_grey_image, read_mask
    from analysis.model import load_model
    from analysis.predict import predict_mask
    from semcoat.classes import CLASSES, PRECIPITATE
    from semcoat.dataset import read_dataset

    model = load_model(model_path)
    scores: dict[str, dict[str, list[float]]] = {"model": {}, "classical": {}}
    seconds = {"model": 0.0, "classical": 0.0}
    for folder in folders:
        ds = read_dataset(folder, require_complete=True)
        for sid in ds.ids:
            image, truth = read_grey_image(ds.image_path(sid)), read_mask(ds.mask_path(sid))
            grey = ds.meta(sid)["params"]["grey"]
            contrasted = abs(grey["precipitate"] - grey["fe2al5"]) >= CONTRAST_MIN
            for kind in scores:
                started = time.perf_counter()
                pred = predict_mask(model, image) if kind == "model" else segment(image)
                seconds[kind] += time.perf_counter() - started
                for c in CLASSES:
                    d = dice(pred, truth, c.id)
                    if d is None or not (truth == c.id).any():
                        continue
                    name = c.name
                    if c.id == PRECIPITATE and not contrasted:
                        name = "precipitate_low_contrast"
                    scores[kind].setdefault(name, []).append(d)
    n = sum(len(read_dataset(f).ids) for f in folders)
    return {kind: {"dice": {k: float(np.mean(v)) for k, v in per.items()},
                   "images": {k: len(v) for k, v in per.items()},
                   "seconds_per_image": seconds[kind] / max(n, 1)} for kind, per in scores.items()}


def table(title: str, result: dict[str, Any]) -> None:
    """Print model vs baseline Dice per class."""
    print(f"\n{title}: per-class Dice, mean over images (model vs classical; target)")
    from semcoat.classes import CLASSES

    order = [c.name for c in CLASSES] + ["precipitate_low_contrast"]
    for name in sorted(result["model"]["dice"], key=lambda n: order.index(n) if n in order else len(order)):
        value = result["model"]["dice"][name]
        base = result["classical"]["dice"].get(name, float("nan"))
        target = TARGETS.get(name)
        flag = "" if target is None else (" ok" if value >= target and value > base else " MISSED")
        print(f"  {name:26s} {value:.3f}  vs {base:.3f}  (n={result['model']['images'][name]}"
              f"{'' if target is None else f', target {target:.2f}'}){flag}")
    print(f"  seconds per image: model {result['model']['seconds_per_image']:.2f}, "
          f"classical {result['classical']['seconds_per_image']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=20.0, help="training time limit (at most 20)")
    parser.add_argument("--train-count", type=int, default=150, help="training images per preset")
    parser.add_argument("--heldout-count", type=int, default=12, help="held-out images per preset and set")
    parser.add_argument("--crops-per-epoch", type=int, default=512)
    parser.add_argument("--checkpoint", type=Path, help="skip training: evaluate this checkpoint")
    parser.add_argument("--fit-arg", action="append", default=[],
                        help="extra `semcoat train fit` argument, repeatable: --fit-arg=--data.crop_px --fit-arg=384")
    args = parser.parse_args()
    minutes = min(args.minutes, 20.0)
    data = args.out / "data"
    started = time.perf_counter()
    train_sets = [render(p, args.train_count, 1000 + k, data / f"train_{p}") for k, p in enumerate(PRESETS)]
    held = [render(p, args.heldout_count, 2000 + k, data / f"heldout_{p}") for k, p in enumerate(PRESETS)]
    hard = [render(p, args.heldout_count, 3000 + k, data / f"hard_{p}", hard=True) for k, p in enumerate(PRESETS)]
    render_s = time.perf_counter() - started
    started = time.perf_counter()
    ckpt = args.checkpoint or train(args.out, train_sets, minutes, args.crops_per_epoch, args.fit_arg)
    train_s = time.perf_counter() - started
    from training.export import export

    onnx_path = export(ckpt, args.out / "model.onnx")
    results = {"heldout": evaluate(held, onnx_path), "hard": evaluate(hard, onnx_path)}
    table(f"held-out ({2 * args.heldout_count} images, both presets)", results["heldout"])
    table(f"harder held-out ({2 * args.heldout_count} images: lower dose, more blur, weaker precipitates)",
          results["hard"])
    summary = {"checkpoint": str(ckpt), "fit_args": args.fit_arg, "onnx": str(onnx_path),
               "train_seconds": train_s, "render_seconds": render_s,
               "minutes_limit": minutes, "train_images_per_preset": args.train_count, "cpu_count": os.cpu_count(),
               "load_average_1min_at_end": os.getloadavg()[0], **results}
    (args.out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwrote {args.out / 'metrics.json'} and {onnx_path}; training {train_s / 60:.1f} min")


if __name__ == "__main__":
    main()
