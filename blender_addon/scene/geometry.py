"""Coating geometry from a spec: interface profiles and inclusion polygons, in micrometres, without bpy.

Coordinates: ``x_um`` runs along the surface from the left image edge, ``depth_um`` runs down from the top image edge
(rows = depth). The frame is the image plus ``margin_px`` columns on each side (room for scan-line shifts), so
``x_um`` spans ``[-margin_px * p, (width_px + margin_px) * p]``.

The layers are described by depth profiles sampled at every pixel-column centre of the frame (the renderer joins the
samples with straight lines): the coating surface, the bottom of Fe2Al5 and the bottom of FeAl (equal to the bottom
of Fe2Al5 when there is no FeAl). Pores, pore-line pores and precipitates are star-shaped polygons (perturbed ellipses)
that never overlap one another and lie wholly inside the Fe2Al5 band, so the area of each class is the sum of its
polygons' areas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.spatial import cKDTree

from semcoat.spec import CoatingSpec

VERTICES_PER_INCLUSION = 32
# Inclusions keep this gap (in pixels) to each other and to the band edges, so neighbours never merge in the mask.
GAP_PX = 0.75
# Smallest equivalent-circle radius (px) an inclusion may have: smaller ones would vanish between pixel centres.
MIN_RADIUS_PX = 0.8
# Largest radius as a multiple of the mean: the log-normal tail would otherwise throw rare giants.
MAX_RADIUS_FACTOR = 4.0
# Amplitude bound of the low-order harmonics that make an ellipse look like a real, irregular pore or particle.
SHAPE_PERTURBATION = 0.22
SHAPE_ORDERS = np.arange(2, 7)
# Largest radial factor the harmonics can reach (they stay below 1 in sum, so shapes stay star-shaped).
WOBBLE_MAX = 1.0 + SHAPE_PERTURBATION * float((1.0 / SHAPE_ORDERS).sum())
PLACEMENT_ROUNDS = 12
# Placement stops when the area still missing is below this share of one mean inclusion's area.
STOP_REMAINING_AREA_FRACTION = 0.05
# Pores of the pore line are elongated along the line, up to this aspect ratio.
LINE_PORE_MAX_ASPECT = 2.5


@dataclass
class Inclusions:
    """Non-overlapping star-shaped polygons of one class.

    Attributes
    ----------
    polygons_um : ndarray, shape (n, VERTICES_PER_INCLUSION, 2)
        Vertices (x_um, depth_um), counter-clockwise in the (x, -depth) plane.
    areas_um2 : ndarray, shape (n,)
        Polygon areas, µm².
    """

    polygons_um: np.ndarray
    areas_um2: np.ndarray

    @classmethod
    def empty(cls) -> Inclusions:
        """No inclusion."""
        return cls(np.zeros((0, VERTICES_PER_INCLUSION, 2)), np.zeros(0))

    def __len__(self) -> int:
        return int(self.areas_um2.size)


@dataclass
class CoatingGeometry:
    """Everything the renderer draws for one image, in micrometres.

    Attributes
    ----------
    pixel_size_um, width_px, height_px, margin_px : the frame (image plus margins left and right).
    x_um : column-centre positions of the frame, shape (width_px + 2 * margin_px,).
    surface_um, fe2al5_bottom_um, feal_bottom_um : depth profiles at ``x_um``; equal bottoms mean no FeAl.
    pores, line_pores, precipitates : the inclusions.
    designed : the values the geometry was designed to have (see :func:`designed_values`).
    """

    pixel_size_um: float
    width_px: int
    height_px: int
    margin_px: int
    x_um: np.ndarray
    surface_um: np.ndarray
    fe2al5_bottom_um: np.ndarray
    feal_bottom_um: np.ndarray
    pores: Inclusions
    line_pores: Inclusions
    precipitates: Inclusions
    designed: dict[str, Any] = field(default_factory=dict)

    @property
    def in_image(self) -> slice:
        """Index range of ``x_um`` (and the profiles) that falls inside the image."""
        return slice(self.margin_px, self.margin_px + self.width_px)


def rough_profile(
    x_um: np.ndarray, amplitude_um: float, wavelength_um: float, rng: np.random.Generator
) -> np.ndarray:
    """Zero-mean random roughness: a sum of sinusoids around ``wavelength_um`` plus weaker finer ones.

    Parameters
    ----------
    x_um : positions along the surface, µm.
    amplitude_um : half the peak-to-valley height of the result over ``x_um``, µm (0 gives a flat profile).
    wavelength_um : dominant wavelength, µm.
    rng : random generator (consumed the same way whatever the amplitude, so other draws do not shift).

    Returns
    -------
    ndarray
        Depth offsets, µm, with mean 0 over ``x_um`` and (max - min) / 2 == amplitude_um.
    """
    n_main, n_fine = 6, 8
    wavelengths = np.concatenate([
        wavelength_um * np.exp(rng.normal(0.0, 0.3, n_main)),
        wavelength_um / 3.5 * np.exp(rng.normal(0.0, 0.4, n_fine)),
    ])
    weights = np.concatenate([np.ones(n_main), np.full(n_fine, 0.22)]) * rng.uniform(0.6, 1.0, n_main + n_fine)
    phases = rng.uniform(0.0, 2 * np.pi, n_main + n_fine)
    profile = (weights[:, None] * np.sin(2 * np.pi * x_um[None, :] / wavelengths[:, None] + phases[:, None])).sum(0)
    profile -= profile.mean()
    half_range = (profile.max() - profile.min()) / 2
    if amplitude_um <= 0 or half_range <= 0:
        return np.zeros_like(x_um)
    return profile * (amplitude_um / half_range)


def _lognormal_radii(rng: np.random.Generator, mean_um: float, std_um: float, n: int, min_um: float) -> np.ndarray:
    sigma = np.sqrt(np.log1p((std_um / mean_um) ** 2))
    mu = np.log(mean_um) - sigma**2 / 2
    r = rng.lognormal(mu, sigma, n)
    return np.clip(r, min_um, max(min_um, MAX_RADIUS_FACTOR * mean_um))


def _star_polygons(
    centres: np.ndarray, radii: np.ndarray, aspects: np.ndarray, angles_rad: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Perturbed ellipses: equivalent-circle radius ``radii``, long/short axis ``aspects``, long-axis angle to the
    surface ``angles_rad`` (pi/2 points into the depth). Returns (polygons (n, K, 2), areas (n,))."""
    n, k = radii.size, VERTICES_PER_INCLUSION
    t = np.linspace(0.0, 2 * np.pi, k, endpoint=False)
    a = radii * np.sqrt(aspects)
    b = radii / np.sqrt(aspects)
    orders = SHAPE_ORDERS
    amps = rng.uniform(0.0, SHAPE_PERTURBATION, (n, orders.size)) / orders
    phases = rng.uniform(0.0, 2 * np.pi, (n, orders.size))
    wobble = 1.0 + (amps[:, :, None] * np.cos(orders[None, :, None] * t + phases[:, :, None])).sum(1)
    u = a[:, None] * np.cos(t) * wobble
    v = b[:, None] * np.sin(t) * wobble
    c, s = np.cos(angles_rad)[:, None], np.sin(angles_rad)[:, None]
    # (u, v) in a frame where +v is up; depth grows downwards, so flip v's sign when going to depth.
    x = centres[:, 0:1] + u * c - v * s
    depth = centres[:, 1:2] - (u * s + v * c)
    polygons = np.stack([x, depth], axis=-1)
    # Shoelace in the (x, -depth) plane, where the vertices run counter-clockwise.
    y = -depth
    areas = 0.5 * (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(1)
    return polygons, areas


@dataclass
class _Placed:
    """Bounding circles of the inclusions accepted so far (all classes)."""

    centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    radii: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def free(self, centres: np.ndarray, radii: np.ndarray, gap_um: float) -> np.ndarray:
        """Mask of candidates that overlap neither the placed circles nor earlier free candidates (draw order)."""
        n_old = self.radii.size
        all_c = np.concatenate([self.centres, centres])
        all_r = np.concatenate([self.radii, radii])
        reach = 2 * float(all_r.max()) + gap_um
        pairs = cKDTree(all_c).query_pairs(reach, output_type="ndarray")
        ok = np.ones(radii.size, dtype=bool)
        if pairs.size:
            d = np.hypot(*(all_c[pairs[:, 0]] - all_c[pairs[:, 1]]).T)
            pairs = pairs[d < all_r[pairs[:, 0]] + all_r[pairs[:, 1]] + gap_um]
            # Candidates clashing with an already placed circle go at once; the rest is resolved in draw order,
            # so any prefix of the free candidates is itself free of clashes.
            old_clash = pairs[(pairs[:, 0] < n_old) & (pairs[:, 1] >= n_old)]  # placed circles never clash
            ok[old_clash[:, 1] - n_old] = False
            new = pairs[pairs[:, 0] >= n_old] - n_old
            for i, j in new[np.lexsort((new[:, 0], new[:, 1]))]:
                if ok[i] and ok[j]:
                    ok[j] = False
        return ok

    def add(self, centres: np.ndarray, radii: np.ndarray) -> None:
        """Record placed circles."""
        self.centres = np.concatenate([self.centres, centres])
        self.radii = np.concatenate([self.radii, radii])


@dataclass
class _Population:
    """How one kind of inclusion is drawn."""

    target_area_um2: float
    radius_mean_um: float
    radius_std_um: float
    aspect: tuple[str, float]  # ("max", e): uniform in [1, e]; ("mean", e): log-normal around e
    angle_mean_rad: float
    angle_spread_rad: float  # normal spread; inf = uniform orientation
    depth_window: Any  # (x_index, bounding_radius) -> (low_um, high_um) of allowed centre depths


def _place(
    pop: _Population, x_um: np.ndarray, x_allowed: np.ndarray, placed: _Placed, pixel_size_um: float,
    rng: np.random.Generator,
) -> Inclusions:
    """Draw inclusions of ``pop`` at column positions where ``x_allowed`` holds until their area reaches the target."""
    if pop.target_area_um2 <= 0 or not x_allowed.any():
        return Inclusions.empty()
    allowed_idx = np.flatnonzero(x_allowed)
    gap_um = GAP_PX * pixel_size_um
    mean_area = np.pi * pop.radius_mean_um**2 * (1 + (pop.radius_std_um / pop.radius_mean_um) ** 2)
    polys: list[np.ndarray] = []
    areas: list[np.ndarray] = []
    total = 0.0
    for _ in range(PLACEMENT_ROUNDS):
        remaining = pop.target_area_um2 - total
        if remaining <= STOP_REMAINING_AREA_FRACTION * mean_area:
            break
        n = max(4, int(np.ceil(2.0 * remaining / mean_area)))
        radii = _lognormal_radii(rng, pop.radius_mean_um, pop.radius_std_um, n, MIN_RADIUS_PX * pixel_size_um)
        kind, e = pop.aspect
        if kind == "max":
            aspects = rng.uniform(1.0, e, n)
        else:
            aspects = np.maximum(1.0, e * np.exp(rng.normal(0.0, 0.25, n)))
        if np.isinf(pop.angle_spread_rad):
            angles = rng.uniform(0.0, np.pi, n)
        else:
            angles = pop.angle_mean_rad + rng.normal(0.0, 1.0, n) * pop.angle_spread_rad
        ix = allowed_idx[rng.integers(0, allowed_idx.size, n)]
        x = x_um[ix] + rng.uniform(-0.5, 0.5, n) * pixel_size_um
        # Shapes are drawn around the origin first: their exact bounding radius decides where the centre may go.
        poly, area = _star_polygons(np.zeros((n, 2)), radii, aspects, angles, rng)
        bounding = np.sqrt((poly**2).sum(-1)).max(1)
        low, high = pop.depth_window(ix, bounding)
        fits = high > low
        depth = low + rng.uniform(0.0, 1.0, n) * np.maximum(high - low, 0.0)
        if not fits.any():
            continue
        sel = np.flatnonzero(fits)
        centres = np.stack([x[sel], depth[sel]], 1)
        sel = sel[placed.free(centres, bounding[sel], gap_um)]
        # Keep only as many free candidates (in draw order) as the remaining area needs: the target is not overshot.
        sel = sel[: int(np.searchsorted(np.cumsum(area[sel]), remaining)) + 1]
        placed.add(np.stack([x[sel], depth[sel]], 1), bounding[sel])
        polys.append(poly[sel] + np.stack([x[sel], depth[sel]], 1)[:, None, :])
        areas.append(area[sel])
        total += float(area[sel].sum())
    if not polys:
        return Inclusions.empty()
    return Inclusions(np.concatenate(polys), np.concatenate(areas))


def _covered_columns(width: int, coverage: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean per image column: where the pore line holds pores (``coverage`` of the width, in 1-3 segments)."""
    covered = np.zeros(width, dtype=bool)
    n_gaps = int(rng.integers(1, 4))
    gap_lengths = (1.0 - coverage) * width * rng.dirichlet(np.ones(n_gaps))
    seg_lengths = coverage * width * rng.dirichlet(np.ones(n_gaps))
    start = rng.uniform(0.0, width)
    pos = start
    for seg, gap in zip(seg_lengths, gap_lengths, strict=True):
        idx = (np.arange(int(np.floor(pos)), int(np.floor(pos + seg)))) % width
        covered[idx] = True
        pos += seg + gap
    return covered


def build_geometry(spec: CoatingSpec, rng: np.random.Generator, margin_px: int = 0) -> CoatingGeometry:
    """The coating of ``spec`` drawn with ``rng``: layer profiles and inclusions, in micrometres.

    Parameters
    ----------
    spec : the (validated) coating spec of one image.
    rng : random generator; the same generator state always gives the same geometry.
    margin_px : extra columns on each side of the image (scan-line shifts read into them).

    Returns
    -------
    CoatingGeometry
        With ``designed`` holding the design values (µm, %).
    """
    img, lay = spec.imaging, spec.layers
    p = img.pixel_size_um
    n_cols = img.width_px + 2 * margin_px
    x_um = (np.arange(n_cols) - margin_px + 0.5) * p
    width_um = img.width_px * p

    surface = lay.surface_depth_um + rough_profile(
        x_um, lay.surface_roughness_amplitude_um, lay.surface_roughness_wavelength_um, rng)
    variation = rough_profile(x_um, lay.fe2al5_thickness_variation_um, max(width_um * 0.6, 1.0), rng)
    interface = rough_profile(x_um, lay.interface_roughness_amplitude_um, lay.interface_roughness_wavelength_um, rng)
    # The interface follows the surface (the coating grows inwards from it), so roughness does not change thickness.
    thickness = lay.fe2al5_thickness_um + variation + interface
    thickness -= thickness[margin_px:margin_px + img.width_px].mean() - lay.fe2al5_thickness_um
    fe2al5_bottom = surface + np.maximum(thickness, p)
    feal_profile = rough_profile(x_um, 0.25 * lay.feal_thickness_um, max(width_um * 0.3, 1.0), rng)
    if lay.feal_present:
        feal_thickness = np.maximum(lay.feal_thickness_um + feal_profile, 0.3 * lay.feal_thickness_um)
        feal_bottom = fe2al5_bottom + feal_thickness
    else:
        feal_bottom = fe2al5_bottom.copy()

    band_area_um2 = float((fe2al5_bottom - surface).sum() * p)
    placed = _Placed()
    gap_um = GAP_PX * p
    every_column = np.ones(n_cols, dtype=bool)

    def band_window(top: np.ndarray, bottom: np.ndarray, max_reach_um: float) -> Any:
        # Running max/min over the widest inclusion, so a centre's whole bounding circle stays in the band.
        size = 2 * int(np.ceil(max_reach_um / p)) + 1
        top_max = maximum_filter1d(top, size, mode="nearest")
        bottom_min = minimum_filter1d(bottom, size, mode="nearest")

        def window(ix: np.ndarray, reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return top_max[ix] + reach + gap_um, bottom_min[ix] - reach - gap_um

        return window

    line = spec.pore_line
    line_pores = Inclusions.empty()
    covered = np.zeros(img.width_px, dtype=bool)
    line_coverage_rng = np.random.default_rng(rng.integers(2**63))
    line_rng = np.random.default_rng(rng.integers(2**63))
    if line.present:
        covered = _covered_columns(img.width_px, line.lateral_coverage, line_coverage_rng)
        covered_frame = covered[(np.arange(n_cols) - margin_px) % img.width_px]
        inside = band_window(surface, fe2al5_bottom, _reach(line.pore_radius_mean_um, LINE_PORE_MAX_ASPECT))
        local_top = surface + line.depth_um - line.width_um / 2

        def line_window(ix: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            lo, hi = inside(ix, r)
            return np.maximum(lo, local_top[ix]), np.minimum(hi, local_top[ix] + line.width_um)

        line_pores = _place(
            _Population(
                target_area_um2=line.area_fraction_pct / 100 * line.width_um * p * float(covered_frame.sum()),
                radius_mean_um=line.pore_radius_mean_um, radius_std_um=line.pore_radius_std_um,
                aspect=("max", LINE_PORE_MAX_ASPECT), angle_mean_rad=0.0, angle_spread_rad=np.deg2rad(12.0),
                depth_window=line_window),
            x_um, covered_frame, placed, p, line_rng)

    pores_rng = np.random.default_rng(rng.integers(2**63))
    pores = _place(
        _Population(
            target_area_um2=spec.pores.area_fraction_pct / 100 * band_area_um2,
            radius_mean_um=spec.pores.radius_mean_um, radius_std_um=spec.pores.radius_std_um,
            aspect=("max", spec.pores.elongation), angle_mean_rad=0.0, angle_spread_rad=np.inf,
            depth_window=band_window(surface, fe2al5_bottom, _reach(spec.pores.radius_mean_um, spec.pores.elongation))),
        x_um, every_column, placed, p, pores_rng)

    pre = spec.precipitates
    pre_rng = np.random.default_rng(rng.integers(2**63))
    pre_bottom = surface + pre.depth_limit_fraction * (fe2al5_bottom - surface)
    precipitates = _place(
        _Population(
            target_area_um2=pre.area_fraction_pct / 100 * band_area_um2,
            radius_mean_um=pre.radius_mean_um, radius_std_um=pre.radius_std_um,
            aspect=("mean", pre.elongation), angle_mean_rad=np.deg2rad(pre.orientation_deg),
            angle_spread_rad=np.deg2rad(pre.orientation_spread_deg),
            depth_window=band_window(surface, pre_bottom, _reach(pre.radius_mean_um, 1.6 * pre.elongation))),
        x_um, every_column, placed, p, pre_rng)

    geometry = CoatingGeometry(
        pixel_size_um=p, width_px=img.width_px, height_px=img.height_px, margin_px=margin_px, x_um=x_um,
        surface_um=surface, fe2al5_bottom_um=fe2al5_bottom, feal_bottom_um=feal_bottom,
        pores=pores, line_pores=line_pores, precipitates=precipitates)
    geometry.designed = designed_values(spec, geometry, covered)
    return geometry


def _reach(radius_mean_um: float, aspect: float) -> float:
    """Largest bounding radius an inclusion of this population can have, µm."""
    return MAX_RADIUS_FACTOR * radius_mean_um * np.sqrt(aspect) * WOBBLE_MAX


def designed_values(spec: CoatingSpec, geometry: CoatingGeometry, covered: np.ndarray) -> dict[str, Any]:
    """What the image was designed to show (µm, %): the spec's targets and what the drawn geometry holds.

    ``*_target`` values are the spec's; the others are measured on the drawn geometry inside the image (polygon
    areas over the Fe2Al5 band area, before pixel sampling).
    """
    g = geometry
    inside = g.in_image
    lo_um, hi_um = 0.0, g.width_px * g.pixel_size_um
    band = (g.fe2al5_bottom_um - g.surface_um)[inside]
    band_area = float(band.sum() * g.pixel_size_um)

    def area_inside(inc: Inclusions) -> float:
        if not len(inc):
            return 0.0
        cx = inc.polygons_um[:, :, 0].mean(1)
        return float(inc.areas_um2[(cx >= lo_um) & (cx < hi_um)].sum())

    pore_area = area_inside(g.pores) + area_inside(g.line_pores)
    line = spec.pore_line
    feal = (g.feal_bottom_um - g.fe2al5_bottom_um)[inside]
    return {
        "fe2al5_thickness_um": float(band.mean()),
        "fe2al5_thickness_target_um": spec.layers.fe2al5_thickness_um,
        "fe2al5_thickness_std_um": float(band.std()),
        "feal_present": bool(spec.layers.feal_present),
        "feal_thickness_um": float(feal.mean()) if spec.layers.feal_present else 0.0,
        "pore_fraction_pct": 100.0 * pore_area / band_area,
        "scattered_pore_fraction_pct": 100.0 * area_inside(g.pores) / band_area,
        "scattered_pore_fraction_target_pct": spec.pores.area_fraction_pct,
        "pore_line_present": bool(line.present),
        "pore_line_depth_um": line.depth_um if line.present else None,
        "pore_line_coverage": float(covered.mean()) if line.present else 0.0,
        "precipitate_fraction_pct": 100.0 * area_inside(g.precipitates) / band_area,
        "precipitate_fraction_target_pct": spec.precipitates.area_fraction_pct,
        "pore_count": len(g.pores) + len(g.line_pores),
        "precipitate_count": len(g.precipitates),
    }
