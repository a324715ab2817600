"""The layered check of predicted masks (``analysis.measure.check_layered``): a whole cross-section or a part of the
stack in order (close-ups that cut the coating) is accepted; noise, blank frames, checkerboards, upside-down images
and scrambled classes are refused, saying why. Prediction then measures a close-up and says what it left empty."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

from analysis import files, predict
from analysis.baseline import segment
from analysis.measure import NoCoatingError, check_layered, measure
from analysis.model import ModelRunError
from semcoat.classes import BACKGROUND, FE2AL5, PORE, PRECIPITATE, SUBSTRATE
from tests.analysis.conftest import grey_image, line_mask
from tests.analysis.masks import scattered_squares, slab, square_lattice
from tests.analysis.test_measure_frames import turned_coating


def with_inclusions(mask: np.ndarray, seed: int = 0, pores: int = 30, precipitates: int = 30) -> np.ndarray:
    """``mask`` with 4 px pores and 3 px precipitates scattered in its Fe2Al5 (a few percent of it, as in a coating)."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero((mask == FE2AL5).any(axis=1))
    span = (int(rows[0]) + 2, int(rows[-1]) - 1)
    scattered_squares(mask, pores, 4, span, rng)
    scattered_squares(mask, precipitates, 3, span, rng, value=PRECIPITATE)
    return mask


def surface_close_up() -> np.ndarray:
    """Resin, then an Fe2Al5 band that runs off the bottom edge (the substrate below the frame)."""
    return with_inclusions(slab(height=160, width=240, surface=20, thickness=400))


def band_close_up() -> np.ndarray:
    """Fe2Al5 from the top edge to the bottom edge (the surface above the frame, the substrate below it)."""
    return with_inclusions(slab(height=160, width=240, surface=0, thickness=400))


def interface_close_up() -> np.ndarray:
    """Fe2Al5 from the top edge, then FeAl and the substrate (the surface above the frame)."""
    return with_inclusions(slab(height=160, width=240, surface=0, thickness=90, feal=8))


CLOSE_UPS = {"surface": surface_close_up, "band": band_close_up, "interface": interface_close_up}


@pytest.mark.parametrize("kind", sorted(CLOSE_UPS))
def test_close_ups_that_show_a_part_of_the_stack_in_order_are_accepted(kind: str) -> None:
    check_layered(CLOSE_UPS[kind]())


@pytest.mark.parametrize("tilt_deg", [-4.0, 3.0])
@pytest.mark.parametrize("surface", [30.0, -60.0, -400.0])
def test_tilted_frames_that_cut_the_coating_are_accepted(tilt_deg: float, surface: float) -> None:
    # surface 30: resin over a band running off the bottom; -60: the band down to FeAl and the substrate; -400: the
    # band alone (the pore line gives it its inclusions)
    mask = turned_coating(tilt_deg, surface=surface, thickness=500.0, feal=8.0, line_depth=80.0 - surface)
    check_layered(mask)


def test_a_frame_with_a_few_columns_of_substrate_is_still_a_close_up() -> None:
    mask = surface_close_up()
    mask[150:, 30:50] = SUBSTRATE  # a bright blob at the bottom edge taken for steel
    check_layered(mask)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("blank", "plain Fe2Al5 from edge to edge"),
        ("porous", "pores and cracks make 40% of the Fe2Al5 band (at most 25%"),
        ("porous_whole", "laid out as resin, coating, substrate, but pores and cracks make 42% of the Fe2Al5 band"),
        ("speckled", "pores, precipitates and cracks make 50% of the Fe2Al5 band (at most 35%"),
        ("resin_below", "pores or resin run along 100% of the bottom edge (at most 50%): resin below the coating, is "
                        "the image upside down?"),
        ("sliver", "laid out as resin, coating, substrate, but the Fe2Al5 band is 3.0 px thick in the median column "
                   "(at least 10 px)"),
        ("flipped", "(at least 60% needed)"),
        ("all_substrate", "(at least 60% needed)"),
        ("all_resin", "(at least 60% needed)"),
        ("resin_under_band", "(at least 60% needed)"),
    ],
)
def test_masks_that_show_no_part_of_a_coating_are_refused_saying_why(name: str, expected: str) -> None:
    rows, cols = np.mgrid[0:160, 0:240]
    masks = {
        # What a model makes of a blank frame: one class everywhere.
        "blank": np.full((160, 240), FE2AL5, np.uint8),
        "all_substrate": np.full((160, 240), SUBSTRATE, np.uint8),
        "all_resin": np.full((160, 240), BACKGROUND, np.uint8),
        # Segmented noise: dark specks everywhere.
        "porous": np.where((rows // 2 + cols // 2) % 5 < 2, PORE, FE2AL5).astype(np.uint8),
        # ... laid out as resin, coating, substrate (blurred noise can be).
        "porous_whole": np.where((rows // 2 + cols // 2) % 5 < 2, PORE, slab(160, 240, 20, 100)).astype(np.uint8),
        # A fine checkerboard of the matrix and bright specks, plus a few pores.
        "speckled": np.where((rows // 3 + cols // 3) % 2 == 1, PRECIPITATE, FE2AL5).astype(np.uint8),
        # An upside-down cross-section as a grey-level segmenter sees it: the steel on top read as coating, the resin
        # at the bottom as one wide pore.
        "resin_below": np.where(rows >= 130, PORE, FE2AL5).astype(np.uint8),
        # The same, labelled by a model that knows the classes: substrate above the coating, resin below.
        "flipped": np.ascontiguousarray(line_mask(0)[::-1]),
        # What the classical baseline makes of a close-up of the surface: the brighter Fe2Al5 below read as steel.
        "sliver": slab(160, 240, surface=20, thickness=3),
        # Resin below the band in every column (a particle on a slide, not a cross-section).
        "resin_under_band": np.where((rows >= 20) & (rows < 120), FE2AL5, BACKGROUND).astype(np.uint8),
    }
    masks["speckled"][40:44, 10:200:20] = PORE
    with pytest.raises(NoCoatingError) as caught:
        check_layered(masks[name], f"{name}.png")
    message = str(caught.value)
    assert message.startswith(f"{name}.png: no coating found: the predicted classes are"), message
    assert expected in message and message.endswith("so nothing is measured"), message


def _noise(kind: str, seed: int, shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return {
        "uniform": lambda: rng.random(shape),
        "normal": lambda: np.clip(rng.normal(0.5, 0.1, shape), 0, 1),
        "poisson": lambda: rng.poisson(20, shape) / 40.0,
        "smooth": lambda: ndi.gaussian_filter(rng.random(shape), 2) * 4 - 1.5,
    }[kind]().astype(np.float32)


@pytest.mark.parametrize("kind", ["uniform", "normal", "poisson", "smooth"])
def test_noise_through_the_classical_baseline_is_refused(kind: str) -> None:
    for seed in range(4):
        for shape in ((160, 240), (300, 400)):
            mask = segment(_noise(kind, seed, shape))
            with pytest.raises(NoCoatingError, match="no coating found"):
                check_layered(mask)


def test_upside_down_images_through_the_classical_baseline_are_refused() -> None:
    rng = np.random.default_rng(3)
    for seed in range(4):
        image = grey_image(line_mask(seed), rng)
        check_layered(segment(image))  # upright: a coating
        with pytest.raises(NoCoatingError, match="no coating found"):
            check_layered(segment(np.ascontiguousarray(image[::-1])))


def test_a_blank_image_is_refused_before_the_check() -> None:
    with pytest.raises(ModelRunError, match="uniform"):
        segment(np.full((160, 240), 0.5, np.float32))


# -- What prediction says about a close-up ----------------------------------------------------------------------------


def test_the_note_names_the_edges_the_frame_does_not_show_and_the_values_left_empty() -> None:
    surface = surface_close_up()
    note = predict.frame_note("s.png", surface, measure(surface, 0.1))
    assert note is not None and note.startswith("s.png: the frame cuts the coating (the Fe2Al5 band runs off the "
                                                "bottom edge (no FeAl or substrate below it in the frame)): ")
    assert "Fe2Al5 thickness, Fe2Al5 thickness std," in note and "FeAl present" in note
    assert "Pore line present" in note  # none found in a band that runs on below the frame: it may lie there
    square_lattice(surface, np.full(240, 20), depths=range(40, 41), columns=range(0, 236, 8), size=4)
    note = predict.frame_note("s.png", surface, measure(surface, 0.1))
    assert note is not None and "Fe2Al5 bottom" in note and "Fe2Al5 top" not in note and "Pore line" not in note
    interface = interface_close_up()
    note = predict.frame_note("i.png", interface, measure(interface, 0.1))
    assert note is not None and "(the surface lies above the top edge)" in note
    assert "Pore line present, Pore line depth" in note and "FeAl" not in note
    band = band_close_up()
    note = predict.frame_note("b.png", band, measure(band, 0.1))
    assert note is not None and "the surface lies above the top edge; the Fe2Al5 band runs off" in note
    assert predict.frame_note("w.png", line_mask(0), measure(line_mask(0), 0.1)) is None
    feal_to_the_edge = slab(height=160, width=240, surface=20, thickness=60, feal=200)
    note = predict.frame_note("f.png", feal_to_the_edge, measure(feal_to_the_edge, 0.1))
    assert note == "f.png: FeAl runs off the bottom edge in most columns: its thickness is not measured (left empty)"


def test_predict_measures_close_ups_and_leaves_what_they_do_not_show_empty(tmp_path: Path, onnx_model: Path) -> None:
    rng = np.random.default_rng(1)
    masks = {name: make() for name, make in CLOSE_UPS.items()}
    paths = []
    for name, mask in masks.items():
        paths.append(tmp_path / f"{name}.png")
        cv2.imwrite(str(paths[-1]), np.round(grey_image(mask, rng) * 255).astype(np.uint8))
    out = tmp_path / "out"
    records = predict.predict_files(onnx_model, paths, out, pixel_size_um=0.1, tile_px=96, overlap_px=16)
    assert [r.failed for r in records] == [False, False, False]
    table = files.read_results_csv(out / "measurements.csv")
    for record in records:
        mask = masks[record.image]
        assert np.mean(files.read_mask(out / "masks" / f"{record.image}.png") == mask) > 0.999
        truth = measure(mask, 0.1).as_dict()
        row = table[record.image]
        assert row["fe2al5_thickness_um"] is None and truth["fe2al5_thickness_um"] is None
        assert row["pore_fraction_pct"] == pytest.approx(truth["pore_fraction_pct"], rel=0.02)
        assert row["precipitate_fraction_pct"] == pytest.approx(truth["precipitate_fraction_pct"], rel=0.02)
        (note,) = [w for w in record.warnings if "the frame cuts the coating" in w]
        assert note.startswith(f"{tmp_path / record.image}.png: ")
    assert table["interface"]["feal_present"] is True and table["interface"]["feal_thickness_um"] == pytest.approx(0.8)
    assert table["surface"]["feal_present"] is None and table["band"]["pore_line_present"] is None
    saved = {r["image"]: r for r in json.loads((out / "predictions.json").read_text())}
    assert any("the frame cuts the coating" in w for w in saved["band"]["warnings"])
    csv_row = next(line for line in (out / "measurements.csv").read_text().splitlines() if line.startswith("band,"))
    assert csv_row.startswith("band,0.1,,,,,,,")  # empty cells, never "None" or "nan"
