"""The torch-free config checks the service runs at submit: their name lists equal the training code's own, the
ready configs pass, overrides merge, and what Lightning's CLI would refuse is refused without torch."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import pytest

from training import config_check as cc


def test_the_name_lists_are_the_training_codes_own() -> None:
    import lightning.pytorch as pl

    from training.augment import AugmentConfig
    from training.data import SegmentationDataModule
    from training.losses import LOSS_NAMES
    from training.models import MODEL_NAMES
    from training.module import SegmentationModule

    assert cc.MODEL_NAMES == MODEL_NAMES and cc.LOSS_NAMES == LOSS_NAMES
    module_keys = [k for k in inspect.signature(SegmentationModule).parameters if k not in ("num_classes",
                                                                                             "class_names")]
    assert list(cc.MODEL_KEYS) == module_keys
    assert list(cc.DATA_KEYS) == list(inspect.signature(SegmentationDataModule).parameters)
    assert list(cc.AUGMENT_KEYS) == [f.name for f in dataclasses.fields(AugmentConfig)]
    assert list(cc.TRAINER_KEYS) == list(inspect.signature(pl.Trainer).parameters)
    assert sorted(cc.READY_CONFIGS) == sorted(p.stem for p in cc.CONFIG_DIR.glob("*.yaml"))


def test_importing_the_checks_imports_no_torch() -> None:
    code = ("import sys, training.config_check, training.slurm; "
            "assert 'torch' not in sys.modules and 'lightning' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", cc.READY_CONFIGS)
def test_the_ready_configs_pass_once_the_service_keys_are_dropped(name: str) -> None:
    doc, dropped = cc.drop_service_keys(cc.parse_config(cc.ready_config_text(name)))
    assert "trainer.devices" in dropped and "trainer.default_root_dir" in dropped
    assert cc.check_config(doc, dataset_count=1) == []


def test_overrides_merge_into_nested_sections_and_service_keys_are_refused() -> None:
    doc, problems = cc.apply_overrides({"trainer": {"max_epochs": 3}}, {
        "trainer.max_steps": 10, "model.model_options.channels": [8, 16], "data.datasets": ["/x"],
        "trainer.strategy.x": 1, "x..y": 2})
    assert doc == {"trainer": {"max_epochs": 3, "max_steps": 10}, "model": {"model_options": {"channels": [8, 16]}}}
    assert {p.path for p in problems} == {("data.datasets",), ("trainer.strategy.x",), ("x..y",)}
    _doc, through_value = cc.apply_overrides({"trainer": {"max_steps": 3}}, {"trainer.max_steps.x": 1})
    assert "not a mapping" in through_value[0].msg


def test_values_are_checked_by_kind_and_bools_are_not_numbers() -> None:
    doc = {"seed_everything": "x", "model": {"lr": True, "class_weights": [1, -1], "channels_last": 1,
                                            "init_from": "runs/best.ckpt"},
           "data": {"crop_px": 16, "batch_size": 2.0, "weights": [0, 0]},
           "trainer": {"precision": "fp8", "max_time": "20 minutes", "logger": True, "profiler": "simple"}}
    problems = {p.dotted: p.msg for p in cc.check_config(doc, dataset_count=2)}
    assert set(problems) == {"seed_everything", "model.lr", "model.class_weights", "model.channels_last",
                             "model.init_from",
                             "data.crop_px", "data.batch_size", "data.weights", "trainer.precision",
                             "trainer.max_time"}


def test_parse_refuses_oversized_text_and_tags() -> None:
    with pytest.raises(cc.ConfigError, match="over the"):
        cc.parse_config("a: 1\n" * 20_000)
    with pytest.raises(cc.ConfigError, match="not valid YAML"):
        cc.parse_config("a: !!python/name:os.system\n")
    assert cc.parse_config("") == {}


def test_a_checkpoint_path_is_absolute_printable_and_bounded() -> None:
    assert cc.checkpoint_path_problem("/home/u/runs/best-epoch003.ckpt") is None
    for bad in ("runs/best.ckpt", "/x/best.pt", "/a\nb.ckpt", "/a\x00.ckpt", "", None, ["/x.ckpt"], 7,
                "/" + "a" * 300 + ".ckpt", "/" + "/".join(["a" * 200] * 30) + ".ckpt"):
        assert cc.checkpoint_path_problem(bad) is not None, bad
