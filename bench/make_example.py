"""Render the README's example: one image of the 20h_650C preset with its data bar, and its mask overlay.

    .venv/bin/python bench/make_example.py [--seed 3] [--out docs]

Writes ``example_render.png`` (the 8-bit SEM image exactly as ``semcoat render`` writes it) and
``example_overlay.png`` (the image blended with the mask in the colours of ``semcoat.classes``, at 3/4 size).
The frame is 768 x 576 px with the preset's field of view, so each file stays below 400 KB.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from analysis.predict import overlay
from blender_addon.render_node.batch_render import render_range
from semcoat.presets import preset_batch

WIDTH_PX, HEIGHT_PX = 768, 576


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()

    batch = preset_batch("20h_650C", count=1, seed=args.seed)
    img = batch.base.imaging
    img.pixel_size_um = round(img.pixel_size_um * img.width_px / WIDTH_PX, 6)
    img.width_px, img.height_px = WIDTH_PX, HEIGHT_PX
    img.data_bar, img.data_bar_height_px = True, 36
    batch.validate()

    from blender_addon.render_node.renderer import Renderer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="semcoat-example-") as tmp:
        render_range(batch, Path(tmp) / "ds", Renderer)
        image_png = (Path(tmp) / "ds" / "images" / "000000.png").read_bytes()
        mask = cv2.imread(str(Path(tmp) / "ds" / "masks" / "000000.png"), cv2.IMREAD_UNCHANGED)
    (out / "example_render.png").write_bytes(image_png)
    grey = cv2.imdecode(np.frombuffer(image_png, np.uint8), cv2.IMREAD_GRAYSCALE)
    rgb = overlay(grey, mask)  # the same colours and blend as `semcoat predict` overlays
    # Shown at 3/4 size: the colour overlay of a noisy image compresses poorly at full size.
    small = cv2.resize(rgb[:, :, ::-1], None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)  # OpenCV writes BGR
    cv2.imwrite(str(out / "example_overlay.png"), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    for name in ("example_render.png", "example_overlay.png"):
        print(f"{out / name}: {(out / name).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
