"""Rendered truth masks keep their edges under the step fits of analysis.frame_columns (issue 12): the fits only move
an edge past stray pixels, and a truth mask has none, beyond a lone pixel of a steep interface's staircase."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.frame_columns import frame_columns
from analysis.measure import measure
from blender_addon.scene.geometry import build_geometry
from semcoat import classes
from semcoat.presets import preset_batch
from tests.blender_addon.fakes import RasterRenderer

MARGIN = 3


@pytest.mark.parametrize(
    ("name", "pixel_size_um"),
    [("5h_650C", None), ("20h_650C", None), ("thin_slurry", None), ("5h_650C", 0.05), ("20h_650C", 0.35),
     ("thin_slurry", 0.05)],
)
def test_truth_masks_keep_the_first_row_edges(name: str, pixel_size_um: float | None) -> None:
    batch = preset_batch(name, count=3, seed=4, pixel_size_um=pixel_size_um)
    for i in range(batch.count):
        spec = batch.sample(i)
        renderer = RasterRenderer()
        renderer.build(spec, build_geometry(spec, np.random.default_rng(batch.image_seed(i)), MARGIN))
        mask = renderer.render().mask[:, MARGIN:-MARGIN]
        solid = mask != classes.BACKGROUND
        bottom = (mask == classes.FEAL) | (mask == classes.SUBSTRATE)
        first_solid = np.where(solid.any(0), solid.argmax(0), -1)
        first_bottom = np.where(bottom.any(0), bottom.argmax(0), -1)
        cols = frame_columns(mask)
        np.testing.assert_array_equal(cols.surface_row, first_solid)
        moved = np.flatnonzero(cols.band_bottom_row != first_bottom)
        # A lone pixel of FeAl or steel in a staircase, with Fe2Al5 right below it: at most a few columns, a few rows.
        assert moved.size <= 0.005 * mask.shape[1], (name, i, moved)
        assert np.all(np.abs(cols.band_bottom_row - first_bottom)[moved] <= 4), (name, i, moved)
        assert np.all(first_bottom[moved] >= 0) and cols.bottom_seen[moved].all()


@pytest.mark.parametrize("name", ["5h_650C", "20h_650C", "thin_slurry"])
def test_strays_injected_into_a_rendered_mask_leave_its_measurements(name: str) -> None:
    """What a segmenter strays into, on a rendered coating (rough, tilted, with FeAl, pores and precipitates): FeAl
    and steel islands inside the band and coating specks in the resin, each at least its own height from the edge."""
    batch = preset_batch(name, count=1, seed=8)
    spec = batch.sample(0)
    renderer = RasterRenderer()
    renderer.build(spec, build_geometry(spec, np.random.default_rng(batch.image_seed(0)), MARGIN))
    mask = renderer.render().mask[:, MARGIN:-MARGIN]
    pixel_um = spec.imaging.pixel_size_um
    clean = measure(mask, pixel_um)
    cols = frame_columns(mask)
    strayed = mask.copy()
    rng = np.random.default_rng(3)
    for _ in range(60):
        size = int(rng.integers(3, 12))
        c = int(rng.integers(0, mask.shape[1] - size))
        top = int(cols.surface_row[c : c + size].max())
        bottom = int(cols.band_bottom_row[c : c + size].min())
        r = int(rng.integers(top + 1, bottom - 3 * size))
        strayed[r : r + size, c : c + size] = rng.choice([classes.FEAL, classes.SUBSTRATE])
        r = int(rng.integers(0, top - 3 * size))
        strayed[r : r + size, c : c + size] = rng.choice([classes.FE2AL5, classes.PRECIPITATE, classes.SUBSTRATE])
    m = measure(strayed, pixel_um)
    assert m.fe2al5_thickness_um == pytest.approx(clean.fe2al5_thickness_um, abs=pixel_um)
    assert m.feal_present == clean.feal_present
    assert m.pore_line_present == clean.pore_line_present
    assert m.pore_fraction_pct == pytest.approx(clean.pore_fraction_pct, rel=0.05)
