"""Callbacks the command line adds: writing predicted masks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter

from semcoat import pngio


class MaskWriter(BasePredictionWriter):
    """Writes each predicted mask as ``<out_dir>/<dataset folder name>/<id>.png`` (8-bit class ids)."""

    def __init__(self, out_dir: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.out_dir = Path(out_dir)

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        """Write the batch's masks."""
        for name, mask in zip(prediction["name"], prediction["mask"], strict=True):
            path = self.out_dir / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            arr = np.ascontiguousarray(mask.numpy(), dtype=np.uint8)
            path.write_bytes(pngio.encode_grey(arr.shape[1], arr.shape[0], 8, arr.tobytes()))
