"""What a renderer hands to image formation (bpy-free, so fakes and tests can build one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from blender_addon.scene.geometry import CoatingGeometry
from blender_addon.scene.stopping import StopCheck
from semcoat.errors import SemcoatError
from semcoat.spec import CoatingSpec


class RenderError(SemcoatError):
    """The renderer could not start, or a frame could not be rendered or read back (the message says which, why and,
    where it can, what to install or change)."""


@dataclass
class RenderedFrame:
    """One render, frame sized: image height x (image width + 2 margins).

    Attributes
    ----------
    signal : float32, the emitted grey (0-1) at each pixel centre.
    mask : uint8 class ids of the same pixels.
    """

    signal: np.ndarray
    mask: np.ndarray


class FrameRenderer(Protocol):
    """Draws a coating geometry and renders it (the Blender renderer, or a fake in tests).

    ``engine`` names what draws the frames (``"workbench"``, ``"cycles"``, ...) and ``engine_note`` says why, for the
    render log.
    """

    engine: str
    engine_note: str

    def build(self, spec: CoatingSpec, geometry: CoatingGeometry) -> None:
        """Put ``geometry`` into the scene."""

    def render(self, should_stop: StopCheck | None = None) -> RenderedFrame:
        """Render the current scene, asking ``should_stop`` at least about once a second (``Interrupted`` when it
        answers True)."""

    def close(self) -> None:
        """Release scratch files."""
