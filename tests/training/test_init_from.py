"""Fine-tuning: a fit starts from an earlier checkpoint's network weights (``--model.init_from``), checked against
the network it builds, and never reads that file again once its own checkpoint exists."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from semcoat.errors import InvalidArgument
from tests.training.conftest import FAST, datasets_arg
from training.init_weights import load_initial_weights
from training.lightning_cli import CONFIG_DIR, run

SMALL = {"channels": [8, 16, 32], "num_res_units": 1}
SMALL_ARG = ["--model.model_options", '{"channels": [8, 16, 32], "num_res_units": 1}']
NAMES = ["background", "fe2al5", "feal", "substrate", "pore", "precipitate", "crack"]


def net_parameters(ckpt: Path) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    # parameters only: BatchNorm running statistics move in any forward pass in train mode, learning rate 0 or not
    return {k: v for k, v in state.items() if k.startswith("net.") and not k.endswith(
        ("running_mean", "running_var", "num_batches_tracked"))}


def test_a_fit_starts_from_the_checkpoints_weights_and_never_reads_it_again(
        trained_checkpoint: Path, tiny_datasets: list[Path], tmp_path: Path) -> None:
    source = tmp_path / "source.ckpt"
    shutil.copyfile(trained_checkpoint, source)
    # learning rate 0: the weights at the end are the weights at the start
    args = ["--config", str(CONFIG_DIR / "unet.yaml"), *datasets_arg(tiny_datasets), *FAST, *SMALL_ARG,
            "--model.lr", "0", "--data.crops_per_epoch", "8", "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(tmp_path / "tuned"), "--model.init_from", str(source)]
    cli = run(["fit", *args])
    last = Path(cli.trainer.checkpoint_callback.last_model_path)  # type: ignore[union-attr]
    start, tuned = net_parameters(source), net_parameters(last)
    assert start.keys() == tuned.keys() and all(torch.equal(start[k], tuned[k]) for k in start)

    without = run(["fit", *args[:-2], "--trainer.default_root_dir", str(tmp_path / "fresh")])
    fresh = net_parameters(Path(without.trainer.checkpoint_callback.last_model_path))  # type: ignore[union-attr]
    assert not all(torch.equal(start[k], fresh[k]) for k in start)  # a fresh start is not the source

    source.unlink()  # the fine-tuned checkpoint stands alone: loaded, exported and resumed without the source
    from training.export import export, load_module

    assert load_module(last).hparams.init_from == str(source)
    assert export(last, tmp_path / "model.onnx").is_file()
    resumed = run(["fit", *args[:-4], "--trainer.max_epochs", "2", "--trainer.default_root_dir",
                   str(tmp_path / "tuned"), "--model.init_from", str(source), "--ckpt_path", str(last)])
    assert resumed.trainer.current_epoch == 2


def test_a_checkpoint_of_another_network_or_other_classes_is_refused(trained_checkpoint: Path,
                                                                     tmp_path: Path) -> None:
    assert load_initial_weights(trained_checkpoint, "unet", SMALL, NAMES).keys()
    with pytest.raises(InvalidArgument, match=r"unet network with model_options .*8, 16, 32.* builds a unet with "
                                              r".*16, 32, 64"):
        load_initial_weights(trained_checkpoint, "unet", {**SMALL, "channels": [16, 32, 64]}, NAMES)
    with pytest.raises(InvalidArgument, match="builds a deeplab"):
        load_initial_weights(trained_checkpoint, "deeplab", SMALL, NAMES)
    with pytest.raises(InvalidArgument, match="classes must be the same, in the same order"):
        load_initial_weights(trained_checkpoint, "unet", SMALL, [*NAMES[:2], NAMES[3], NAMES[2], *NAMES[4:]])
    with pytest.raises(InvalidArgument, match="no such checkpoint file"):
        load_initial_weights(tmp_path / "missing.ckpt", "unet", SMALL, NAMES)

    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    plain = tmp_path / "plain.ckpt"
    torch.save({"weight": torch.zeros(2)}, plain)

    class Payload:  # a pickle that would run code when loaded without weights_only
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("code ran",))

    hostile = tmp_path / "hostile.ckpt"
    hostile.write_bytes(pickle.dumps({"state_dict": Payload()}))
    for path in (garbage, plain, hostile):
        with pytest.raises(InvalidArgument, match="is not a checkpoint of `semcoat train fit`") as raised:
            load_initial_weights(path, "unet", SMALL, NAMES)
        assert raised.value.argument == "init_from"


def test_the_command_says_what_is_wrong_with_init_from(tiny_datasets: list[Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    missing = tmp_path / "runs" / "best.ckpt"
    result = CliRunner().invoke(app, ["train", "fit", "--config", str(CONFIG_DIR / "unet.yaml"),
                                      *datasets_arg(tiny_datasets), *FAST, "--trainer.max_epochs", "1",
                                      "--trainer.default_root_dir", str(tmp_path / "out"),
                                      "--model.init_from", str(missing)])
    assert result.exit_code == 2 and f"no such checkpoint file {missing}" in result.output
    assert "Traceback" not in result.output
