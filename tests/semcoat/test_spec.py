"""CoatingSpec / BatchSpec: validation of every field, presets, JSON and schema round trips, deterministic sampling."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from semcoat.batch import BatchSpec, Distribution
from semcoat.errors import InvalidArgument
from semcoat.params import SpecError, leaf_paths
from semcoat.presets import PRESETS, preset, preset_batch
from semcoat.schema import batch_spec_schema, coating_spec_schema
from semcoat.spec import CoatingSpec

LEAVES = leaf_paths(CoatingSpec)


def _with(path: str, value: Any) -> dict[str, Any]:
    data = CoatingSpec().to_dict()
    section, leaf = path.split(".")
    data[section][leaf] = value
    return data


def _error_paths(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        CoatingSpec.from_dict(data)
    return {e.path: e.message for e in info.value.errors}


@pytest.mark.parametrize("path", sorted(LEAVES))
def test_wrong_type_names_the_field(path: str) -> None:
    typ, _ = LEAVES[path]
    bad = 1 if typ is bool else "not-a-number"
    errors = _error_paths(_with(path, bad))
    assert path in errors
    assert "expected" in errors[path]


@pytest.mark.parametrize("path", sorted(p for p, (typ, _) in LEAVES.items() if typ is not bool))
def test_out_of_range_names_the_field_and_the_range(path: str) -> None:
    typ, meta = LEAVES[path]
    if meta["choices"] is not None:
        errors = _error_paths(_with(path, 12))
        assert "one of 8, 16" in errors[path]
        return
    for bad in (meta["minimum"] - 1, meta["maximum"] + 1):
        value = int(bad) if typ is int else bad
        errors = _error_paths(_with(path, value))
        assert path in errors
        assert f"[{meta['minimum']}, {meta['maximum']}]" in errors[path]


def test_all_errors_are_reported_at_once() -> None:
    data = CoatingSpec().to_dict()
    data["layers"]["fe2al5_thickness_um"] = -1
    data["pores"]["area_fraction_pct"] = "lots"
    data["imaging"]["width_px"] = 10.5
    data["imaging"]["bogus"] = 1
    errors = _error_paths(data)
    assert set(errors) == {"layers.fe2al5_thickness_um", "pores.area_fraction_pct", "imaging.width_px",
                           "imaging.bogus"}
    assert "accepted:" in errors["imaging.bogus"]


def test_error_message_shows_value_and_accepted_range() -> None:
    with pytest.raises(SpecError) as info:
        CoatingSpec.from_dict(_with("pores.area_fraction_pct", 45))
    text = str(info.value)
    assert "pores.area_fraction_pct" in text and "45" in text and "[0.0, 30.0] %" in text


def test_nan_and_infinity_are_refused() -> None:
    assert "layers.fe2al5_thickness_um" in _error_paths(_with("layers.fe2al5_thickness_um", float("nan")))


def test_missing_fields_take_documented_defaults() -> None:
    spec = CoatingSpec.from_dict({"layers": {"fe2al5_thickness_um": 70}})
    assert spec.layers.fe2al5_thickness_um == 70.0
    assert spec.pores == CoatingSpec().pores


def test_cross_field_coating_must_fit_the_frame() -> None:
    errors = _error_paths(_with("layers.fe2al5_thickness_um", 900.0))
    assert "layers" in errors and "substrate is in the frame" in errors["layers"]


def test_cross_field_pore_line_inside_fe2al5() -> None:
    data = _with("pore_line.depth_um", 80.0)
    assert "pore_line.depth_um" in _error_paths(data)
    data["pore_line"]["present"] = False
    CoatingSpec.from_dict(data)  # no pore line, no constraint


def test_validate_catches_values_set_from_python() -> None:
    spec = CoatingSpec()
    spec.imaging.pixel_size_um = -1.0
    with pytest.raises(SpecError, match="imaging.pixel_size_um"):
        spec.validate()


def test_grey_defaults_follow_backscatter_order() -> None:
    g = CoatingSpec().grey
    assert g.pore <= g.resin < g.fe2al5 < g.feal < g.substrate
    assert g.fe2al5 < g.precipitate


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_frame_the_whole_coating(name: str) -> None:
    spec = preset(name)
    spec.validate()
    assert spec.coating_bottom_um() < spec.imaging.height_px * spec.imaging.pixel_size_um
    batch = preset_batch(name, count=200, seed=3)
    for i in range(batch.count):
        batch.sample(i)  # every drawn image is a valid spec


def test_longer_anneal_grows_a_thicker_coating_with_feal() -> None:
    short, long = preset("5h_650C"), preset("20h_650C")
    assert long.layers.fe2al5_thickness_um > short.layers.fe2al5_thickness_um
    assert long.layers.feal_present and not short.layers.feal_present


def test_unknown_preset_lists_the_names() -> None:
    with pytest.raises(InvalidArgument, match="accepted: 5h_650C, 20h_650C"):
        preset("1h_900C")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name: str) -> None:
    batch = preset_batch(name, count=7, seed=11)
    again = BatchSpec.from_dict(json.loads(batch.to_json()))
    assert again == batch
    spec = preset(name)
    assert CoatingSpec.from_dict(json.loads(spec.to_json())) == spec


def test_schema_is_valid_and_accepts_presets() -> None:
    for schema in (batch_spec_schema(), coating_spec_schema()):
        jsonschema.Draft202012Validator.check_schema(schema)
    for name in PRESETS:
        jsonschema.validate(preset_batch(name).to_dict(), batch_spec_schema())
        jsonschema.validate(preset(name).to_dict(), coating_spec_schema())


def test_schema_defaults_rebuild_the_default_spec() -> None:
    schema = coating_spec_schema()
    data = {section: {leaf: prop["default"] for leaf, prop in body["properties"].items()}
            for section, body in schema["properties"].items() if section != "$schema"}
    assert CoatingSpec.from_dict(data) == CoatingSpec()


def test_schema_rejects_what_validation_rejects() -> None:
    bad = preset_batch("5h_650C").to_dict()
    bad["base"]["layers"]["fe2al5_thickness_um"] = -5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, batch_spec_schema())
    with pytest.raises(SpecError):
        BatchSpec.from_dict(bad)


def test_sampling_is_deterministic_per_seed_and_index() -> None:
    a = preset_batch("20h_650C", count=50, seed=5)
    b = BatchSpec.from_dict(copy.deepcopy(a.to_dict()))
    assert [a.sample(i) for i in (0, 17, 49)] == [b.sample(i) for i in (0, 17, 49)]
    assert a.sample(17) == a.sample(17)
    assert a.image_seed(17) == b.image_seed(17)
    # order of drawing does not matter, and images differ from each other and across seeds
    assert [a.sample(i) for i in (49, 0)] == [b.sample(i) for i in (49, 0)]
    assert a.sample(1) != a.sample(2)
    c = preset_batch("20h_650C", count=50, seed=6)
    assert c.sample(17) != a.sample(17) and c.image_seed(17) != a.image_seed(17)


def test_distributions_stay_in_range_and_respect_kinds() -> None:
    batch = BatchSpec(count=300, seed=1, randomize={
        "layers.fe2al5_thickness_um": Distribution("uniform", low=50, high=60),
        "pores.area_fraction_pct": Distribution("normal", mean=0.5, std=5.0),  # clipped at 0
        "imaging.data_bar_height_px": Distribution("uniform", low=20, high=40),
        "layers.feal_present": Distribution("choice", values=[True, False]),
    })
    batch.validate()
    samples = [batch.sample(i) for i in range(batch.count)]
    assert all(50 <= s.layers.fe2al5_thickness_um <= 60 for s in samples)
    assert all(0.0 <= s.pores.area_fraction_pct <= 30.0 for s in samples)
    assert any(s.pores.area_fraction_pct == 0.0 for s in samples)
    assert all(isinstance(s.imaging.data_bar_height_px, int) for s in samples)
    assert len({s.imaging.data_bar_height_px for s in samples}) > 5
    assert {s.layers.feal_present for s in samples} == {True, False}


@pytest.mark.parametrize(("randomize", "path", "fragment"), [
    ({"layers.nope": {"kind": "uniform", "low": 1, "high": 2}}, "randomize.layers.nope", "unknown parameter"),
    ({"layers.fe2al5_thickness_um": {"kind": "beta"}}, "randomize.layers.fe2al5_thickness_um.kind", "expected one of"),
    ({"layers.fe2al5_thickness_um": {"kind": "uniform", "low": 5}}, "randomize.layers.fe2al5_thickness_um.high",
     "missing"),
    ({"layers.fe2al5_thickness_um": {"kind": "uniform", "low": 9, "high": 2}},
     "randomize.layers.fe2al5_thickness_um.low", "must not exceed"),
    ({"layers.fe2al5_thickness_um": {"kind": "uniform", "low": 0, "high": 2}},
     "randomize.layers.fe2al5_thickness_um.low", "out of range"),
    ({"layers.feal_present": {"kind": "uniform", "low": 0, "high": 1}}, "randomize.layers.feal_present.kind",
     "only kind 'choice'"),
    ({"layers.feal_present": {"kind": "choice", "values": [True, "yes"]}}, "randomize.layers.feal_present.values[1]",
     "true or false"),
    ({"pores.area_fraction_pct": {"kind": "normal", "mean": 1, "std": -1}}, "randomize.pores.area_fraction_pct.std",
     "out of range"),
])
def test_bad_randomization_names_the_parameter(randomize: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        BatchSpec.from_dict({"randomize": randomize})
    messages = {e.path: e.message for e in info.value.errors}
    assert path in messages and fragment in messages[path]


@pytest.mark.parametrize(("field", "value"), [("count", 0), ("count", True), ("seed", -1), ("name", "a b/c"),
                                              ("name", "")])
def test_bad_batch_fields(field: str, value: Any) -> None:
    with pytest.raises(SpecError, match=field):
        BatchSpec.from_dict({field: value})


def test_batch_level_and_base_errors_come_together() -> None:
    with pytest.raises(SpecError) as info:
        BatchSpec.from_dict({"count": 0, "base": {"layers": {"fe2al5_thickness_um": "x"}}, "extra": 1})
    assert {e.path for e in info.value.errors} == {"count", "base.layers.fe2al5_thickness_um", "extra"}


def test_sample_index_outside_batch() -> None:
    with pytest.raises(IndexError, match="outside this batch of 5"):
        BatchSpec(count=5).sample(5)


def test_task_ranges_cover_the_batch() -> None:
    batch = BatchSpec(count=53)
    batch.render.images_per_task = 25
    assert batch.task_ranges() == [(0, 25), (25, 25), (50, 3)]


@pytest.mark.parametrize("path", ["imaging.width_px", "imaging.height_px", "imaging.pixel_size_um",
                                  "imaging.bit_depth"])
def test_the_image_frame_cannot_vary_within_a_batch(path: str) -> None:
    dist = {"kind": "choice", "values": [16] if path.endswith("bit_depth") else [0.2 if "size" in path else 512]}
    with pytest.raises(SpecError) as info:
        BatchSpec.from_dict({"randomize": {path: dist}})
    messages = {e.path: e.message for e in info.value.errors}
    assert "cannot vary" in messages[f"randomize.{path}"]


def test_a_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(SpecError, match="name"):
        BatchSpec.from_dict({"name": "abc\n"})
