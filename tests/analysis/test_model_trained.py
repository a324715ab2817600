"""analysis.model with trained models: the class count comes from the model file, checkpoints load through the
training package or fail with advice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.model import ModelLoadError, load_model


class _Conv(torch.nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_onnx_class_count_is_the_models_own(tmp_path: Path) -> None:
    path = tmp_path / "three.onnx"
    torch.onnx.export(_Conv(3), (torch.rand(1, 1, 32, 32),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
    model = load_model(path)
    assert model.n_classes == 3
    assert model(np.zeros((2, 1, 40, 48), np.float32)).shape == (2, 3, 40, 48)


@pytest.mark.parametrize("classes", [1, 8, 300])
def test_a_model_of_more_classes_than_the_table_or_of_one_is_refused_at_load(tmp_path: Path, classes: int) -> None:
    """Its masks could not be drawn or measured (a class id past the table's palette was an IndexError after the
    image was segmented, and the output folder was left empty)."""
    from semcoat.classes import CLASS_NAMES

    path = tmp_path / f"c{classes}.onnx"
    torch.onnx.export(_Conv(classes), (torch.rand(1, 1, 32, 32),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
    with pytest.raises(ModelLoadError, match=rf"the model outputs {classes} class\(es\); a segmentation model of 2 "
                                             rf"to {len(CLASS_NAMES)} classes is accepted"):
        load_model(path)


def test_torchscript_class_count_from_its_class_names(tmp_path: Path) -> None:
    traced = torch.jit.trace(_Conv(4), torch.rand(1, 1, 16, 16))
    named, bare = tmp_path / "named.pt", tmp_path / "bare.pt"
    torch.jit.save(traced, str(named), _extra_files={"semcoat_classes.json": json.dumps(["a", "b", "c", "d"])})
    torch.jit.save(traced, str(bare))
    assert load_model(named).n_classes == 4
    assert load_model(bare, n_classes=9).n_classes == 9  # no names: the caller's count


def test_unusable_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="semcoat train export CKPT --out model.onnx"):
        load_model(junk)


def test_checkpoint_without_the_training_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "training.export", None)  # as if the train extra were not installed
    with pytest.raises(ModelLoadError, match="install the `train` extra"):
        load_model(ckpt)
