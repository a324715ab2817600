"""Segmentation losses: weighted Dice + weighted soft cross-entropy (the published best for the small classes), and
plain cross-entropy, Dice and focal loss for comparison.

All take logits (N, C, rows, columns) and integer targets (N, rows, columns) and compute in float32 (also under
bf16 autocast). Class weights ``w`` (C,) are given, or taken from the class frequencies of the training set
(:func:`training.samples.class_weights`); they are a buffer, so they travel with the checkpoint.

Definitions (sums over every pixel of the batch):

- weighted soft CE: targets are smoothed, ``t = (1 - eps) * onehot + eps / C``; each pixel is weighted by the weight
  of its true class, ``omega = w[y]``; ``CE = sum(omega * -sum_c t_c log p_c) / sum(omega)``. With ``eps = 0`` this
  is ``torch.nn.functional.cross_entropy(logits, y, weight=w)``.
- weighted Dice: per class ``D_c = (2 sum p_c t_c + s) / (sum p_c + sum t_c + s)`` over the whole batch ("batch
  Dice"), ``Dice loss = sum_c w_c (1 - D_c) / sum_c w_c`` over the classes present in the batch's targets. A class
  absent from the targets adds nothing (its Dice is undefined; its false positives are paid through the softmax and
  the CE term).
- focal: ``sum(omega * -(1 - p_y)^gamma log p_y) / sum(omega)``.

Pixels labelled :data:`semcoat.classes.IGNORE_ID` count in none of them: no weight in the CE and focal sums,
neither prediction nor target in the Dice sums.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semcoat import classes
from semcoat.errors import InvalidArgument

LOSS_NAMES = ("dice_ce", "ce", "dice", "focal")
DICE_SMOOTH = 1e-5


def _split_ignored(target: Tensor) -> tuple[Tensor, Tensor]:
    """(target with ignored pixels as class 0, float mask of the pixels that count)."""
    valid = target != classes.IGNORE_ID
    return torch.where(valid, target, torch.zeros_like(target)), valid.float()


def _pixel_weights(target: Tensor, weight: Tensor | None) -> Tensor:
    """Per pixel the weight of its true class, 0 where ignored."""
    target, valid = _split_ignored(target)
    return valid if weight is None else weight[target] * valid


def soft_cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None,
                       smoothing: float = 0.0) -> Tensor:
    """Weighted cross-entropy against label-smoothed targets (see the module docstring), a scalar."""
    log_p = F.log_softmax(logits.float(), dim=1)
    nll = -log_p.gather(1, _split_ignored(target)[0][:, None]).squeeze(1)
    per_pixel = (1.0 - smoothing) * nll + smoothing * (-log_p.mean(dim=1)) if smoothing else nll
    omega = _pixel_weights(target, weight)
    return (omega * per_pixel).sum() / omega.sum().clamp_min(1e-12)


def dice_loss(logits: Tensor, target: Tensor, weight: Tensor | None = None, smooth: float = DICE_SMOOTH) -> Tensor:
    """Weighted batch Dice loss over the classes present in ``target`` (see the module docstring), a scalar."""
    probs = F.softmax(logits.float(), dim=1)
    n_classes = probs.shape[1]
    target, valid = _split_ignored(target)
    probs = probs * valid[:, None]
    onehot = F.one_hot(target, n_classes).permute(0, 3, 1, 2).to(probs.dtype) * valid[:, None]
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    support = onehot.sum(dims)
    dice = (2.0 * inter + smooth) / (probs.sum(dims) + support + smooth)
    w = torch.ones(n_classes, device=probs.device) if weight is None else weight.float()
    w = w * (support > 0)
    return (w * (1.0 - dice)).sum() / w.sum().clamp_min(1e-12)


def focal_loss(logits: Tensor, target: Tensor, weight: Tensor | None = None, gamma: float = 2.0) -> Tensor:
    """Weighted focal loss (see the module docstring), a scalar."""
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, _split_ignored(target)[0][:, None]).squeeze(1)
    omega = _pixel_weights(target, weight)
    per_pixel = -((1.0 - log_p.exp()) ** gamma) * log_p
    return (omega * per_pixel).sum() / omega.sum().clamp_min(1e-12)


class SegmentationLoss(nn.Module):
    """One of :data:`LOSS_NAMES` with its class weights.

    Parameters
    ----------
    name : ``dice_ce`` (``dice_weight * Dice + ce_weight * soft CE``), ``ce``, ``dice`` or ``focal``.
    num_classes : classes of the logits.
    class_weights : weight per class, or None for equal weights (settable later with :meth:`set_class_weights`).
    label_smoothing : ``eps`` of the soft CE (0: hard targets).
    focal_gamma : focusing exponent of the focal loss.
    dice_weight, ce_weight : mix of the two terms of ``dice_ce``.
    """

    weight: Tensor

    def __init__(self, name: str, num_classes: int, class_weights: Sequence[float] | None = None,
                 label_smoothing: float = 0.0, focal_gamma: float = 2.0, dice_weight: float = 1.0,
                 ce_weight: float = 1.0) -> None:
        super().__init__()
        if name not in LOSS_NAMES:
            raise InvalidArgument(f"unknown loss {name!r}; accepted: {', '.join(LOSS_NAMES)}", argument="loss")
        if not 0.0 <= label_smoothing < 1.0:
            raise InvalidArgument(f"label_smoothing must be in [0, 1) (got {label_smoothing})",
                                  argument="label_smoothing")
        self.name = name
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.focal_gamma = focal_gamma
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.register_buffer("weight", torch.ones(num_classes))
        if class_weights is not None:
            self.set_class_weights(class_weights)

    def set_class_weights(self, class_weights: Sequence[float] | Tensor) -> None:
        """Replace the class weights (one non-negative value per class, not all zero)."""
        w = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
        if w.numel() != self.num_classes or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise InvalidArgument(f"class_weights must hold {self.num_classes} non-negative values, not all zero "
                                  f"(got {w.tolist()})", argument="class_weights")
        self.weight.copy_(w.to(self.weight.device))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss of logits (N, C, rows, columns) against class ids (N, rows, columns)."""
        w = self.weight
        if self.name == "ce":
            return soft_cross_entropy(logits, target, w, self.label_smoothing)
        if self.name == "dice":
            return dice_loss(logits, target, w)
        if self.name == "focal":
            return focal_loss(logits, target, w, self.focal_gamma)
        return (self.dice_weight * dice_loss(logits, target, w)
                + self.ce_weight * soft_cross_entropy(logits, target, w, self.label_smoothing))
