"""Islands of steel or coating cut off from their layer, relabelled from a model's probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.layer_islands import BRIDGE_PX, band_bridges, coating_islands, remove_layer_islands, steel_islands
from semcoat.classes import BACKGROUND, CRACK, FE2AL5, FEAL, NUM_CLASSES, PORE, PRECIPITATE, SUBSTRATE
from tests.analysis.masks import slab

# slab(): resin rows 0-39, Fe2Al5 40-99, FeAl 100-109, steel from 110 (200 x 300)
STACK = {"surface": 40, "thickness": 60, "feal": 10}


def probabilities(first: np.ndarray, second: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities (classes, rows, columns) whose likeliest class is ``first`` and, where given, whose
    runner-up is ``second`` (every other class far behind)."""
    p = np.full((NUM_CLASSES, *first.shape), 0.01, np.float32)
    rows, cols = np.indices(first.shape)
    if second is not None:
        p[second, rows, cols] = 0.2
    p[first, rows, cols] = 0.7
    return p


def test_a_clean_stack_is_the_plain_argmax_and_the_input_is_left_alone() -> None:
    truth = slab(**STACK)
    truth[50:54, 10:290:20] = PORE
    truth[70:73, 15:290:30] = PRECIPITATE
    truth[40:100, 150] = CRACK  # a crack through the whole coating: two pieces, each meeting the resin
    second = np.full(truth.shape, FE2AL5)
    p = probabilities(truth, second)
    before = p.copy()
    assert not coating_islands(truth).any() and not steel_islands(truth).any()
    np.testing.assert_array_equal(remove_layer_islands(p), truth)
    np.testing.assert_array_equal(p, before)


def test_steel_read_inside_the_coating_takes_its_runner_up() -> None:
    truth = slab(**STACK)
    read = truth.copy()
    read[60:80, 100:160] = SUBSTRATE  # a bright stretch of Fe2Al5 read as steel
    result = remove_layer_islands(probabilities(read, truth))
    np.testing.assert_array_equal(result, truth)


def test_textured_steel_read_as_coating_under_the_feal_band_becomes_steel() -> None:
    truth = slab(**STACK)
    read = truth.copy()
    read[120:180, 30:250] = FE2AL5  # steel grains read as Fe2Al5 with inclusions, all under a whole FeAl band
    read[130:134, 40:240:25] = PRECIPITATE
    read[150:153, 60:200:35] = PORE
    second = np.where(read == SUBSTRATE, FEAL, SUBSTRATE)
    result = remove_layer_islands(probabilities(read, second))
    np.testing.assert_array_equal(result, truth)


@pytest.mark.parametrize("gap", ["left edge", "right edge", "middle"])
def test_a_misread_patch_joined_to_the_coating_through_a_narrow_gap_in_the_band_is_an_island(gap: str) -> None:
    # The steel under a whole FeAl band read as Fe2Al5, but the band stops short of a side edge (where a tile has no
    # context beyond) or has a stretch the model missed: the patch joins the coating through the gap.
    truth = slab(**STACK)  # FeAl rows 100-109, steel from 110, 300 columns wide
    columns = {"left edge": slice(0, 3), "right edge": slice(296, 300), "middle": slice(150, 158)}[gap]
    read = truth.copy()
    read[110:, :] = FE2AL5
    read[100:, columns] = FE2AL5
    second = np.where(read == FE2AL5, SUBSTRATE, FE2AL5)
    bridges = band_bridges(read)
    assert np.array_equal(np.flatnonzero(bridges.any(axis=0)), np.arange(300)[columns])
    assert np.array_equal(np.flatnonzero(bridges.any(axis=1)), np.arange(100, 100 + BRIDGE_PX))
    expected = truth.copy()
    expected[100:110, columns] = SUBSTRATE  # under the bridge: part of the patch, whose runner-up is steel
    expected[bridges] = FE2AL5  # the bridge itself is kept as read
    np.testing.assert_array_equal(remove_layer_islands(probabilities(read, second)), expected)


def test_a_wide_gap_in_the_band_is_not_bridged() -> None:
    # 30 of 300 columns without FeAl or steel is more than a missed stretch: the coating there is kept as read.
    truth = slab(**STACK)
    read = truth.copy()
    read[110:, :] = FE2AL5
    read[100:, 150:180] = FE2AL5
    assert not band_bridges(read).any() and not band_bridges(truth).any()
    np.testing.assert_array_equal(remove_layer_islands(probabilities(read, np.full(read.shape, SUBSTRATE))), read)


def test_a_coating_pocket_inside_a_steel_island_goes_back_with_it() -> None:
    # The steel island is read inside the coating and holds a pocket of Fe2Al5 (with steel its runner-up): step 1
    # takes the pocket for a coating island and makes it steel, step 2 turns the whole island back to Fe2Al5.
    truth = slab(**STACK)
    read = truth.copy()
    read[55:90, 80:200] = SUBSTRATE
    read[65:75, 120:150] = FE2AL5
    second = np.where(read == SUBSTRATE, FE2AL5, SUBSTRATE)
    result = remove_layer_islands(probabilities(read, second))
    np.testing.assert_array_equal(result, truth)


def test_steel_left_inside_the_feal_band_by_step_one_ends_feal() -> None:
    # A coating island inside the FeAl band whose runner-up is steel becomes steel (step 1), a steel island then
    # whose runner-up is Fe2Al5 again (step 2); step 3 gives it FeAl, never the coating again.
    truth = slab(height=200, width=300, surface=40, thickness=60, feal=40)  # FeAl rows 100-139
    read = truth.copy()
    read[110:125, 100:140] = FE2AL5
    second = np.where(read == FE2AL5, SUBSTRATE, FE2AL5)
    p = probabilities(read, second)
    p[FEAL, 110:125, 100:140] = 0.1  # FeAl third: steps 1 and 2 both pick another class
    result = remove_layer_islands(p)
    assert (result[110:125, 100:140] == FEAL).all()
    np.testing.assert_array_equal(result[truth != FEAL], truth[truth != FEAL])
    assert not coating_islands(result).any() and not steel_islands(result).any()


@pytest.mark.parametrize("frame", ["upside down", "close-up without steel", "sample edge in the frame"])
def test_steel_is_kept_as_read_where_none_reaches_the_bottom_edge(frame: str) -> None:
    truth = slab(**STACK)
    if frame == "upside down":
        read = truth[::-1].copy()  # steel at the top, resin at the bottom
        patch = (slice(150, 160), slice(100, 140))
    elif frame == "close-up without steel":
        read = truth[:100].copy()  # resin over Fe2Al5 running off the bottom edge
        patch = (slice(60, 80), slice(100, 140))
    else:
        read = truth.copy()
        read[180:] = BACKGROUND  # the mount's resin below the sample's edge
        patch = (slice(60, 80), slice(100, 140))
    read[patch] = SUBSTRATE  # a patch of steel in the coating
    result = remove_layer_islands(probabilities(read, np.full(read.shape, FE2AL5)))
    np.testing.assert_array_equal(result, read)


def test_coating_is_anchored_by_the_resin_wherever_it_lies_and_by_the_top_edge() -> None:
    truth = slab(**STACK)
    upside_down = truth[::-1].copy()
    upside_down[20:30, 100:140] = FE2AL5  # coating inside the steel (now at the top): it meets no resin
    expected = truth[::-1].copy()
    result = remove_layer_islands(probabilities(upside_down, np.full(truth.shape, SUBSTRATE)))
    np.testing.assert_array_equal(result, expected)

    close_up = truth[60:].copy()  # Fe2Al5 from the top edge, FeAl, steel: no resin in the frame
    close_up[80:100, 100:140] = FE2AL5
    result = remove_layer_islands(probabilities(close_up, np.full(close_up.shape, SUBSTRATE)))
    np.testing.assert_array_equal(result, truth[60:])


def test_a_sideways_frame_is_treated_like_an_upright_one() -> None:
    # Turned 90 degrees: the steel band runs to the bottom edge, the coating meets the resin.
    truth = np.rot90(slab(**STACK)).copy()  # resin on the left, steel on the right
    read = truth.copy()
    read[100:140, 60:80] = SUBSTRATE
    result = remove_layer_islands(probabilities(read, truth))
    np.testing.assert_array_equal(result, truth)


def test_a_speck_on_the_anchor_does_not_make_the_layer_itself_an_island() -> None:
    # The sample's edge inside the frame leaves resin below the steel; a bright particle in that resin, read as steel,
    # is the only steel on the bottom edge (3 of 300 columns: no anchor). The steel layer stays as read.
    truth = slab(**STACK)
    truth[180:] = BACKGROUND
    read = truth.copy()
    read[197:, 50:53] = SUBSTRATE
    result = remove_layer_islands(probabilities(read, np.full(read.shape, FEAL)))
    np.testing.assert_array_equal(result, read)

    # Plating read as steel over the whole width between the resin and the Fe2Al5, and a few pixels of the resin read
    # as pore: the pore is the only coating meeting the resin (40 of 300 columns: no anchor). The Fe2Al5 stays, and
    # the plating, cut off from the substrate, takes its runner-up, resin.
    truth = slab(**STACK)
    read = truth.copy()
    read[34:40] = SUBSTRATE
    read[20:23, 30:70] = PORE
    second = np.where(read == SUBSTRATE, BACKGROUND, FE2AL5)
    result = remove_layer_islands(probabilities(read, second))
    expected = read.copy()
    expected[34:40] = BACKGROUND
    np.testing.assert_array_equal(result, expected)


def test_probabilities_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(classes, rows, columns\).*got shape \(3, 10, 10\)"):
        remove_layer_islands(np.zeros((3, 10, 10), np.float32))
    with pytest.raises(ValueError, match="got shape"):
        remove_layer_islands(np.zeros((10, 10), np.float32))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (1, 1), (1, 7)])
def test_degenerate_frames_give_the_plain_argmax(shape: tuple[int, int]) -> None:
    # empty frames, and one row: every pixel is on both the top and the bottom edge, so nothing is an island
    p = np.random.default_rng(0).random((NUM_CLASSES, *shape)).astype(np.float32)
    result = remove_layer_islands(p)
    assert result.shape == shape and result.dtype == np.uint8
    np.testing.assert_array_equal(result, p.argmax(axis=0))


def test_fewer_classes_than_the_table_are_relabelled_among_those_given() -> None:
    # A model trained before cracks were appended: six channels.
    truth = slab(**STACK)
    read = truth.copy()
    read[60:80, 100:160] = SUBSTRATE
    p = probabilities(read, truth)[:CRACK]
    np.testing.assert_array_equal(remove_layer_islands(p), truth)
    assert BACKGROUND in np.unique(remove_layer_islands(p))
