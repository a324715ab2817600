"""A 2-process DDP fit on CPU (gloo) for tests/training/test_ddp.py: ``python ddp_fit.py DATASET OUT``.

Lightning starts the second process by running this file again; each rank saves its parameters to OUT/rank<r>.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch

from training.data import SegmentationDataModule
from training.module import SegmentationModule


class SaveParameters(L.Callback):
    """Save this rank's parameters when training ends."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        params = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        torch.save({"params": params, "world_size": trainer.world_size, "step": trainer.global_step},
                   self.out / f"rank{trainer.global_rank}.pt")


def main(dataset: str, out: str) -> None:
    L.seed_everything(0)
    dm = SegmentationDataModule([dataset], crop_px=64, batch_size=2, crops_per_epoch=12, num_workers=0,
                                val_fraction=0.0, test_fraction=0.0)
    module = SegmentationModule(dm.num_classes, dm.class_names, model="unet",
                                model_options={"channels": [8, 16], "num_res_units": 1}, class_weights="auto")
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, callbacks=[SaveParameters(Path(out))])
    trainer.fit(module, datamodule=dm)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
