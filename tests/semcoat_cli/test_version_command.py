"""``semcoat version``: what an installation is, and the comparison the render service makes with the cluster's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from blender_addon.render_node.batch_render import GENERATOR_VERSION
from semcoat import __version__
from semcoat.schema import batch_spec_schema
from semcoat.versions import InstalledVersion, compatibility_problems, schema_fingerprint
from semcoat_cli.app import app


def test_version_json_names_the_package_the_generator_and_the_schema_fingerprint() -> None:
    proc = subprocess.run([sys.executable, "-m", "semcoat_cli", "version", "--json"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = InstalledVersion.from_json(proc.stdout)
    assert info.semcoat == __version__ and info.generator == GENERATOR_VERSION
    assert info.batch_schema == schema_fingerprint(batch_spec_schema()) and len(info.batch_schema) == 64
    assert "render" in info.parts
    from training.config_check import train_config_fingerprint

    assert info.train_config == train_config_fingerprint() and len(info.train_config) == 64


def test_version_without_json_is_for_people() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0 and f"generator: {GENERATOR_VERSION}" in result.output


def test_the_fingerprint_ignores_wording_but_not_meaning() -> None:
    schema = batch_spec_schema()
    base = schema_fingerprint(schema)
    reworded = json.loads(json.dumps(schema))
    reworded["title"] = "another title"
    reworded["properties"]["count"]["description"] = "how many, reworded"
    assert schema_fingerprint(reworded) == base
    for change in ("default", "maximum", "field"):
        changed = json.loads(json.dumps(schema))
        if change == "default":
            changed["properties"]["count"]["default"] = 7
        elif change == "maximum":
            changed["properties"]["count"]["maximum"] = 5
        else:
            changed["properties"]["description"] = {"type": "string"}  # a field of that name is meaning, not words
        assert schema_fingerprint(changed) != base, change


def test_compatible_means_same_schema_and_same_renderer() -> None:
    service = InstalledVersion("0.1.0", "renderer 12", "a" * 64, ("render", "train"))
    assert compatibility_problems(service, service) == []
    older = InstalledVersion("0.1.0", "renderer 11", "b" * 64, ("render",))
    problems = compatibility_problems(service, older, needs=("render", "train"))
    assert len(problems) == 3
    assert "bbbbbbbbbbbb, the service's aaaaaaaaaaaa" in problems[0] and "'renderer 11'" in problems[1]
    assert problems[2] == "it lacks the train part"
    # a service without the render part knows no generator: the package versions are compared
    slim = InstalledVersion("0.2.0", None, "a" * 64, ())
    assert compatibility_problems(slim, service) == ["its version differs (0.1.0, the service's 0.2.0)"]


def test_trainings_also_need_the_same_training_config_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from training import config_check

    ours = config_check.train_config_fingerprint()
    monkeypatch.setattr(config_check, "MODEL_KEYS", config_check.MODEL_KEYS[:-1])  # a cluster without init_from
    theirs = config_check.train_config_fingerprint()
    assert theirs != ours
    service = InstalledVersion("0.1.0", "renderer 17", "a" * 64, ("render", "train"), ours)
    older = InstalledVersion("0.1.0", "renderer 17", "a" * 64, ("render", "train"), theirs)
    assert compatibility_problems(service, older, needs=("render",)) == []  # batches do not read training configs
    assert compatibility_problems(service, older, needs=("train",)) == [
        f"its training-config keys differ ({theirs[:12]}, the service's {ours[:12]})"]
    unsaid = InstalledVersion.from_json(json.dumps({"semcoat": "0.1.0", "generator": "renderer 17",
                                                    "batch_schema": "a" * 64, "parts": ["render", "train"]}))
    assert unsaid.train_config is None
    assert compatibility_problems(service, unsaid, needs=("train",)) == [
        "it does not say which training configs it reads (older than the service's)"]
    assert InstalledVersion.from_json(service.to_json()) == service


@pytest.mark.parametrize("text", ["[]", '{"semcoat": "0.1.0"}', '{"semcoat": 1, "batch_schema": "x"}',
                                  '{"semcoat": "0.1.0", "batch_schema": "x", "parts": "render"}', "not json",
                                  '{"semcoat": "0.1.0", "batch_schema": "x", "train_config": 7}'])
def test_a_bad_version_line_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        InstalledVersion.from_json(text)
