"""The LightningModule: a network from :mod:`training.models`, a loss from :mod:`training.losses`, per-class metrics
from :mod:`training.metrics`. It only translates batches into calls of those components and logs what they return.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Timer
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from semcoat import classes
from semcoat.errors import InvalidArgument, SemcoatError
from training.config_check import VALUE_CHECKS
from training.losses import SegmentationLoss
from training.metrics import confusion_csv, stage_metrics
from training.models import SIZE_MULTIPLE, build_model

log = logging.getLogger(__name__)

# The share of trainer.max_time used is read every this many steps (a collective under DDP: rank 0's value is used).
TIME_CHECK_STEPS = 10
# A time-limited run ends its warm-up after this share of the limit at the latest.
WARMUP_TIME_SHARE = 0.1
LR_FLOOR = 0.01
# The share of the class weights' log taken off predicted logits (see SegmentationModule). Measured on bench/
# train_quality's 36 held-out images (U-Net, dice_ce, weights at power 0.75, 20 minutes), Dice at 0 / 0.5 / 1: Fe2Al5
# 0.965 / 0.975 / 0.976, FeAl 0.819 / 0.844 / 0.838, pores 0.885 / 0.904 / 0.904, precipitates 0.347 / 0.361 / 0.283.
PRIOR_CORRECTION = 0.5


def lr_factor(step: int, total_steps: int, warmup_steps: int, time_fraction: float = 0.0,
              warmup_share: float = WARMUP_TIME_SHARE, floor: float = LR_FLOOR) -> float:
    """Multiplier of the base learning rate at ``step``: a linear warm-up, then a cosine decay to ``floor``.

    The warm-up ends after ``warmup_steps`` steps or ``warmup_share`` of the time limit, whichever comes first (a
    3-minute run of ~100 steps must not spend half of them warming up); the decay's progress is the larger of the
    steps' share of ``total_steps`` and the time limit's share used after the warm-up (``time_fraction``: 0 without a
    time limit), so a run that the clock ends has decayed fully too.
    """
    warm = max(warmup_steps, 1)
    ramp = max((step + 1) / warm, time_fraction / warmup_share if warmup_share > 0 else 1.0)
    if ramp < 1.0:
        return ramp
    by_steps = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    by_time = (time_fraction - warmup_share) / (1.0 - warmup_share) if warmup_share < 1 else time_fraction
    progress = min(max(by_steps, by_time, 0.0), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + float(np.cos(np.pi * progress)))


def pad_to_multiple(x: Tensor, multiple: int = SIZE_MULTIPLE) -> tuple[Tensor, tuple[int, int]]:
    """``x`` (N, C, rows, columns) padded at the bottom and right by reflection to multiples of ``multiple``; also
    the original (rows, columns)."""
    rows, cols = x.shape[-2:]
    pad_r, pad_c = (-rows) % multiple, (-cols) % multiple
    if pad_r or pad_c:
        mode = "reflect" if pad_r < rows and pad_c < cols else "replicate"
        x = F.pad(x, (0, pad_c, 0, pad_r), mode=mode)
    return x, (rows, cols)


class TrainingDiverged(SemcoatError):
    """The training loss became NaN or infinite."""


# Options checked against the ranges of :data:`training.config_check.VALUE_CHECKS` (what the service refuses).
_CHECKED_OPTIONS = ("class_weights", "label_smoothing", "focal_gamma", "dice_weight", "ce_weight", "max_weight_ratio",
                    "class_weight_power", "lr", "weight_decay", "warmup_steps", "prior_correction")


class SegmentationModule(L.LightningModule):
    """Semantic segmentation of grey micrographs.

    Parameters
    ----------
    num_classes
        output classes (the data's class table; linked from the DataModule by the CLI).
    class_names
        names of classes 0..num_classes-1, used in metric names (default: :mod:`semcoat.classes`).
    model
        network name (:data:`training.models.MODEL_NAMES`).
    model_options
        options of the network's builder (:mod:`training.models`; e.g. U-Net ``channels``, ``num_res_units``).
    loss
        loss name (:data:`training.losses.LOSS_NAMES`).
    class_weights
        weight per class, ``"auto"`` (median frequency balancing over the class shares of the training
        crops, raised to ``class_weight_power``, when fitting with a :class:`training.data.SegmentationDataModule`)
        or None (equal).
    class_weight_power
        exponent of the automatic weights (1: median frequency balancing; below 1 milder, see
        :func:`training.samples.class_weights`).
    label_smoothing
        of the cross-entropy's targets, in [0, 1) (:class:`training.losses.SegmentationLoss`).
    focal_gamma
        the focal loss's exponent (``loss: focal``).
    dice_weight
        weight of the Dice term of ``dice_ce``.
    ce_weight
        weight of the cross-entropy term of ``dice_ce``.
    max_weight_ratio
        clip of the automatic class weights, [1/r, r].
    lr
        AdamW's learning rate (above 0).
    weight_decay
        AdamW's decoupled weight decay.
    warmup_steps
        linear warm-up of the learning rate, steps (see ``scheduler``).
    scheduler
        ``cosine`` (decay to 1 % of ``lr`` after a linear warm-up of ``warmup_steps``, or of 10 % of the time
        limit ``trainer.max_time`` when that is shorter, over the run's steps or its time limit, whichever runs out
        first: :func:`lr_factor`) or ``constant``.
    channels_last
        run the network in channels-last memory format (faster on CPUs with bf16).
    prior_correction
        share of the class weights' log taken off the logits of every prediction (validation, test,
        predict, exported models): :meth:`logit_offsets`. A weighted cross-entropy moves the logits its optimum gives
        by ``log w_c`` (rare classes are labelled ``argmax_c w_c p_c``, so pores and precipitates grow a rim);
        ``prior_correction`` 1 takes all of it back, 0 none. 0.5 measured best with ``dice_ce`` (the Dice term pulls
        the other way): see :data:`PRIOR_CORRECTION`.
    class_offsets
        logit added to the named classes in every prediction, after the prior correction (e.g.
        ``{"feal": -0.75}``): what ``semcoat train calibrate`` finds so that measurements match the ground truth
        (:mod:`training.calibrate`); None adds nothing.
    init_from
        a checkpoint of an earlier fit whose network weights this fit starts from (fine-tuning, e.g. a model
        trained on renders, on a lab's own labelled micrographs): the same model and classes, weights of the same
        names and shapes; the optimizer, schedule, class weights and offsets start afresh
        (:mod:`training.init_weights`). A resumed fit (``--ckpt_path``) takes its checkpoint's weights instead.
    """

    def __init__(self, num_classes: int = classes.NUM_CLASSES, class_names: list[str] | None = None,
                 model: str = "unet", model_options: dict[str, Any] | None = None, loss: str = "dice_ce",
                 class_weights: list[float] | Literal["auto"] | None = "auto", label_smoothing: float = 0.0,
                 focal_gamma: float = 2.0, dice_weight: float = 1.0, ce_weight: float = 1.0,
                 max_weight_ratio: float = 10.0, class_weight_power: float = 0.75, lr: float = 2e-3,
                 weight_decay: float = 1e-4, scheduler: Literal["cosine", "constant"] = "cosine",
                 warmup_steps: int = 50, channels_last: bool = True,
                 prior_correction: float = PRIOR_CORRECTION, class_offsets: dict[str, float] | None = None,
                 init_from: str | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        for name in _CHECKED_OPTIONS:  # the service's ranges: a NaN weight or a negative lr trained to NaN or crashed
            value = self.hparams[name]
            problem = VALUE_CHECKS[f"model.{name}"](value)
            if problem:
                raise InvalidArgument(f"{problem} (got {value!r})", argument=name)
        names = class_names or [classes.CLASS_NAMES.get(i, f"class{i}") for i in range(num_classes)]
        if len(names) != num_classes:
            raise ValueError(f"class_names holds {len(names)} names for {num_classes} classes")
        self.class_names = list(names)
        self._class_offsets = torch.zeros(num_classes)
        for name, offset in (class_offsets or {}).items():
            # user errors (a config's or a command line's value), named as such by `semcoat train`
            if name not in self.class_names:
                raise InvalidArgument(f"class_offsets names class {name!r}, which the model lacks; its classes: "
                                      f"{', '.join(self.class_names)}")
            if isinstance(offset, bool) or not (isinstance(offset, int | float) and math.isfinite(offset)):
                raise InvalidArgument(f"class_offsets[{name!r}] must be a finite number (got {offset!r})")
            self._class_offsets[self.class_names.index(name)] = float(offset)
        self.net = build_model(model, num_classes, **(model_options or {}))
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        fixed = class_weights if isinstance(class_weights, list) else None
        self.loss_fn = SegmentationLoss(loss, num_classes, fixed, label_smoothing, focal_gamma, dice_weight,
                                        ce_weight)
        self.confusion: dict[str, MulticlassConfusionMatrix] = torch.nn.ModuleDict(  # type: ignore[assignment]
            {stage: MulticlassConfusionMatrix(num_classes, ignore_index=classes.IGNORE_ID, validate_args=False)
             for stage in ("val", "test")})
        self.last_confusion: dict[str, np.ndarray] = {}
        self.last_metrics: dict[str, dict[str, float]] = {}
        self._time_fraction = 0.0  # share of trainer.max_time used, read every TIME_CHECK_STEPS (same on every rank)
        self._initial: dict[str, Tensor] | None = None  # init_from's weights, read once (initial_weights)
        self._restored = False  # the weights came from a checkpoint: init_from is not read

    @property
    def hp(self) -> Any:
        """The saved hyperparameters (attribute access)."""
        return self.hparams

    def setup(self, stage: str) -> None:
        """Take class weights from the training split when ``class_weights`` is ``"auto"``."""
        datamodule: Any = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit" and self.hp.class_weights == "auto" and hasattr(datamodule, "class_weights"):
            weights = datamodule.class_weights(self.hp.max_weight_ratio, power=self.hp.class_weight_power)
            self.loss_fn.set_class_weights(weights)
            log.info("class weights from the training split: %s",
                     dict(zip(self.class_names, np.round(weights, 3).tolist(), strict=True)))

    def initial_weights(self) -> dict[str, Tensor] | None:
        """``init_from``'s network weights, read and checked once (None: no ``init_from``, or this module's weights
        came from a checkpoint, a resumed fit's or ``load_from_checkpoint``'s, which ``init_from`` must not replace).

        ``semcoat train fit`` calls it before the fit starts (nothing is written for a refused file); a fit started
        otherwise reads it in :meth:`on_fit_start`. Every DDP rank reads the same file.
        """
        if self.hp.init_from is None or self._restored:
            return None
        if self._initial is None:
            from training.init_weights import load_initial_weights

            self._initial = load_initial_weights(self.hp.init_from, self.hp.model, self.class_names,
                                                 self.net.state_dict())
        return self._initial

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Weights restored from a checkpoint (a resume, or ``load_from_checkpoint``) are kept: see
        :meth:`initial_weights`."""
        self._restored = True

    def on_fit_start(self) -> None:
        """Start from ``init_from``'s network weights (:meth:`initial_weights`)."""
        weights = self.initial_weights()
        if weights is not None:
            self.net.load_state_dict(weights)
            self._initial = None  # applied: not kept in memory for the whole fit
            self._restored = True
            log.info("starting weights from %s", self.hp.init_from)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Every :data:`TIME_CHECK_STEPS` steps, record the share of the time limit used so far, rank 0's value on
        every rank (the schedule must agree)."""
        if self.trainer.global_step % TIME_CHECK_STEPS and batch_idx:
            return
        timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None)  # type: ignore[attr-defined]
        fraction = 0.0
        if timer is not None:
            elapsed, remaining = timer.time_elapsed(), timer.time_remaining()
            if remaining is not None and elapsed + remaining > 0:
                fraction = elapsed / (elapsed + remaining)
        self._time_fraction = float(self.trainer.strategy.broadcast(fraction, src=0))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, classes, rows, columns) of grey images (N, 1, rows, columns) in [0, 1]; any size (padded to a
        multiple of :data:`training.models.SIZE_MULTIPLE` and cropped back)."""
        padded, (rows, cols) = pad_to_multiple(x)
        if self.hp.channels_last:
            padded = padded.contiguous(memory_format=torch.channels_last)
        return self.net(padded)[..., :rows, :cols]

    def logit_offsets(self) -> Tensor:
        """What every prediction adds to the network's logits (classes,): ``-prior_correction * log(w)`` of the loss's
        class weights ``w`` (a buffer saved with the checkpoint; zeros with equal weights), plus ``class_offsets``."""
        weight = self.loss_fn.weight.float().clamp_min(1e-6)
        return -float(self.hp.prior_correction) * torch.log(weight) + self._class_offsets.to(weight.device)

    def corrected(self, logits: Tensor) -> Tensor:
        """Network logits (N, classes, rows, columns) plus :meth:`logit_offsets`: what predictions argmax."""
        return logits + self.logit_offsets().to(logits.dtype)[None, :, None, None]

    def predict_logits(self, x: Tensor) -> Tensor:
        """Logits as predictions use them: :meth:`corrected` of :meth:`forward`."""
        return self.corrected(self(x))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Loss of one batch of crops.

        Raises
        ------
        TrainingDiverged
            When the loss is not finite on any process (all of them raise together): every later step and
            checkpoint would be NaN.
        """
        loss = self.loss_fn(self(batch["image"]), batch["mask"])
        finite = bool(torch.isfinite(loss.detach()).item())
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:  # every rank decides alike, or the others would hang
            finite = not trainer.strategy.reduce_boolean_decision(not finite, all=False)
        if not finite:
            raise TrainingDiverged(f"the training loss is {loss.item()} at step {self.global_step} (epoch "
                                   f"{self.current_epoch}): the training diverged. A lower --model.lr (now "
                                   f"{self.hparams['lr']:g}) usually mends it; the checkpoints saved before stay")
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def _eval_step(self, stage: str, batch: dict[str, Tensor]) -> Tensor:
        logits = self(batch["image"])
        loss = self.loss_fn(logits, batch["mask"])
        self.confusion[stage].update(self.corrected(logits).argmax(dim=1), batch["mask"])
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val", batch_size=batch["image"].shape[0], sync_dist=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Loss and confusion counts of whole validation images."""
        return self._eval_step("val", batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Loss and confusion counts of whole test images."""
        return self._eval_step("test", batch)

    def _eval_epoch_end(self, stage: str) -> None:
        cm = self.confusion[stage].compute().cpu().numpy()
        self.confusion[stage].reset()
        metrics = stage_metrics(stage, cm, self.class_names)
        self.last_confusion[stage], self.last_metrics[stage] = cm, metrics
        mean = f"{stage}/dice_mean"
        self.log_dict({k: v for k, v in metrics.items() if k != mean}, prog_bar=False)
        self.log(mean, metrics[mean], prog_bar=True)
        log_dir = self.trainer.log_dir if self._trainer is not None else None
        if log_dir and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            (Path(log_dir) / f"confusion_{stage}.csv").write_text(confusion_csv(cm, self.class_names))

    def on_validation_epoch_end(self) -> None:
        """Per-class Dice and IoU of the epoch, the confusion matrix written to the log folder."""
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        """Per-class Dice and IoU of the test split, the confusion matrix written to the log folder."""
        self._eval_epoch_end("test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Class-id masks (N, rows, columns, uint8) and the images' names; each mask as ``semcoat predict`` makes it,
        with its layer islands relabelled (:func:`analysis.layer_islands.remove_layer_islands`: only the order of
        a pixel's scores counts, so the logits serve as well as probabilities)."""
        from analysis.layer_islands import remove_layer_islands

        logits = self.predict_logits(batch["image"]).float().cpu().numpy()
        masks = np.stack([remove_layer_islands(scores) for scores in logits])
        return {"name": batch["name"], "mask": torch.from_numpy(masks)}

    def configure_optimizers(self) -> Any:
        """AdamW with a cosine schedule (per step, or by the time limit's share used) after a linear warm-up
        (:func:`lr_factor`)."""
        hp = self.hp
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == "constant":
            return optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warm = min(hp.warmup_steps, max(total // 10, 1))

        def factor(step: int) -> float:
            return lr_factor(step, total, warm, self._time_fraction)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
