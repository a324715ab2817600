"""The user guide's picture of the add-on's design step: what *Render preview image* shows in Blender.

    .venv/bin/python bench/make_guide_pictures.py [--preset 20h_650C] [--index 0] [--out docs/guide]

The add-on's own code makes it (``blender_addon.preview.render_preview``: the scene builder, the render node's
exact-mask render and the numpy preview sketch), so the picture is what a user gets in the Image Editor's two
images ``semcoat preview`` and ``semcoat preview mask``: written side by side as ``addon_preview.png`` at half
size. (The bpy module draws no UI, so there is no screenshot of the panel itself; the README shows its layout as text.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from semcoat.presets import PRESETS, preset_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="20h_650C", choices=sorted(PRESETS))
    parser.add_argument("--index", type=int, default=0, help="image of the preset batch (the panel's Preview image)")
    parser.add_argument("--out", default="docs/guide")
    args = parser.parse_args()

    from blender_addon.preview import render_preview
    from blender_addon.preview_image import mask_colours

    batch = preset_batch(args.preset, count=max(1, args.index + 1))
    image, mask, _sample = render_preview(batch, args.index)
    grey = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    colours = np.clip(np.rint(mask_colours(mask) * 255.0), 0, 255).astype(np.uint8)
    gap = np.full((grey.shape[0], 16, 3), 255, np.uint8)
    pair = np.concatenate([np.repeat(grey[..., None], 3, axis=2), gap, colours], axis=1)
    half = cv2.resize(pair, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "addon_preview.png"
    cv2.imwrite(str(path), half[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])  # OpenCV writes BGR
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB ({args.preset}, image {args.index})")


if __name__ == "__main__":
    main()
