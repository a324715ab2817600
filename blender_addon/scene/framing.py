"""Where the frame lies on the coating: the tilt of the cross-section and the part of the coating a frame shows.

The coating is drawn in its own frame, where its surface runs level (``u_um`` along it, ``depth_um`` down), and then
turned about the image centre by the tilt into the image frame (``x_um``, ``depth_um`` below the top edge), so that
what lands in the image is exactly what the renderer draws. Without a tilt both frames are one and nothing is turned.

A tilted frame needs the coating a little wider than the frame: the corners of the turned frame reach
:attr:`Framing.extra_columns` beyond it on each side. Layer profiles turned into the image are sampled again at the
frame's column centres (the renderer joins the samples with straight lines, as for any profile); inclusions are turned
vertex by vertex (rigidly: their areas do not change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from semcoat.spec import CoatingSpec

from .placement import Inclusions


@dataclass(frozen=True)
class Framing:
    """The frame of one image seen from the coating.

    Attributes
    ----------
    pixel_size_um, width_px, height_px, margin_px : the image and its side margins (frame columns).
    tilt_rad : turn of the cross-section in the frame, positive clockwise (the surface descends to the right).
    extra_columns : columns drawn beyond the frame on each side, in the coating's frame (0 without a tilt).
    partial : the frame may show only part of the coating (``imaging.partial_frame``).
    usable_height_px : rows above the data bar.
    """

    pixel_size_um: float
    width_px: int
    height_px: int
    margin_px: int
    tilt_rad: float
    extra_columns: int
    partial: bool
    usable_height_px: int

    @classmethod
    def of(cls, spec: CoatingSpec, margin_px: int) -> Framing:
        """The framing of ``spec``'s image with ``margin_px`` columns of margin on each side."""
        img = spec.imaging
        tilt = math.radians(img.tilt_deg)
        # The turned frame's corners swing out by half its height x sin(tilt) along the coating.
        extra = int(math.ceil(img.height_px / 2 * abs(math.sin(tilt)))) + 2 if tilt != 0.0 else 0
        usable = img.height_px - (img.data_bar_height_px if img.data_bar else 0)
        return cls(img.pixel_size_um, img.width_px, img.height_px, margin_px, tilt, extra, img.partial_frame, usable)

    @property
    def x_um(self) -> np.ndarray:
        """Column centres of the image frame (image plus margins), µm."""
        return (np.arange(self.width_px + 2 * self.margin_px) - self.margin_px + 0.5) * self.pixel_size_um

    @property
    def u_um(self) -> np.ndarray:
        """Column centres of the coating's frame: the image frame's, ``extra_columns`` wider on each side, µm."""
        n = self.width_px + 2 * (self.margin_px + self.extra_columns)
        return (np.arange(n) - self.margin_px - self.extra_columns + 0.5) * self.pixel_size_um

    @property
    def in_image_u(self) -> slice:
        """Index range of ``u_um`` over the image's own columns."""
        start = self.margin_px + self.extra_columns
        return slice(start, start + self.width_px)

    @property
    def centre_um(self) -> tuple[float, float]:
        """The image centre (x, depth), µm: the point the cross-section turns about."""
        return self.width_px * self.pixel_size_um / 2, self.height_px * self.pixel_size_um / 2

    def depth_range_um(self, margin_um: float) -> tuple[float, float]:
        """Depths (coating frame, µm) between which the frame shows anything, widened by ``margin_um`` each way."""
        cx, cy = self.centre_um
        half = (self.height_px / 2 * abs(math.cos(self.tilt_rad))
                + (self.width_px / 2 + self.margin_px) * abs(math.sin(self.tilt_rad))) * self.pixel_size_um
        return cy - half - margin_um, cy + half + margin_um

    def turn(self, u_um: np.ndarray, depth_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points of the coating frame in the image frame, µm: turned by the tilt about the image centre."""
        cx, cy = self.centre_um
        c, s = math.cos(self.tilt_rad), math.sin(self.tilt_rad)
        du, dd = u_um - cx, depth_um - cy
        return cx + du * c - dd * s, cy + du * s + dd * c

    def profile_to_image(self, profile_um: np.ndarray) -> np.ndarray:
        """A depth profile sampled at ``u_um``, turned and sampled again at the image frame's ``x_um``.

        The turned samples keep their order along x as long as the profile is less steep than 1 / tan(tilt) (a
        slope of 11 at 5 degrees; roughness stays far below). Beyond the turned samples the end value is held: only
        where the profile passes outside the frame, which it does on the same side.
        """
        if self.tilt_rad == 0.0:
            return profile_um
        x, depth = self.turn(self.u_um, profile_um)
        return np.interp(self.x_um, np.maximum.accumulate(x), depth)

    def inclusions_to_image(self, inclusions: Inclusions) -> Inclusions:
        """Inclusions turned into the image frame (areas unchanged: a rotation keeps them and their orientation)."""
        if self.tilt_rad == 0.0 or not len(inclusions):
            return inclusions
        x, depth = self.turn(inclusions.polygons_um[..., 0], inclusions.polygons_um[..., 1])
        return Inclusions(np.stack([x, depth], axis=-1), inclusions.areas_um2)
