"""Fine-tuning a trained model on a few labelled images of other imaging (``--model.init_from``), as a lab with a
blurrier, noisier microscope would: render (or reuse) ``--count`` images per preset of the harder imaging of
``bench/train_quality.py`` (seeds 6000 + k, none of them held out), fine-tune the checkpoint for ``--minutes`` on
them mixed half and half with the training renders, and print Dice and measurement errors on the held-out and the
harder held-out sets (the same images as ``train_quality``), model / classical.

``--count 0`` is the control: the same minutes of fine-tuning on the training renders alone, which tells the gain of
the new images from the gain of more training.

Run: ``python bench/train_finetune.py --out DIR --checkpoint CKPT [--count 8] [--minutes 5] [--lr 0.001]`` with
``DIR/data`` holding (or receiving) ``train_quality``'s renders; the checkpoint is a U-Net of ``unet.yaml``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import train_quality as tq  # bench/ is the script's folder, so its sibling imports as a module

from training.export import export
from training.lightning_cli import CONFIG_DIR, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True, help="the model to fine-tune (.ckpt of unet.yaml)")
    parser.add_argument("--count", type=int, default=8, help="labelled images of harder imaging per preset (0: none)")
    parser.add_argument("--minutes", type=float, default=5.0, help="fine-tuning time limit")
    parser.add_argument("--lr", type=float, default=0.001, help="peak learning rate of the fine-tuning")
    parser.add_argument("--heldout-count", type=int, default=12, help="held-out images per preset and set")
    args = parser.parse_args()
    if args.count < 0:
        parser.error(f"--count must be 0 or more (got {args.count})")
    if args.minutes <= 0:
        parser.error(f"--minutes must be more than 0 (got {args.minutes})")
    if not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    data = args.out / "data"
    seeds = {p: k for k, p in enumerate(tq.PRESETS)}
    train = [tq.render(p, 150, 1000 + seeds[p], data / f"train_{p}") for p in tq.PRESETS]
    tune = [tq.render(p, args.count, 6000 + seeds[p], data / f"tune{args.count}_hard_{p}", "hard")
            for p in tq.PRESETS] if args.count else []
    held = [tq.render(p, args.heldout_count, 2000 + seeds[p], data / f"heldout_{p}") for p in tq.PRESETS]
    hard = [tq.render(p, args.heldout_count, 3000 + seeds[p], data / f"hard_{p}", "hard") for p in tq.PRESETS]
    folders = train + tune
    run_dir = args.out / f"finetune{args.count}"
    seconds = int(round(args.minutes * 60))
    started = time.perf_counter()
    cli = run(["fit", "--config", str(CONFIG_DIR / "unet.yaml"),
               "--data.datasets", json.dumps([str(d) for d in folders]),
               "--data.weights", json.dumps([1] * len(folders)),  # each folder alike: half the crops are new images
               "--data.val_fraction", "0.04", "--data.test_fraction", "0",
               "--model.init_from", str(args.checkpoint),
               "--model.lr", str(args.lr), "--model.warmup_steps", "10",
               "--trainer.max_time", f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
               "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false"])
    tuned = Path(cli.trainer.checkpoint_callback.last_model_path)  # type: ignore[union-attr]
    print(f"fine-tuned {cli.trainer.global_step} steps in {(time.perf_counter() - started) / 60:.1f} min on "
          f"{args.count} harder images per preset and the training renders -> {tuned}", flush=True)
    onnx_path = export(tuned, run_dir / "model.onnx")
    results = {"heldout": tq.evaluate(held, onnx_path), "hard": tq.evaluate(hard, onnx_path)}
    tq.table(f"held-out after fine-tuning on {args.count} harder images per preset", results["heldout"])
    tq.table(f"harder held-out after fine-tuning on {args.count} harder images per preset", results["hard"])
    summary = {"checkpoint": str(args.checkpoint), "tuned": str(tuned), "count_per_preset": args.count,
               "minutes": args.minutes, "lr": args.lr, "steps": cli.trainer.global_step, **results}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwrote {run_dir / 'metrics.json'} and {onnx_path}")


if __name__ == "__main__":
    main()
