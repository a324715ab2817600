"""Whatever a spec file or a PNG holds, loading it gives a result or one clear error (SpecError / PngError / a
SemcoatError) and never anything else: no RecursionError, no ValueError from int parsing, no unbounded message."""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from semcoat import pngio
from semcoat.batch import BatchSpec, read_json
from semcoat.errors import SemcoatError
from semcoat.params import SpecError
from semcoat.spec import MAX_FRAME_PIXELS, MAX_INCLUSIONS_PER_IMAGE, CoatingSpec
from semcoat_cli.app import app

runner = CliRunner()

# JSON values of any shape, with numbers that are huge, tiny, negative, non-finite, and the keys specs use.
SPEC_KEYS = st.sampled_from(["name", "count", "seed", "base", "randomize", "render", "layers", "pores", "pore_line",
                             "imaging", "pixel_size_um", "fe2al5_thickness_um", "kind", "low", "high", "values",
                             "layers.fe2al5_thickness_um", "images_per_task", "width_px"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(SPEC_KEYS, st.text(max_size=8)), inner, max_size=5)),
    max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_any_json_gives_a_batch_or_a_spec_error(data: object) -> None:
    try:
        batch = BatchSpec.from_dict(data, source="hostile.json")
    except SpecError as exc:
        assert str(exc).startswith(tuple(f"{n} problem(s)" for n in range(1, 1000)))
        assert len(str(exc)) < 20_000
    else:
        assert 1 <= batch.count and batch.to_dict()["count"] == batch.count


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_as_a_spec_file_give_a_spec_or_a_clear_error(tmp_path_factory: pytest.TempPathFactory,
                                                                data: bytes) -> None:
    path = tmp_path_factory.mktemp("spec") / "x.json"
    path.write_bytes(data)
    try:
        read_json(path)
    except SpecError as exc:
        assert "x.json" in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_as_a_png_give_pixels_or_a_png_error(data: bytes) -> None:
    for candidate in (data, pngio.PNG_SIGNATURE + data):
        try:
            header, pixels = pngio.decode_grey(candidate)
        except pngio.PngError:
            continue
        assert len(pixels) == header.width * header.height * header.bit_depth // 8


def test_a_png_with_any_byte_flipped_or_cut_short_is_refused() -> None:
    good = pngio.encode_grey(40, 30, 8, bytes(range(256)) * 4 + bytes(1200 - 1024))
    assert pngio.verify(good).width == 40
    for pos in range(len(good)):
        damaged = bytearray(good)
        damaged[pos] ^= 0x10
        with pytest.raises(pngio.PngError):
            pngio.verify(bytes(damaged))
    for cut in range(len(good)):
        with pytest.raises(pngio.PngError):
            pngio.verify(good[:cut])


def test_a_small_png_claiming_a_huge_frame_is_refused_before_decompressing() -> None:
    # 20000 x 20000 zeros compress to ~400 kB of zlib; the reader must refuse from the header alone
    header = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(20_001) * 50)
    data = pngio.PNG_SIGNATURE + pngio._chunk(b"IHDR", header) + pngio._chunk(b"IDAT", idat) \
        + pngio._chunk(b"IEND", b"")
    with pytest.raises(pngio.PngError, match="20000x20000 image is outside"):
        pngio.decode_grey(data)


def test_deeply_nested_json_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpecError, match="nested too deeply"):
        BatchSpec.load(path)


def test_an_integer_of_thousands_of_digits_is_a_short_spec_error(tmp_path: Path) -> None:
    for digits in (4000, 5000):  # under and over Python's int-to-string limit (4300 digits)
        path = tmp_path / f"big{digits}.json"
        path.write_text('{"count": ' + "9" * digits + "}")
        with pytest.raises(SpecError) as caught:
            BatchSpec.load(path)
        assert len(str(caught.value)) < 400, str(caught.value)[:500]


def test_a_huge_field_name_gives_a_short_message() -> None:
    with pytest.raises(SpecError) as caught:
        BatchSpec.from_dict({"x" * 1_000_000: 1})
    assert "more characters" in str(caught.value) and len(str(caught.value)) < 1000


def test_thousands_of_problems_are_counted_not_all_listed() -> None:
    with pytest.raises(SpecError) as caught:
        BatchSpec.from_dict({f"unknown{i}": i for i in range(5000)})
    text = str(caught.value)
    assert text.startswith("5000 problem(s)") and "... and 4950 more" in text and len(text) < 10_000


@pytest.mark.parametrize("args", [["--count", "1000000000"], ["--seed", "99999999999999999999999"]])
def test_preset_out_of_range_is_a_usage_error_not_a_traceback(args: list[str]) -> None:
    result = runner.invoke(app, ["spec", "preset", "20h_650C", *args])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "expected an integer in" in result.output


def test_a_frame_too_large_to_render_is_refused_with_the_reason() -> None:
    data = {"imaging": {"width_px": 8192, "height_px": 8192}}
    with pytest.raises(SpecError, match=f"more than one image may hold \\({MAX_FRAME_PIXELS}"):
        CoatingSpec.from_dict(data)


def test_a_spec_asking_for_hundreds_of_thousands_of_pores_is_refused() -> None:
    # 30 % pores of radius 0.05 um in a 1024 x 768 frame: spec-valid field by field, hours to place
    data = {"pores": {"area_fraction_pct": 30.0, "radius_mean_um": 0.05, "radius_std_um": 0.0}}
    spec_fields_ok = CoatingSpec.from_dict({"pores": {"area_fraction_pct": 30.0}})  # the fraction alone is fine
    assert spec_fields_ok.pores.area_fraction_pct == 30.0
    with pytest.raises(SpecError, match=f"at most {MAX_INCLUSIONS_PER_IMAGE} per kind") as caught:
        CoatingSpec.from_dict(data)
    assert "pores.area_fraction_pct" in str(caught.value)


def test_expected_inclusions_follow_the_area_they_fill() -> None:
    spec = CoatingSpec.from_dict({"pores": {"area_fraction_pct": 2.0, "radius_mean_um": 1.0, "radius_std_um": 0.0}})
    width_um = spec.imaging.width_px * spec.imaging.pixel_size_um
    expected = width_um * spec.layers.fe2al5_thickness_um * 0.02 / math.pi
    assert spec.expected_inclusions()["pores"] == pytest.approx(expected)


def test_spec_check_of_a_million_images_draws_a_spread_sample(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    result = runner.invoke(app, ["spec", "preset", "5h_650C", "--count", "1000000"])
    path.write_text(result.output)
    check = runner.invoke(app, ["spec", "check", str(path)])
    assert check.exit_code == 0, check.output
    assert "1000000 images" in check.output and "5000 images spread over the batch" in check.output


def test_semcoat_errors_are_not_value_errors() -> None:
    """Commands catch SemcoatError; a ValueError is a bug and must not pass for a user's mistake."""
    for error in (SpecError([]), pngio.PngError("x")):
        assert isinstance(error, SemcoatError) and not isinstance(error, ValueError)
    assert json.loads("1")  # json itself untouched
