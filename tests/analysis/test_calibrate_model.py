"""Calibration's picture of image formation against the render node's: the constants it mirrors and the shading's
form. A change of the render node's model fails here, where the estimators that invert it live."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import calibrate_model as model
from blender_addon.render_node import sem_image
from blender_addon.render_node.artefacts import shading_field


def test_the_mirrored_constants_are_the_render_nodes() -> None:
    assert np.allclose(model.SCAN_BANDWIDTH_KERNEL, sem_image.SCAN_BANDWIDTH_KERNEL)
    assert model.RIM_SIGMA_PX == pytest.approx(sem_image.EDGE_SIGMA_PX)
    assert model.FWHM_PER_SIGMA == pytest.approx(float(sem_image.FWHM_PER_SIGMA))
    # The variance a white noise keeps through the bandwidth filter, measured on the render node's own filter.
    rng = np.random.default_rng(0)
    white = rng.standard_normal((400, 400)).astype(np.float32)
    assert float(sem_image.scan_bandwidth(white).var()) == pytest.approx(model.SHOT_VARIANCE_FACTOR, rel=0.02)


@pytest.mark.parametrize(("shape", "seed"), [((384, 512), 1), ((200, 640), 2), ((768, 1024), 3)])
def test_the_shading_basis_spans_the_render_nodes_ramp(shape: tuple[int, int], seed: int) -> None:
    field = shading_field(shape, 0.05, np.random.default_rng(seed))
    rows, cols = np.mgrid[0 : shape[0] : 4, 0 : shape[1] : 4]
    basis = model.shading_basis(rows.ravel(), cols.ravel(), *shape)
    sample = field[::4, ::4].ravel() - 1.0
    coef = np.linalg.lstsq(basis, sample, rcond=None)[0]
    assert np.abs(basis @ coef - sample).max() < 1e-5  # the ramp is a combination of the basis, mean included
    grid = np.mgrid[0 : shape[0], 0 : shape[1]].reshape(2, -1)
    full = model.shading_basis(grid[0], grid[1], *shape)
    assert np.abs(full.mean(axis=0)).max() < 1e-9  # each term averages to 0 over the frame
