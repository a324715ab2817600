"""Inclusion placement: star-shaped pores, pore-line pores and precipitates, drawn until their area reaches a target,
each kept only where it clashes with nothing placed before it.

Coordinates as in :mod:`.geometry`: ``x_um`` along the surface, ``depth_um`` down from the top image edge. Every
inclusion is a perturbed ellipse with a bounding circle; candidates whose bounding circles (plus a gap) overlap a
placed circle or an earlier candidate are dropped, so the polygons of all classes never overlap one another and the
area of each class is the sum of its polygons' areas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .neighbours import candidate_clashes
from .stopping import StopCheck, check

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
# Area of the unit superellipse |x|^4 + |y|^4 = 1 (Gamma(1/4)^2 / (2 sqrt(pi))).
SUPERELLIPSE4_AREA = 3.7081493546
PLACEMENT_ROUNDS = 12
# Placement stops when the area still missing is below this share of one mean inclusion's area.
STOP_REMAINING_AREA_FRACTION = 0.05

DepthWindow = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(column indices, bounding radii µm) -> (lowest, highest) allowed centre depth, µm, per candidate."""
ShapeDraw = Callable[..., tuple[np.ndarray, np.ndarray]]
"""Outlines of a population, with the signature and the result of :func:`star_polygons`."""


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


def max_reach_um(radius_mean_um: float, aspect: float, shape_factor: float = 1.0) -> float:
    """Largest bounding radius an inclusion of a population can have, µm (mean radius in µm, long/short aspect;
    ``shape_factor``: how much farther than a wobbled ellipse its outlines reach, e.g. irregular pores)."""
    return MAX_RADIUS_FACTOR * radius_mean_um * np.sqrt(aspect) * WOBBLE_MAX * shape_factor


def _lognormal_radii(rng: np.random.Generator, mean_um: float, std_um: float, n: int, min_um: float) -> np.ndarray:
    sigma = np.sqrt(np.log1p((std_um / mean_um) ** 2))
    mu = np.log(mean_um) - sigma**2 / 2
    r = rng.lognormal(mu, sigma, n)
    # np.clip's result, without its overhead (a placement round draws radii many times over)
    return np.minimum(np.maximum(r, min_um), max(min_um, MAX_RADIUS_FACTOR * mean_um))


# The outline's angles, their cosines and sines and where each vertex's successor is: the same numbers for every
# outline, computed once.
OUTLINE_ANGLES_RAD = np.linspace(0.0, 2 * np.pi, VERTICES_PER_INCLUSION, endpoint=False)
OUTLINE_COS = np.cos(OUTLINE_ANGLES_RAD)
OUTLINE_SIN = np.sin(OUTLINE_ANGLES_RAD)
NEXT_VERTEX = np.roll(np.arange(VERTICES_PER_INCLUSION), -1)
# |cos|^4 + |sin|^4 = r^-4 on the unit superellipse; its area is 3.708, scaled back to pi.
_SQUARE_CORNER = (np.abs(OUTLINE_COS) ** 4 + np.abs(OUTLINE_SIN) ** 4) ** -0.25 * np.sqrt(np.pi / SUPERELLIPSE4_AREA)


def harmonic_table(orders: np.ndarray) -> np.ndarray:
    """cos(k t) over -sin(k t) for each harmonic order k at every outline angle t, shape (2 * orders, vertices): the
    table :func:`harmonic_wobble` multiplies."""
    angles = orders[:, None] * OUTLINE_ANGLES_RAD
    return np.concatenate([np.cos(angles), -np.sin(angles)])


_SHAPE_HARMONICS = harmonic_table(SHAPE_ORDERS)


def harmonic_wobble(amps: np.ndarray, phases: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Radial factor ``1 + sum_k amps[:, k] cos(k t + phases[:, k])`` at every outline angle t, shape
    (n, VERTICES_PER_INCLUSION), for the orders k of ``table`` (:func:`harmonic_table`).

    cos(k t + phase) = cos(k t) cos(phase) - sin(k t) sin(phase): a cosine and a sine per harmonic and one product
    with the table, instead of a cosine per harmonic and vertex (the rounding differs in the last bit). numpy's own
    einsum, not BLAS, sums the product, in the same order whatever the threads.
    """
    weights = np.concatenate([amps * np.cos(phases), amps * np.sin(phases)], axis=1)
    return 1.0 + np.einsum("nk,kv->nv", weights, table)


def turned_outlines(
    centres: np.ndarray, u: np.ndarray, v: np.ndarray, angles_rad: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Outlines (u along the long axis, v across it, +v up) turned by ``angles_rad`` and moved to ``centres`` (n, 2)
    µm, as (polygons (n, k, 2) (x_um, depth_um), shoelace areas (n,) µm², positive counter-clockwise)."""
    c, s = np.cos(angles_rad)[:, None], np.sin(angles_rad)[:, None]
    polygons = np.empty(u.shape + (2,))
    # (u, v) in a frame where +v is up; depth grows downwards, so flip v's sign when going to depth.
    x = polygons[:, :, 0]
    depth = polygons[:, :, 1]
    np.subtract(centres[:, 0:1] + u * c, v * s, out=x)
    np.subtract(centres[:, 1:2], u * s + v * c, out=depth)
    # Shoelace in the (x, -depth) plane, where the vertices run counter-clockwise.
    x = np.ascontiguousarray(x)
    y = -depth
    areas = 0.5 * (x * y[:, NEXT_VERTEX] - x[:, NEXT_VERTEX] * y).sum(1)
    return polygons, areas


def star_polygons(
    centres: np.ndarray, radii: np.ndarray, aspects: np.ndarray, angles_rad: np.ndarray, rng: np.random.Generator,
    square: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Perturbed ellipses around ``centres`` (n, 2) µm: equivalent-circle radius ``radii`` µm, long/short axis
    ``aspects``, long-axis angle to the surface ``angles_rad`` (pi/2 points into the depth). Where ``square`` (bool
    per shape) is set, a rounded square (superellipse of exponent 4, of the same area as the circle of ``radii``)
    with a fifth of the perturbation: a cube-like particle.

    Returns (polygons (n, VERTICES_PER_INCLUSION, 2) µm, areas (n,) µm²).
    """
    n = radii.size
    root = np.sqrt(aspects)
    a = radii * root
    b = radii / root
    orders = SHAPE_ORDERS
    amps = rng.uniform(0.0, SHAPE_PERTURBATION, (n, orders.size)) / orders
    phases = rng.uniform(0.0, 2 * np.pi, (n, orders.size))
    if square is not None:
        amps[square] *= 0.2
    wobble = harmonic_wobble(amps, phases, _SHAPE_HARMONICS)
    if square is not None and square.any():
        wobble[square] *= _SQUARE_CORNER
    u = a[:, None] * OUTLINE_COS * wobble
    v = b[:, None] * OUTLINE_SIN * wobble
    return turned_outlines(centres, u, v, angles_rad)


def first_in_draw_order(
    eligible: np.ndarray, clashes: np.ndarray, should_stop: StopCheck | None = None
) -> np.ndarray:
    """Which candidates a one-by-one pass in draw order keeps: an eligible candidate is kept unless it clashes with
    an earlier kept one.

    The pass is done in rounds over all candidates at once (the same choice, bit for bit): every undecided candidate
    whose earlier clash partners are all decided as dropped is kept, and its later partners are dropped. The earliest
    undecided candidate is always decided, and in random draw order the rounds are few (five for ten thousand
    candidates with a quarter of a million clashes), where a Python loop over the clashes took seconds.

    Parameters
    ----------
    eligible : bool per candidate (draw order); False ones are dropped and block nothing.
    clashes : int pairs (i, j), i < j, of clashing candidates.
    should_stop : asked every round; :class:`~.stopping.Interrupted` is raised when it answers True.

    Returns
    -------
    ndarray
        bool per candidate: kept.
    """
    kept = np.zeros(eligible.size, dtype=bool)
    undecided = eligible.copy()
    i, j = clashes[:, 0], clashes[:, 1]
    live = undecided[i] & undecided[j]
    i, j = i[live], j[live]
    while undecided.any():
        check(should_stop)
        blocked = np.zeros(eligible.size, dtype=bool)
        blocked[j] = True  # an undecided earlier partner may still be kept
        roots = undecided & ~blocked
        kept |= roots
        undecided &= ~roots
        undecided[j[roots[i]]] = False
        live = undecided[i] & undecided[j]
        i, j = i[live], j[live]
    return kept


@dataclass
class PlacedCircles:
    """Bounding circles (centres µm, radii µm) of the inclusions accepted so far, all classes together."""

    centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    radii: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def free(
        self, centres: np.ndarray, radii: np.ndarray, gap_um: float, should_stop: StopCheck | None = None
    ) -> np.ndarray:
        """Mask of candidates that overlap neither the placed circles nor earlier free candidates (draw order).

        Two circles clash when their centres are less than the sum of their radii plus ``gap_um`` apart.
        ``should_stop`` is asked between the steps (:class:`~.stopping.Interrupted` when it answers True).
        """
        blocked, pairs = candidate_clashes(self.centres, self.radii, centres, radii, gap_um, should_stop)
        # Candidates clashing with an already placed circle go at once; the rest is resolved in draw order, so any
        # prefix of the free candidates is itself free of clashes.
        return first_in_draw_order(~blocked, pairs, should_stop)

    def add(self, centres: np.ndarray, radii: np.ndarray) -> None:
        """Record placed circles (centres (n, 2) µm, radii (n,) µm)."""
        self.centres = np.concatenate([self.centres, centres])
        self.radii = np.concatenate([self.radii, radii])


@dataclass
class Population:
    """How one kind of inclusion is drawn (areas µm², radii µm, angles rad)."""

    target_area_um2: float
    radius_mean_um: float
    radius_std_um: float
    aspect: tuple[str, float]  # ("max", e): uniform in [1, e]; ("mean", e): log-normal around e
    angle_mean_rad: float
    angle_spread_rad: float  # normal spread; inf = uniform orientation
    depth_window: DepthWindow
    cube_fraction: float = 0.0  # share drawn as rounded squares (nothing more is drawn from the stream when 0)
    rounds: int = PLACEMENT_ROUNDS  # rounds of candidates at most
    shapes: ShapeDraw | None = None  # outlines other than star_polygons' (e.g. irregular pores)
    # Uniform draws (0-1) -> share of the depth window, for a density that is not uniform in depth; None: uniform.
    depth_share: Callable[[np.ndarray], np.ndarray] | None = None


def place(
    pop: Population, x_um: np.ndarray, x_allowed: np.ndarray, placed: PlacedCircles, pixel_size_um: float,
    rng: np.random.Generator, should_stop: StopCheck | None = None,
) -> Inclusions:
    """Draw inclusions of ``pop`` until their area reaches ``pop.target_area_um2``.

    Parameters
    ----------
    x_um : column-centre positions of the frame, µm.
    x_allowed : per column of ``x_um``, whether a centre may lie there.
    placed : circles already placed (of any class); the accepted inclusions are added to it.
    pixel_size_um : pixel size, µm (gap, smallest radius and the jitter within a column are in pixels).
    rng : the population's own random stream.
    should_stop : asked at least every few tenths of a second; when it answers True, :class:`~.stopping.Interrupted`
        is raised (and ``placed`` is left part-way: the geometry is to be discarded). It never touches ``rng``, so
        the inclusions are the same with or without it.
    """
    if pop.target_area_um2 <= 0 or not x_allowed.any():
        return Inclusions.empty()
    allowed_idx = np.flatnonzero(x_allowed)
    gap_um = GAP_PX * pixel_size_um
    mean_area = np.pi * pop.radius_mean_um**2 * (1 + (pop.radius_std_um / pop.radius_mean_um) ** 2)
    polys: list[np.ndarray] = []
    areas: list[np.ndarray] = []
    total = 0.0
    for _ in range(pop.rounds):
        check(should_stop)
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
        if math.isinf(pop.angle_spread_rad):
            angles = rng.uniform(0.0, np.pi, n)
        else:
            angles = pop.angle_mean_rad + rng.normal(0.0, 1.0, n) * pop.angle_spread_rad
        ix = allowed_idx[rng.integers(0, allowed_idx.size, n)]
        x = x_um[ix] + rng.uniform(-0.5, 0.5, n) * pixel_size_um
        square = None
        if pop.cube_fraction > 0:
            square = rng.uniform(0.0, 1.0, n) < pop.cube_fraction
            aspects[square] = 1.0 + 0.1 * (aspects[square] - 1.0)  # cubes cut about square
        # Shapes are drawn around the origin first: their exact bounding radius decides where the centre may go.
        poly, area = (pop.shapes or star_polygons)(np.zeros((n, 2)), radii, aspects, angles, rng, square)
        bounding = np.sqrt(poly[:, :, 0] ** 2 + poly[:, :, 1] ** 2).max(1)
        low, high = pop.depth_window(ix, bounding)
        fits = high > low
        share = rng.uniform(0.0, 1.0, n)
        if pop.depth_share is not None:
            share = pop.depth_share(share)
        depth = low + share * np.maximum(high - low, 0.0)
        if not fits.any():
            continue
        sel = np.flatnonzero(fits)
        centres = np.stack([x[sel], depth[sel]], 1)
        sel = sel[placed.free(centres, bounding[sel], gap_um, should_stop)]
        # Keep only as many free candidates (in draw order) as the remaining area needs: the target is not overshot.
        sel = sel[: int(np.searchsorted(np.cumsum(area[sel]), remaining)) + 1]
        centres = np.stack([x[sel], depth[sel]], 1)
        placed.add(centres, bounding[sel])
        polys.append(poly[sel] + centres[:, None, :])
        areas.append(area[sel])
        total += float(area[sel].sum())
    if not polys:
        return Inclusions.empty()
    return Inclusions(np.concatenate(polys), np.concatenate(areas))


def covered_columns(width: int, coverage: float, rng: np.random.Generator) -> np.ndarray:
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
