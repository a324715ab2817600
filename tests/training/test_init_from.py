"""Fine-tuning: a fit starts from an earlier checkpoint's network weights (``--model.init_from``), checked against
the network it builds, and never reads that file again once its own checkpoint exists."""

from __future__ import annotations

import copy
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
    # a learning rate far below float32's resolution of the weights (0 is refused): the weights at the end are the
    # weights at the start
    args = ["--config", str(CONFIG_DIR / "unet.yaml"), *datasets_arg(tiny_datasets), *FAST, *SMALL_ARG,
            "--model.lr", "1e-30", "--data.crops_per_epoch", "8", "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(tmp_path / "tuned"), "--model.init_from", str(source)]
    cli = run(["fit", *args])
    last = Path(cli.trainer.checkpoint_callback.last_model_path)  # type: ignore[union-attr]
    start, tuned = net_parameters(source), net_parameters(last)
    assert start.keys() == tuned.keys() and all(torch.equal(start[k], tuned[k]) for k in start)

    from training.module import SegmentationModule

    fresh = SegmentationModule(model_options=SMALL).net.state_dict()  # a start without init_from is not the source
    assert not all(torch.equal(start[k], fresh[k[len("net."):]]) for k in start)

    source.unlink()  # the fine-tuned checkpoint stands alone: loaded, exported and resumed without the source
    from training.export import export, load_module

    assert load_module(last).hparams.init_from == str(source)
    assert export(last, tmp_path / "model.onnx").is_file()
    resumed = run(["fit", *args[:-4], "--trainer.max_epochs", "2", "--trainer.default_root_dir",
                   str(tmp_path / "tuned"), "--model.init_from", str(source), "--ckpt_path", str(last)])
    assert resumed.trainer.current_epoch == 2


def small_unet_weights(**options: object) -> dict[str, torch.Tensor]:
    from training.models import build_model

    return build_model("unet", len(NAMES), **{**SMALL, **options}).state_dict()


def test_a_checkpoint_of_another_network_or_other_classes_is_refused(trained_checkpoint: Path,
                                                                     tmp_path: Path) -> None:
    ours = small_unet_weights()
    assert load_initial_weights(trained_checkpoint, "unet", NAMES, ours).keys() == ours.keys()
    with pytest.raises(InvalidArgument, match=r"do not fit the network this fit builds .*of another shape"):
        load_initial_weights(trained_checkpoint, "unet", NAMES, small_unet_weights(channels=[16, 32, 64]))
    with pytest.raises(InvalidArgument, match=r"missing .*not in this network"):
        load_initial_weights(trained_checkpoint, "unet", NAMES, small_unet_weights(channels=[8, 16, 32, 64]))
    with pytest.raises(InvalidArgument, match="holds a unet network; this fit builds a deeplab"):
        load_initial_weights(trained_checkpoint, "deeplab", NAMES, ours)
    with pytest.raises(InvalidArgument, match="classes must be the same, in the same order"):
        load_initial_weights(trained_checkpoint, "unet", [*NAMES[:2], NAMES[3], NAMES[2], *NAMES[4:]], ours)
    with pytest.raises(InvalidArgument, match="no such checkpoint file"):
        load_initial_weights(tmp_path / "missing.ckpt", "unet", NAMES, ours)
    with pytest.raises(InvalidArgument, match="is a folder"):
        load_initial_weights(tmp_path, "unet", NAMES, ours)
    for empty in ("", "  "):
        with pytest.raises(InvalidArgument, match="an empty path"):
            load_initial_weights(empty, "unet", NAMES, ours)
    with pytest.raises(InvalidArgument, match="cannot be read"):
        load_initial_weights(tmp_path / ("a" * 5000 + ".ckpt"), "unet", NAMES, ours)

    source = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
    first = next(k for k in source["state_dict"] if k.startswith("net.") and k.endswith("weight"))

    def variant(name: str, change: object) -> Path:
        changed = copy.deepcopy(source)
        change(changed)  # type: ignore[operator]
        path = tmp_path / f"{name}.ckpt"
        torch.save(changed, path)
        return path

    refused = {
        "non-finite weights": variant("nan", lambda c: c["state_dict"][first].fill_(float("nan"))),
        "1 missing": variant("missing", lambda c: c["state_dict"].pop(first)),
        "no class table": variant("classes", lambda c: c["hyper_parameters"].update(class_names=None)),
        "names no semcoat network": variant("model", lambda c: c["hyper_parameters"].pop("model")),
    }
    for words, path in refused.items():
        with pytest.raises(InvalidArgument, match=words):
            load_initial_weights(path, "unet", NAMES, ours)
    # options that change no weight may differ (the weights' names and shapes decide)
    dropout = variant("dropout", lambda c: c["hyper_parameters"]["model_options"].update(dropout=0.1))
    assert load_initial_weights(dropout, "unet", NAMES, ours).keys() == ours.keys()

    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    plain = tmp_path / "plain.ckpt"
    torch.save({"weight": torch.zeros(2)}, plain)

    class Payload:  # a pickle that would run code when loaded without weights_only
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("code ran",))

    hostile = tmp_path / "hostile.ckpt"
    hostile.write_bytes(pickle.dumps({"state_dict": Payload()}))
    for path, words in ((garbage, "is not a checkpoint of `semcoat train fit`"),
                        (plain, "is not a checkpoint of `semcoat train fit`"),
                        (hostile, "is not a checkpoint of `semcoat train fit` .*refused unread")):
        with pytest.raises(InvalidArgument, match=words) as raised:
            load_initial_weights(path, "unet", NAMES, ours)
        assert raised.value.argument == "init_from" and "\x1b" not in str(raised.value)


def test_the_command_refuses_a_bad_init_from_before_writing_anything(trained_checkpoint: Path,
                                                                      tiny_datasets: list[Path],
                                                                      tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    def fit(init_from: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["train", "fit", "--config", str(CONFIG_DIR / "unet.yaml"),
                                          *datasets_arg(tiny_datasets), *FAST, "--trainer.max_epochs", "1",
                                          "--trainer.default_root_dir", str(tmp_path / "out"),
                                          "--model.init_from", init_from])
        return result.exit_code, result.output

    missing = tmp_path / "runs" / "best.ckpt"
    for given, words in ((str(missing), f"--model.init_from: no such checkpoint file {missing}"),
                         ("", "--model.init_from: an empty path"),
                         (str(trained_checkpoint), "do not fit the network this fit builds")):  # 8-128 channels here
        code, output = fit(given)
        assert code == 2 and words in output and "Traceback" not in output, output
    assert not (tmp_path / "out").exists()  # refused before the fit made its log folders
    # one of several processes a launcher started says which it is (torchrun's variables: srun's would make
    # Lightning validate a Slurm job here)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RANK", "1")
        env.setenv("WORLD_SIZE", "2")
        code, output = fit(str(missing))
    assert code == 2 and f"error: rank 1 of 2: --model.init_from: no such checkpoint file {missing}" in output, output
