"""Losses against values computed by hand, with class weights and with a class absent from the targets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from semcoat.errors import InvalidArgument
from training.losses import SegmentationLoss, dice_loss, focal_loss, soft_cross_entropy

# Two pixels, three classes. Pixel 0: logits (0, ln 3, 0) -> p = (0.2, 0.6, 0.2), true class 1.
# Pixel 1: logits (ln 4, 0, 0) -> p = (4/6, 1/6, 1/6), true class 0. Class 2 is absent from the targets.
LOGITS = torch.tensor([[0.0, math.log(3.0), 0.0], [math.log(4.0), 0.0, 0.0]]).T.reshape(1, 3, 1, 2)
TARGET = torch.tensor([[[1, 0]]])
P = [[0.2, 0.6, 0.2], [4 / 6, 1 / 6, 1 / 6]]


def test_weighted_cross_entropy_by_hand_and_against_torch() -> None:
    w = torch.tensor([1.0, 3.0, 5.0])
    expected = (3.0 * -math.log(0.6) + 1.0 * -math.log(4 / 6)) / (3.0 + 1.0)
    got = soft_cross_entropy(LOGITS, TARGET, w)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert got.item() == pytest.approx(F.cross_entropy(LOGITS, TARGET, weight=w).item(), rel=1e-6)


def test_soft_cross_entropy_with_label_smoothing_by_hand() -> None:
    eps = 0.3
    w = torch.tensor([1.0, 2.0, 1.0])
    per = []
    for p, y in zip(P, (1, 0), strict=True):
        t = [(1 - eps) * (c == y) + eps / 3 for c in range(3)]
        per.append(-sum(tc * math.log(pc) for tc, pc in zip(t, p, strict=True)))
    expected = (2.0 * per[0] + 1.0 * per[1]) / 3.0
    assert soft_cross_entropy(LOGITS, TARGET, w, smoothing=eps).item() == pytest.approx(expected, rel=1e-6)


def test_weighted_dice_skips_a_class_absent_from_the_targets() -> None:
    # class 0: inter = 4/6, sum p = 0.2 + 4/6, sum t = 1; class 1: inter = 0.6, sum p = 0.6 + 1/6, sum t = 1
    d0 = 2 * (4 / 6) / (0.2 + 4 / 6 + 1)
    d1 = 2 * 0.6 / (0.6 + 1 / 6 + 1)
    w = torch.tensor([1.0, 3.0, 100.0])  # class 2's weight must not count: it is absent
    expected = (1.0 * (1 - d0) + 3.0 * (1 - d1)) / 4.0
    assert dice_loss(LOGITS, TARGET, w).item() == pytest.approx(expected, rel=1e-4)
    assert dice_loss(LOGITS, TARGET).item() == pytest.approx(((1 - d0) + (1 - d1)) / 2, rel=1e-4)


def test_focal_loss_by_hand() -> None:
    w = torch.tensor([2.0, 1.0, 1.0])
    expected = (1.0 * -(0.4**2) * math.log(0.6) + 2.0 * -((1 / 3) ** 2) * math.log(4 / 6)) / 3.0
    assert focal_loss(LOGITS, TARGET, w, gamma=2.0).item() == pytest.approx(expected, rel=1e-6)
    # gamma 0 is the weighted cross-entropy
    assert focal_loss(LOGITS, TARGET, w, gamma=0.0).item() == pytest.approx(
        soft_cross_entropy(LOGITS, TARGET, w).item(), rel=1e-6)


def test_dice_ce_is_the_sum_and_weights_travel_in_the_state_dict() -> None:
    loss = SegmentationLoss("dice_ce", 3, [1.0, 3.0, 5.0], dice_weight=0.5, ce_weight=2.0)
    w = torch.tensor([1.0, 3.0, 5.0])
    expected = 0.5 * dice_loss(LOGITS, TARGET, w) + 2.0 * soft_cross_entropy(LOGITS, TARGET, w)
    assert loss(LOGITS, TARGET).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.state_dict()["weight"].tolist() == [1.0, 3.0, 5.0]


def test_perfect_prediction_costs_nothing() -> None:
    target = torch.tensor([[[0, 1], [1, 0]]])
    logits = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50.0
    for name in ("dice_ce", "ce", "dice", "focal"):
        assert SegmentationLoss(name, 3)(logits, target).item() == pytest.approx(0.0, abs=1e-4), name


def test_bad_loss_options() -> None:
    with pytest.raises(InvalidArgument, match="accepted: dice_ce, ce, dice, focal"):
        SegmentationLoss("hinge", 3)
    with pytest.raises(InvalidArgument, match="3 non-negative values"):
        SegmentationLoss("ce", 3, [1.0, 2.0])


@pytest.mark.parametrize("name", ["dice_ce", "ce", "dice", "focal"])
def test_ignored_pixels_count_in_no_loss(name: str) -> None:
    """A third pixel labelled IGNORE_ID changes no loss, whatever its logits: the loss equals that of the two
    labelled pixels alone, and the CE term equals torch's cross-entropy with ``ignore_index``."""
    from semcoat.classes import IGNORE_ID

    w = [1.0, 3.0, 5.0]
    loss = SegmentationLoss(name, 3, w)
    expected = loss(LOGITS, TARGET).item()
    for ignored_logits in ([9.0, -4.0, 0.0], [0.0, 0.0, 30.0]):
        logits = torch.cat([LOGITS, torch.tensor(ignored_logits).reshape(1, 3, 1, 1)], dim=3)
        target = torch.tensor([[[1, 0, IGNORE_ID]]])
        assert loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
        if name == "ce":
            torch_ce = F.cross_entropy(logits, target, weight=torch.tensor(w), ignore_index=IGNORE_ID)
            assert loss(logits, target).item() == pytest.approx(torch_ce.item(), rel=1e-6)


def test_a_batch_of_ignored_pixels_only_gives_zero_loss_not_nan() -> None:
    from semcoat.classes import IGNORE_ID

    loss = SegmentationLoss("dice_ce", 3, [1.0, 2.0, 3.0])
    value = loss(LOGITS, torch.full((1, 1, 2), IGNORE_ID))
    assert torch.isfinite(value) and value.item() == 0.0
