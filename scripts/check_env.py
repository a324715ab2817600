"""Check that an environment holds what the installed extras need: `python scripts/check_env.py all,dev`."""

from __future__ import annotations

import importlib
import sys

# One module per extra that proves the extra is importable; torch must be the pinned CPU build.
PROBES = {
    "render": ["bpy", "scipy", "cv2"],
    "analysis": ["skimage", "tifffile", "matplotlib", "onnxruntime"],
    "train": [
        "torch", "lightning", "monai", "torchmetrics", "einops", "onnx", "albumentations", "tensorboard",
        "jsonargparse",
    ],
    "service": ["fastapi", "celery", "paramiko", "alembic"],
    "dev": ["pytest", "jsonschema", "hypothesis", "schemathesis"],
}


def main(extras_text: str) -> int:
    extras = {e.strip() for e in extras_text.split(",") if e.strip()}
    if "all" in extras:
        extras |= {"render", "analysis", "train", "service"}
    missing = []
    for extra in sorted(extras & set(PROBES)):
        for module in PROBES[extra]:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                missing.append(f"{module} ({extra}): {exc}")
    importlib.import_module("semcoat_cli.app")
    if "train" in extras:
        import torch

        if not torch.__version__.startswith("2.13.0"):
            missing.append(f"torch is {torch.__version__}, expected the pinned 2.13.0 CPU build")
    for line in missing:
        print(f"check_env: missing {line}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "all,dev"))
