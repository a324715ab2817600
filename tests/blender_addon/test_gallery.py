"""The gallery script's panels (bench/make_gallery.py): every feature panel is a valid spec whose parameters exist,
the crop goes where the feature differs, and the README table is rewritten between its markers only."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from semcoat import classes
from semcoat.params import leaf_paths
from semcoat.spec import CoatingSpec

_SPEC = importlib.util.spec_from_file_location(
    "make_gallery", Path(__file__).resolve().parents[2] / "bench" / "make_gallery.py")
assert _SPEC is not None and _SPEC.loader is not None
gallery = importlib.util.module_from_spec(_SPEC)
sys.modules["make_gallery"] = gallery  # its dataclasses look their module up
_SPEC.loader.exec_module(gallery)


@pytest.mark.parametrize("panel", gallery.FEATURES, ids=lambda p: p.name)
def test_each_feature_panel_is_a_valid_spec_with_the_feature_on_and_off(panel) -> None:
    known = set(leaf_paths(CoatingSpec))
    assert set(panel.overrides) | set(panel.setting) <= known  # a renamed parameter would drop the panel
    on, off = gallery.feature_spec(panel), gallery.feature_spec(panel, feature=False)
    for path, value in panel.overrides.items():
        section, leaf = path.split(".", 1)
        assert getattr(getattr(on, section), leaf) == value
    assert on != off


def test_the_crop_goes_where_the_feature_shows_and_pictures_are_small() -> None:
    mask = np.full((768, 1024), classes.FE2AL5, np.uint8)
    mask[:100] = classes.BACKGROUND
    mask[600:] = classes.SUBSTRATE
    plain = np.full(mask.shape, 150, np.uint8)
    grey = plain.copy()
    grey[150:250, 40:120] = 250  # the feature, far left
    render, picture = gallery.panel_pictures(grey, mask, "surface", plain)
    assert render.shape == (144, 192) and picture.shape == (144, 192, 3)
    assert render.max() == 250  # the crop holds the feature
    centred, _ = gallery.panel_pictures(grey, mask, "surface", None)
    assert centred.max() == 150
    whole, _ = gallery.panel_pictures(grey, mask, "whole")
    assert whole.shape == (192, 256)


def test_the_readme_table_is_rewritten_between_its_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{gallery.README_START}\nold\n{gallery.README_END}\nrest\n")
    table = gallery.readme_table([("a", "A"), ("b", "B"), ("c", "C")], Path("docs/gallery"))
    assert gallery.update_readme(readme, table)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{gallery.README_END}\nrest\n") and "old" not in text
    assert "![A](docs/gallery/a.png)![its mask](docs/gallery/a_mask.png)<br>A" in text
    assert text.count("\n| ") == 3  # a header and two rows of two
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not gallery.update_readme(plain, table) and plain.read_text() == "no markers\n"
