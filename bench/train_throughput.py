"""Training throughput on this machine: images/s per model at 256x256 (batch 8, the shipped configs' networks), and
Lightning's overhead against a plain torch loop running the same module, loss, optimiser and data (target < 5 %).

Run: ``python bench/train_throughput.py [--steps 30] [--repeats 3] [--precision auto] [--models unet,...]``
(``auto``: bf16-mixed where the CPU has AMX, as the configs' fallback decides, else 32-true).
Data are generated layered masks and images held in memory (no decoding), so the figures are the model's and the
loop's. Plain loop and Lightning alternate ``--repeats`` times; the median seconds per step after 3 warm-up steps
are compared.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

# isort: off
import training  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads its OpenMP runtime)

# isort: on
import lightning as L
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, TensorDataset

from semcoat.classes import CLASSES
from training.lightning_cli import CONFIG_DIR, cpu_has_fast_bf16, effective_precision
from training.module import SegmentationModule

WARMUP = 3


def config_options(model: str) -> dict[str, Any]:
    """``model.model_options`` of the shipped config ``training/configs/<model>.yaml``."""
    options: dict[str, Any] = yaml.safe_load((CONFIG_DIR / f"{model}.yaml").read_text())["model"]["model_options"]
    return options



def make_data(n: int, px: int = 256, seed: int = 0) -> TensorDataset:
    """``n`` layered masks with round inclusions and their noisy grey images."""
    rng = np.random.default_rng(seed)
    masks = np.full((n, px, px), 3, np.int64)
    rr, cc = np.mgrid[:px, :px]
    for m in masks:
        top, mid = rng.integers(20, 60), rng.integers(150, 200)
        m[:top], m[top:mid] = 0, 1
        for cid in (4, 5):
            for _ in range(15):
                r, c, rad = rng.integers(top + 5, mid - 5), rng.integers(px), rng.integers(2, 6)
                m[(rr - r) ** 2 + (cc - c) ** 2 <= rad * rad] = cid
    grey = np.array([0.08, 0.45, 0.55, 0.75, 0.05, 0.62, 0.1], np.float32)[masks]
    images = np.clip(grey + rng.normal(0, 0.03, grey.shape).astype(np.float32), 0, 1)[:, None]
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(masks))


class DictLoader:
    """Batches of a TensorDataset as the module's dicts."""

    def __init__(self, data: TensorDataset, batch: int) -> None:
        self.loader = DataLoader(data, batch_size=batch, shuffle=False, drop_last=True)

    def __iter__(self) -> Any:
        return ({"image": x, "mask": y} for x, y in self.loader)

    def __len__(self) -> int:
        return len(self.loader)


def module_for(model: str) -> SegmentationModule:
    """The module of a shipped config, fixed class weights, constant learning rate."""
    torch.manual_seed(0)
    return SegmentationModule(len(CLASSES), [c.name for c in CLASSES], model=model,
                              model_options=config_options(model), class_weights=[1.0] * len(CLASSES),
                              scheduler="constant")


def plain_loop(model: str, data: TensorDataset, batch: int, precision: str) -> list[float]:
    """Seconds of each step of a hand-written loop over the same module."""
    module = module_for(model).train()
    opt = module.configure_optimizers()
    times = []
    for b in DictLoader(data, batch):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.startswith("bf16")):
            loss = module.loss_fn(module(b["image"]), b["mask"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return times


class StepTimer(L.Callback):
    """Seconds of each training step, batch start to batch end."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, *args: Any) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        self.times.append(time.perf_counter() - self._start)


def lightning_loop(model: str, data: TensorDataset, batch: int, precision: str) -> tuple[list[float], float]:
    """Seconds of each step under Lightning's Trainer, and the wall time of the whole fit call per step."""
    timer = StepTimer()
    trainer = L.Trainer(accelerator="cpu", devices=1, precision=precision,  # type: ignore[arg-type]
                        max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, callbacks=[timer], num_sanity_val_steps=0)
    loader = DataLoader(data, batch_size=batch, shuffle=False, drop_last=True,
                        collate_fn=lambda items: {"image": torch.stack([i[0] for i in items]),
                                                  "mask": torch.stack([i[1] for i in items])})
    start = time.perf_counter()
    trainer.fit(module_for(model), train_dataloaders=loader)
    return timer.times, (time.perf_counter() - start) / max(len(timer.times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16-mixed", "32-true"])
    parser.add_argument("--models", default="unet,deeplab,swin_unetr")
    parser.add_argument("--overhead-model", default="unet")
    args = parser.parse_args()
    if args.precision == "auto":
        args.precision = effective_precision("bf16-mixed", "cpu", cpu_has_fast_bf16())
    torch.set_num_threads(torch.get_num_threads())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision {args.precision}, "
          f"batch {args.batch} x 256x256")
    for model in args.models.split(","):
        steps = args.steps if model != "swin_unetr" else max(WARMUP + 5, args.steps // 3)
        data = make_data(steps * args.batch)
        plain: list[float] = []
        light: list[float] = []
        whole: list[float] = []
        repeats = args.repeats if model == args.overhead_model else 1
        for _ in range(repeats):
            if model == args.overhead_model:
                plain.append(statistics.median(plain_loop(model, data, args.batch, args.precision)[WARMUP:]))
            times, per_fit = lightning_loop(model, data, args.batch, args.precision)
            light.append(statistics.median(times[WARMUP:]))
            whole.append(per_fit)
        step = statistics.median(light)
        line = f"{model:11s} {args.batch / step:6.1f} images/s  ({step:.3f} s/step Lightning"
        if plain:
            p = statistics.median(plain)
            line += (f"; plain loop {p:.3f} s/step: Lightning overhead {100 * (step / p - 1):+.1f} % per step, "
                     f"{100 * (statistics.median(whole) / p - 1):+.1f} % counting the whole fit call")
        print(line + ")", flush=True)


if __name__ == "__main__":
    main()
