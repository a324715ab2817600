"""The demo's training process: ``semcoat train fit FIT_ARGS`` and ``semcoat train export BEST --out ONNX`` in one
process (torch and Lightning imported once), then ``RESULT.json`` with the checkpoint, the epochs and steps, the best
validation Dice and the precision used.

Run as ``python -m semcoat_cli.demo_train RESULT.json ONNX -- FIT_ARGS...``. ``semcoat demo`` starts it as its own
process: Lightning's signal handlers and data-loader workers live and end with it, and SIGTERM stops the training
after the step in hand.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any


def fit_and_export(fit_args: list[str], onnx_path: Path) -> dict[str, Any]:
    """Train with the Lightning CLI (``semcoat train fit`` arguments), export the best checkpoint (the last one when
    no validation chose one) to ONNX; return what happened.

    Raises
    ------
    training.export.CheckpointError
        When the training left no checkpoint.
    """
    from training.export import CheckpointError, export
    from training.lightning_cli import run

    started = time.monotonic()
    cli = run(["fit", *fit_args])
    trainer = cli.trainer
    callback: Any = trainer.checkpoint_callback
    checkpoint = (callback.best_model_path or callback.last_model_path) if callback is not None else ""
    if not checkpoint:
        raise CheckpointError("the training ended before it saved a checkpoint; give it more time")
    fit_s = time.monotonic() - started
    started = time.monotonic()
    export(checkpoint, onnx_path)
    score = callback.best_model_score
    return {"checkpoint": str(checkpoint), "onnx": str(onnx_path), "epochs": int(trainer.current_epoch),
            "steps": int(trainer.global_step), "precision": str(trainer.precision),
            "best_val_dice_mean": float(score) if score is not None else None,
            "fit_seconds": round(fit_s, 1), "export_seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str]) -> int:
    """``RESULT.json ONNX -- FIT_ARGS...``; exit 0 with the result written, 1 when training or export failed, 2 for
    bad arguments."""
    if len(argv) < 3 or argv[2] != "--":
        sys.stderr.write("usage: python -m semcoat_cli.demo_train RESULT.json ONNX -- FIT_ARGS...\n")
        return 2
    from semcoat.errors import SemcoatError

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("training")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        result = fit_and_export(argv[3:], Path(argv[1]))
    except SemcoatError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    Path(argv[0]).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
