"""Export to ONNX and TorchScript gives the argmax of the torch model; `semcoat predict` takes an exported model and
a checkpoint directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from semcoat.predictions import read_predictions
from semcoat_cli.app import app
from tests.training.synth import image_of, layered_mask
from training.export import CheckpointError, export, load_module

runner = CliRunner()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A float32 grey image (rows, columns) in [0, 1] like the training data, of a size not used in training."""
    rng = np.random.default_rng(5)
    return image_of(layered_mask(160, 224, rng), rng).astype(np.float32) / 255.0


def torch_argmax(ckpt: Path, image: np.ndarray) -> np.ndarray:
    module = load_module(ckpt)
    with torch.inference_mode():
        return module.predict_logits(torch.from_numpy(image)[None, None]).argmax(1)[0].numpy()


def test_exported_logits_carry_the_prior_correction(trained_checkpoint: Path, image: np.ndarray,
                                                    tmp_path: Path) -> None:
    """The exported model's logits are the network's plus -prior_correction * log(class weights): the automatic
    weights of the fit are unequal, so the offsets are not zero, and a model exported from a checkpoint whose
    correction is set to 0 gives the network's logits alone."""
    import onnxruntime as ort

    module = load_module(trained_checkpoint)
    weights = module.loss_fn.weight.numpy()
    assert weights.max() / weights.min() > 1.5, weights
    offsets = module.logit_offsets().numpy()
    assert np.allclose(offsets, -module.hp.prior_correction * np.log(weights), atol=1e-6)
    with torch.inference_mode():
        raw = module(torch.from_numpy(image)[None, None]).numpy()
    session = ort.InferenceSession(str(export(trained_checkpoint, tmp_path / "model.onnx")),
                                   providers=["CPUExecutionProvider"])
    exported = session.run(None, {"image": image[None, None]})[0]
    assert np.allclose(exported, raw + offsets[None, :, None, None], atol=1e-4)

    checkpoint = torch.load(trained_checkpoint, map_location="cpu", weights_only=False)
    checkpoint["hyper_parameters"]["prior_correction"] = 0.0
    uncorrected = tmp_path / "uncorrected.ckpt"
    torch.save(checkpoint, uncorrected)
    session = ort.InferenceSession(str(export(uncorrected, tmp_path / "raw.onnx")), providers=["CPUExecutionProvider"])
    assert np.allclose(session.run(None, {"image": image[None, None]})[0], raw, atol=1e-4)


def test_onnx_export_gives_the_torch_argmax(trained_checkpoint: Path, image: np.ndarray, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    path = export(trained_checkpoint, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": image[None, None]})[0]
    expected = torch_argmax(trained_checkpoint, image)
    assert logits.shape == (1, len(load_module(trained_checkpoint).class_names), 160, 224)
    assert np.array_equal(logits.argmax(1)[0], expected)
    two = session.run(None, {"image": np.stack([image[None], image[None, :, ::-1].copy()])})[0]  # dynamic batch
    assert two.shape[0] == 2 and np.array_equal(two[0].argmax(0), expected)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["semcoat_classes"])[:2] == ["background", "fe2al5"]


def test_torchscript_export_gives_the_torch_argmax(trained_checkpoint: Path, image: np.ndarray,
                                                   tmp_path: Path) -> None:
    from analysis.model import load_model

    path = export(trained_checkpoint, tmp_path / "model.pt")
    model = load_model(path)
    logits = model(image[None, None])
    assert model.n_classes == logits.shape[1] == len(load_module(trained_checkpoint).class_names)
    assert np.array_equal(logits.argmax(1)[0], torch_argmax(trained_checkpoint, image))


def test_export_refuses_bad_input(trained_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="unknown export kind '.h5'"):
        export(trained_checkpoint, tmp_path / "m.h5")
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a checkpoint of a semcoat segmentation model"):
        export(tmp_path / "junk.ckpt", tmp_path / "m.onnx")
    result = runner.invoke(app, ["train", "export", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2 and "no such checkpoint" in result.output
    (tmp_path / "dir.onnx").mkdir()
    for extra, said in ((["--out", str(tmp_path / "dir.onnx")], f"--out: {tmp_path / 'dir.onnx'} is a folder"),
                        (["--out", str(tmp_path / "m.onnx"), "--sample-px", "33"], "--sample-px: the example input "
                         "must be 32 to 4096 pixels a side, in multiples of 32 (the networks halve it five times; got "
                         "(33, 33))"),
                        (["--out", str(tmp_path / "m.onnx"), "--sample-px", "0"], "--sample-px: the example input"),
                        (["--out", "/proc/no/m.onnx"], "--out: /proc/no/m.onnx: cannot write the model there")):
        result = runner.invoke(app, ["train", "export", str(trained_checkpoint), *extra])
        assert result.exit_code == 2 and f"error: {said}" in result.output, result.output
        assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.onnx", "junk.ckpt"]  # no model, no partial file
    # a missing parent folder is made, as calibrate and package make theirs
    nested = tmp_path / "models" / "v1" / "m.pt"
    assert runner.invoke(app, ["train", "export", str(trained_checkpoint), "--out", str(nested),
                               "--sample-px", "64"]).exit_code == 0
    assert [p.name for p in nested.parent.iterdir()] == ["m.pt"]


def test_a_checkpoint_that_diverged_to_nan_is_refused_and_a_nan_model_is_no_coating_reading(
        trained_checkpoint: Path, image: np.ndarray, tmp_path: Path) -> None:
    """A training that diverged writes checkpoints of NaN weights; their every pixel's argmax was class 0, which
    `semcoat predict` reported as "no coating" in the image, blaming the micrograph."""
    from analysis.model import ModelRunError
    from analysis.predict import class_probabilities

    ckpt = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
    name = next(k for k in ckpt["state_dict"] if k.startswith("net.") and ckpt["state_dict"][k].is_floating_point())
    ckpt["state_dict"][name] = torch.full_like(ckpt["state_dict"][name], float("nan"))
    diverged = tmp_path / "diverged.ckpt"
    torch.save(ckpt, diverged)
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), np.round(image * 255).astype(np.uint8))
    for command in (["train", "export", str(diverged), "--out", str(tmp_path / "nan.onnx")],
                    ["predict", "--model", str(diverged), str(tmp_path / "x.png"), "--out", str(tmp_path / "o"),
                     "--pixel-size-um", "0.2"]):
        result = runner.invoke(app, command)
        said = f"holds non-finite weights ({name.removeprefix('net.')})"  # the network's own name of it
        assert result.exit_code in (1, 2) and said in result.output, result.output
    assert not (tmp_path / "nan.onnx").exists() and not (tmp_path / "o").exists()

    class NanModel:  # an exported model that returns NaN (made outside semcoat, or exported before this check)
        n_classes, size_multiple, input_size, batch_size = 7, 32, None, None

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            return np.full((batch.shape[0], 7, *batch.shape[2:]), np.nan, np.float32)

    with pytest.raises(ModelRunError, match="the model returned non-finite logits"):
        class_probabilities(NanModel(), image)  # type: ignore[arg-type]


def test_a_checkpoint_that_would_run_code_is_refused_unread(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "code-ran"

    class Payload:  # loaded without weights_only, it would create the marker file
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (open, (str(marker), "w"))

    hostile = tmp_path / "shared.ckpt"
    hostile.write_bytes(pickle.dumps({"state_dict": {}, "hyper_parameters": Payload()}))
    with pytest.raises(CheckpointError, match="not a checkpoint of a semcoat segmentation model .*refused unread"):
        load_module(hostile)
    import cv2

    micrograph = tmp_path / "micrograph.png"
    cv2.imwrite(str(micrograph), np.zeros((64, 64), np.uint8))
    result = runner.invoke(app, ["predict", "--model", str(hostile), str(micrograph), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "refused unread" in result.output, result.output
    assert not marker.exists()


def test_predict_with_exported_model_and_with_checkpoint(trained_checkpoint: Path, image: np.ndarray,
                                                         tmp_path: Path) -> None:
    import cv2

    micrograph = tmp_path / "in" / "sem.png"
    micrograph.parent.mkdir()
    cv2.imwrite(str(micrograph), np.round(image * 255).astype(np.uint8))
    onnx_path = tmp_path / "model.onnx"
    result = runner.invoke(app, ["train", "export", str(trained_checkpoint), "--out", str(onnx_path)])
    assert result.exit_code == 0, result.output
    masks = {}
    for kind, model in (("onnx", onnx_path), ("ckpt", trained_checkpoint)):
        out = tmp_path / f"out_{kind}"
        result = runner.invoke(app, ["predict", "--model", str(model), str(micrograph), "--out", str(out),
                                     "--pixel-size-um", "0.2", "--no-crop-databar"])
        record = read_predictions(out)["sem"]
        assert record.model == str(model) and "model" not in (record.error or ""), record  # it loaded and ran
        masks[kind] = cv2.imread(str(out / "masks" / "sem.png"), cv2.IMREAD_UNCHANGED)
        assert masks[kind].shape == (160, 224), result.output
    agree = (masks["onnx"] == masks["ckpt"]).mean()
    assert agree > 0.999
    assert set(np.unique(masks["ckpt"])) <= set(range(len(load_module(trained_checkpoint).class_names)))


def test_train_predict_relabels_layer_islands_as_semcoat_predict_does(trained_checkpoint: Path, image: np.ndarray,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from analysis.layer_islands import steel_islands
    from analysis.predict import predict_mask
    from semcoat.classes import FE2AL5, SUBSTRATE
    from tests.analysis.masks import slab
    from training.export import CheckpointModel

    module = load_module(trained_checkpoint)
    batch = {"image": torch.from_numpy(image)[None, None], "name": ["sem"]}
    with torch.inference_mode():
        step = module.predict_step(batch, 0)["mask"][0].numpy()
    assert step.dtype == np.uint8
    expected = predict_mask(CheckpointModel(trained_checkpoint), image, tile_px=256)  # one tile: the whole image
    assert (step == expected).mean() > 0.999

    # Network logits with a patch of steel inside the coating: the written mask has it back as Fe2Al5.
    truth = slab(height=160, width=224, surface=30, thickness=70, feal=8)
    read = truth.copy()
    read[50:70, 60:120] = SUBSTRATE
    logits = np.full((1, module.hp.num_classes, 160, 224), -5.0, np.float32)
    rows, cols = np.indices(truth.shape)
    logits[0, truth, rows, cols] = 1.0
    logits[0, read, rows, cols] = 2.0
    assert steel_islands(read).any()
    monkeypatch.setattr(module, "predict_logits", lambda x: torch.from_numpy(logits))
    np.testing.assert_array_equal(module.predict_step(batch, 0)["mask"][0].numpy(), truth)
    assert (truth[50:70, 60:120] == FE2AL5).all()
