"""Training quality: render (or reuse) batches of every preset, train the U-Net for at most ``--minutes`` on this
machine, export ``DIR/model.onnx``, and print per-class Dice on held-out images next to the classical baseline on the
same images, per preset and over all, and the same on a harder held-out set (lower dose, more probe blur, weaker
precipitate contrast) and on a sharp one (the best imaging the training ranges hold: high dose, frame averaging, the
narrowest probe, no line noise, JPEG or charging), which shows what the model reads where the imaging leaves it the
most to see.

Run: ``python bench/train_quality.py --out DIR [--minutes 20] [--train-count 150] [--heldout-count 12]
[--presets 5h_650C,20h_650C,thin_slurry] [--checkpoint CKPT] [--calibrate] [--flip-average]``. Each set also gets
the measurements' errors against the truth (model and baseline); ``--calibrate`` first calibrates FeAl's logit offset
on 12 more renders per preset (``semcoat train calibrate``); ``--flip-average`` evaluates as ``semcoat predict
--flip-average`` does.
Rendered batches are kept in ``DIR/data`` (reused when complete). ``DIR/metrics.json`` holds every figure.
Dice is per image, averaged over the images holding the class (as ``bench/baseline_accuracy.py`` reports it).
The precipitate target counts the precipitates whose phase's grey differs from Fe2Al5 by >= 0.08 (the renderer's
Al8Cr5 is about Fe2Al5's grey, Cr2Al ~70 % of the way to Cr23C6, see ``GreyLevelSpec.precipitate_phase_greys``): their
Dice ignores the pixels of the fainter ones, whose share found (recall) is reported apart; Fe2Al5's Dice is reported
with those pixels counted (as precipitate) and apart (``fe2al5_faint_apart``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import training  # noqa: F401  (sets OMP_WAIT_POLICY before anything loads torch's OpenMP runtime)

# Seeds are 1000 + k (training), 2000 + k (held out), 3000 + k (harder), 4000 + k (sharp) for the k-th preset of
# this list: appending a preset keeps the images of the others.
PRESETS = ("5h_650C", "20h_650C", "thin_slurry")
CONTRAST_MIN = 0.08
FAINT = "precipitate_faint_found"  # share of the fainter precipitates' pixels labelled precipitate (recall)
# Fe2Al5's Dice with the fainter precipitates' pixels on neither side: they show Fe2Al5's grey, and a model that calls
# them Fe2Al5 loses ~0.005 of Fe2Al5 Dice on pixels nobody could label from the image
FE2AL5_FAINT_APART = "fe2al5_faint_apart"
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


def sharp(spec: dict[str, Any]) -> dict[str, Any]:
    """A batch spec imaged at its best within the presets' ranges (the training data holds such images): the
    highest dose, four frames averaged, the narrowest probe with the weakest halo, no line noise, JPEG or charging."""
    r = spec["randomize"]
    r["imaging.dose_electrons_per_px"] = {"kind": "choice", "values": [2000.0]}
    r["imaging.frame_count"] = {"kind": "choice", "values": [4]}
    r["imaging.probe_fwhm_um"] = {"kind": "uniform", "low": 0.3, "high": 0.4}
    r["imaging.probe_halo_fraction"] = {"kind": "uniform", "low": 0.05, "high": 0.08}
    r["imaging.jpeg_quality"] = {"kind": "choice", "values": [0]}
    for name in ("imaging.line_noise_std", "imaging.charging_amplitude"):
        r[name] = {"kind": "choice", "values": [0.0]}
    spec["name"] = spec["name"] + "-sharp"
    return spec


VARIANTS = {"hard": harder, "sharp": sharp}


def render(preset: str, count: int, seed: int, out: Path, variant: str = "") -> Path:
    """Render a preset batch (changed by the :data:`VARIANTS` entry ``variant``, if given) into ``out`` unless it is
    already complete there."""
    from blender_addon.render_node.batch_render import render_range
    from blender_addon.render_node.renderer import Renderer
    from semcoat.batch import BatchSpec
    from semcoat.dataset import read_dataset
    from semcoat.presets import preset_batch

    if (out / "dataset.json").is_file() and read_dataset(out).is_complete:
        return out
    spec = json.loads(preset_batch(preset, count=count, seed=seed).to_json())
    batch = BatchSpec.from_dict(VARIANTS[variant](spec) if variant else spec)
    started = time.perf_counter()
    render_range(batch, out, Renderer)
    print(f"rendered {count} images of {batch.name} in {time.perf_counter() - started:.0f} s -> {out}", flush=True)
    return out


def train(out: Path, datasets: list[Path], minutes: float, crops_per_epoch: int, extra: list[str]) -> Path:
    """Fit the U-Net config (with ``extra`` CLI arguments) for at most ``minutes``; return the best checkpoint (the
    last one when no validation chose one)."""
    from training.lightning_cli import CONFIG_DIR, run

    cli = run(["fit", "--config", str(CONFIG_DIR / "unet.yaml"),
               "--data.datasets", json.dumps([str(d) for d in datasets]), "--data.val_fraction", "0.04",
               "--data.test_fraction", "0", "--data.crops_per_epoch", str(crops_per_epoch),
               "--trainer.max_time", f"00:00:{int(minutes):02d}:{int(round((minutes % 1) * 60)):02d}",
               "--trainer.default_root_dir", str(out / "run"), "--trainer.enable_progress_bar", "false", *extra])
    callback: Any = cli.trainer.checkpoint_callback
    best = callback.best_model_path or callback.last_model_path
    print(f"trained {cli.trainer.current_epoch} epochs, {cli.trainer.global_step} steps; best {best}", flush=True)
    return Path(best)


def dice(pred: np.ndarray, truth: np.ndarray, cid: int) -> float | None:
    """Dice of one class, None when the class is in neither mask."""
    p, t = pred == cid, truth == cid
    total = int(p.sum() + t.sum())
    return None if total == 0 else 2.0 * int((p & t).sum()) / total


def split_precipitates(dataset: Any, sid: str, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(contrasted, faint) precipitate pixels of ``truth`` (sample ``sid`` of ``dataset``): those whose phase's grey
    differs from Fe2Al5's by at least :data:`CONTRAST_MIN`, and the others, from the phase map the renderer wrote
    (:func:`training.samples.faint_precipitates`)."""
    from semcoat.classes import PRECIPITATE
    from semcoat.dataset import DatasetError
    from training.samples import faint_phases, faint_precipitates, read_phase_map

    path = dataset.phase_map_path(sid)
    faint_phase = faint_phases(dataset.meta(sid).get("params"), CONTRAST_MIN)
    if path is None or faint_phase is None:
        raise SystemExit(f"{dataset.root} image {sid}: no precipitate-phase map, or a spec this version cannot read "
                         "(rendered by another renderer version?); render the sets again in a new --out")
    try:
        faint = faint_precipitates(read_phase_map(path, truth.shape), faint_phase) & (truth == PRECIPITATE)
    except DatasetError as exc:
        raise SystemExit(f"{exc}; render the sets again in a new --out") from exc
    return (truth == PRECIPITATE) & ~faint, faint


def measurement_errors(pred: np.ndarray, pixel_size_um: float, truth: dict[str, Any]) -> dict[str, float]:
    """Per measurement of :mod:`semcoat.measurements`, how far the mask's measurement is from the truth: 1/0 for a
    yes/no one that is wrong/right, the absolute difference for the others (where both have a value); a mask with no
    coating found gets every yes/no wrong and no numeric error (it is counted in the layered check)."""
    from analysis.measure import NoCoatingError, measure
    from semcoat.measurements import MEASUREMENT_NAMES, YES_NO_NAMES

    try:
        measured = measure(pred, pixel_size_um).as_dict()
    except NoCoatingError:
        return {name: 1.0 for name in YES_NO_NAMES}
    out = {}
    for name in MEASUREMENT_NAMES:
        value, true = measured.get(name), truth.get(name)
        if name in YES_NO_NAMES:
            out[name] = float(bool(value) != bool(true))
        elif value is not None and true is not None:
            out[name] = abs(float(value) - float(true))
    return out


def summarise(scores: dict[str, list[float]], layered: list[bool], seconds: float,
              errors: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """Mean Dice per class, images per class, layered-check passes, seconds per image and the measurements' mean
    errors (yes/no: the share wrong; others: mean absolute error) of one model on a set."""
    return {"dice": {k: float(np.mean(v)) for k, v in scores.items()}, "images": {k: len(v) for k, v in scores.items()},
            "layered": f"{sum(layered)}/{len(layered)}", "seconds_per_image": seconds / max(len(layered), 1),
            "measurement_error": {k: float(np.mean(v)) for k, v in (errors or {}).items()}}


def evaluate(folders: list[Path], model_path: Path, flip_average: bool = False) -> dict[str, Any]:
    """Per-class Dice of the model (tiled, with its layer islands relabelled, as ``semcoat predict``), of the network
    alone (its argmax: ``--keep-islands``) and of the classical baseline on every image, and how many predicted masks
    pass the layered check (:func:`analysis.measure.check_layered`: what ``semcoat predict`` asks of a mask before it
    measures); over all ``folders`` and per folder (``by_set``). ``flip_average``: the model's probabilities averaged
    over each image and its mirror (``semcoat predict --flip-average``)."""
    from analysis.baseline import segment
    from analysis.files import read_grey_image, read_mask
    from analysis.layer_islands import remove_layer_islands
    from analysis.measure import NoCoatingError, check_layered
    from analysis.model import load_model
    from analysis.predict import class_probabilities
    from semcoat.classes import CLASSES, FE2AL5, PRECIPITATE
    from semcoat.dataset import read_dataset

    model = load_model(model_path)
    kinds = ("model", "network", "classical")
    out: dict[str, Any] = {"by_set": {}}
    total: dict[str, Any] = {k: ({}, [], 0.0, {}) for k in kinds}
    for folder in folders:
        ds = read_dataset(folder, require_complete=True)
        part: dict[str, Any] = {k: ({}, [], 0.0, {}) for k in kinds}
        for sid in ds.ids:
            true_measurements = ds.meta(sid)["truth"]
            image, truth = read_grey_image(ds.image_path(sid)), read_mask(ds.mask_path(sid))
            contrasted, faint = split_precipitates(ds, sid, truth)
            started = time.perf_counter()
            probabilities = class_probabilities(model, image, flip_average=flip_average)
            network_s = time.perf_counter() - started
            preds = {"network": probabilities.argmax(axis=0).astype(np.uint8)}
            started = time.perf_counter()
            preds["model"] = remove_layer_islands(probabilities)
            islands_s = time.perf_counter() - started
            started = time.perf_counter()
            preds["classical"] = segment(image)
            took = {"model": network_s + islands_s, "network": network_s, "classical": time.perf_counter() - started}
            for kind in kinds:
                pred, elapsed = preds[kind], took[kind]
                try:
                    check_layered(pred)
                    ok = True
                except NoCoatingError:
                    ok = False
                errors = measurement_errors(pred, ds.info.pixel_size_um, true_measurements)
                for acc in (part, total):
                    scores, layered, seconds, measured = acc[kind]
                    layered.append(ok)
                    for name, error in errors.items():
                        measured.setdefault(name, []).append(error)
                    acc[kind] = (scores, layered, seconds + elapsed, measured)
                found: dict[str, float] = {}
                # the faint precipitates' pixels on neither side (their share found is apart)
                pred_apart, truth_apart = np.where(faint, 255, pred), np.where(faint, 254, truth)
                for c in CLASSES:
                    if c.id == PRECIPITATE:
                        if contrasted.any():
                            found[c.name] = dice(pred_apart, truth_apart, c.id)
                        if faint.any():
                            found[FAINT] = float(np.count_nonzero(pred[faint] == PRECIPITATE) / faint.sum())
                    elif (truth == c.id).any():
                        found[c.name] = dice(pred, truth, c.id)
                        if c.id == FE2AL5 and faint.any():
                            found[FE2AL5_FAINT_APART] = dice(pred_apart, truth_apart, c.id)
                for name, value in found.items():
                    for acc in (part, total):
                        acc[kind][0].setdefault(name, []).append(value)
        out["by_set"][folder.name] = {k: summarise(*part[k]) for k in kinds}
    out.update({k: summarise(*total[k]) for k in kinds})
    return out


def measurement_table(result: dict[str, Any]) -> None:
    """Print the measurements' errors of the model and the classical baseline over all images of a set."""
    from semcoat.measurements import MEASUREMENTS

    model, classical = result["model"]["measurement_error"], result["classical"]["measurement_error"]
    print("  measurements against the truth, model / classical (yes/no: share wrong; others: mean absolute error):")
    for m in MEASUREMENTS:
        if m.name in model:
            unit = m.unit or "share wrong"
            print(f"    {m.name:30s} {model[m.name]:7.3f} / {classical.get(m.name, float('nan')):7.3f}  ({unit})")


def table(title: str, result: dict[str, Any]) -> None:
    """Print model vs baseline Dice per class, over all sets and per set."""
    from semcoat.classes import CLASSES

    sets = list(result["by_set"])
    print(f"\n{title}: per-class Dice, mean over the images holding the class, model / classical (target); "
          f"precipitates with a phase grey within {CONTRAST_MIN} of Fe2Al5 are apart ({FAINT}: their pixels' share "
          "labelled precipitate)")
    # set folders are <heldout|hard|sharp>_<preset>: the preset names the column
    print(f"  {'':26s} {'all':>13s}  " + "  ".join(f"{name.split('_', 1)[-1][:13]:>13s}" for name in sets))
    order = [c.name for c in CLASSES] + [FAINT]
    order.insert(order.index("fe2al5") + 1, FE2AL5_FAINT_APART)
    names = sorted(result["model"]["dice"], key=lambda n: order.index(n) if n in order else len(order))
    for name in names:
        value = result["model"]["dice"][name]
        base = result["classical"]["dice"].get(name, float("nan"))
        target = TARGETS.get(name)
        cells = []
        for s in sets:
            m, c = result["by_set"][s]["model"]["dice"].get(name), result["by_set"][s]["classical"]["dice"].get(name)
            cells.append(f"{m:.3f} / {c:.3f}" if m is not None and c is not None else f"{'-':>13s}")
        flag = "" if target is None else (" ok" if value >= target and value > base else f" (target {target:.2f})")
        print(f"  {name:26s} {value:.3f} / {base:.3f}  " + "  ".join(cells) + flag)
    passed = [(result["by_set"][s]["model"]["layered"], result["by_set"][s]["classical"]["layered"]) for s in sets]
    print(f"  {'layered check passed':26s} {result['model']['layered']:>5s} / {result['classical']['layered']:5s}  "
          + "  ".join(f"{m:>5s} / {c:5s}" for m, c in passed))
    network = result["network"]["dice"]
    print("  network alone (--keep-islands): "
          + ", ".join(f"{name} {network[name]:.3f}" for name in names if name in network)
          + f"; layered check {result['network']['layered']}")
    print(f"  seconds per image: model {result['model']['seconds_per_image']:.2f} (of which relabelling islands "
          f"{result['model']['seconds_per_image'] - result['network']['seconds_per_image']:.2f}), "
          f"classical {result['classical']['seconds_per_image']:.2f}")
    measurement_table(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=20.0, help="training time limit (at most 20)")
    parser.add_argument("--train-count", type=int, default=150, help="training images per preset")
    parser.add_argument("--heldout-count", type=int, default=12, help="held-out images per preset and set")
    parser.add_argument("--presets", default=",".join(PRESETS), help=f"comma-separated, of: {', '.join(PRESETS)}")
    parser.add_argument("--crops-per-epoch", type=int, default=512)
    parser.add_argument("--checkpoint", type=Path, help="skip training: evaluate this checkpoint")
    parser.add_argument("--calibrate", action="store_true",
                        help="calibrate FeAl's logit offset on a fourth set of renders (seeds 5000 + k) before the "
                             "evaluation (semcoat train calibrate)")
    parser.add_argument("--flip-average", action="store_true",
                        help="evaluate with the probabilities averaged over each image and its left-right mirror "
                             "(semcoat predict --flip-average)")
    parser.add_argument("--fit-arg", action="append", default=[],
                        help="extra `semcoat train fit` argument, repeatable: --fit-arg=--data.crop_px --fit-arg=384")
    args = parser.parse_args()
    presets = [p for p in args.presets.split(",") if p]
    unknown = sorted(set(presets) - set(PRESETS))
    if unknown or not presets:
        parser.error(f"--presets: unknown {unknown or 'none given'}; accepted: {', '.join(PRESETS)}")
    minutes = min(args.minutes, 20.0)
    data = args.out / "data"
    seeds = {p: k for k, p in enumerate(PRESETS)}
    started = time.perf_counter()
    train_sets = [render(p, args.train_count, 1000 + seeds[p], data / f"train_{p}") for p in presets]
    held = [render(p, args.heldout_count, 2000 + seeds[p], data / f"heldout_{p}") for p in presets]
    hard = [render(p, args.heldout_count, 3000 + seeds[p], data / f"hard_{p}", "hard") for p in presets]
    sharp_sets = [render(p, args.heldout_count, 4000 + seeds[p], data / f"sharp_{p}", "sharp") for p in presets]
    render_s = time.perf_counter() - started
    load_before = os.getloadavg()
    started = time.perf_counter()
    ckpt = args.checkpoint or train(args.out, train_sets, minutes, args.crops_per_epoch, args.fit_arg)
    train_s = time.perf_counter() - started
    load_after = os.getloadavg()
    from training.export import export

    calibration = None
    if args.calibrate:
        from training.calibrate import calibrate, write_calibrated

        calib_sets = [render(p, args.heldout_count, 5000 + seeds[p], data / f"calib_{p}") for p in presets]
        found = calibrate(ckpt, calib_sets, ["feal"])
        (args.out / "calibrated.ckpt").unlink(missing_ok=True)
        ckpt = write_calibrated(ckpt, args.out / "calibrated.ckpt", found)
        calibration = {c.class_name: {"offset": c.offset, "mae_before": c.mae_before, "mae_after": c.mae_after}
                       for c in found}
        print(f"calibrated on {len(presets) * args.heldout_count} renders: {calibration} -> {ckpt}")
    onnx_path = export(ckpt, args.out / "model.onnx")
    results = {name: evaluate(sets, onnx_path, args.flip_average)
               for name, sets in (("heldout", held), ("hard", hard), ("sharp", sharp_sets))}
    n = len(presets) * args.heldout_count
    table(f"held-out ({n} images: {', '.join(presets)})", results["heldout"])
    table(f"harder held-out ({n} images: lower dose, more blur, weaker precipitates)", results["hard"])
    table(f"sharp held-out ({n} images: high dose, 4 frames, narrowest probe)", results["sharp"])
    summary = {"checkpoint": str(ckpt), "calibration": calibration, "fit_args": args.fit_arg, "onnx": str(onnx_path),
               "flip_average": args.flip_average,
               "presets": presets,
               "train_seconds": train_s, "render_seconds": render_s,
               "minutes_limit": minutes, "train_images_per_preset": args.train_count, "cpu_count": os.cpu_count(),
               "load_average_before_training": load_before, "load_average_after_training": load_after,
               "load_average_1min_at_end": os.getloadavg()[0], **results}
    (args.out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwrote {args.out / 'metrics.json'} and {onnx_path}; training {train_s / 60:.1f} min "
          f"(load average 1/5/15 min before {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
          f"after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f})")


if __name__ == "__main__":
    main()
