"""The class table every part shares: mask values, names, overlay colours and backscatter physics.

Mask files hold these ids as uint8. Rows are depth (coating surface at the top), columns run along the surface.
"""

from __future__ import annotations

from dataclasses import dataclass

from semcoat.errors import InvalidArgument

BACKGROUND = 0
FE2AL5 = 1
FEAL = 2
SUBSTRATE = 3
PORE = 4
PRECIPITATE = 5
CRACK = 6


@dataclass(frozen=True)
class PhaseClass:
    """One segmentation class.

    Attributes
    ----------
    id : mask value (uint8).
    name : short machine name, used in metric names (``val/dice_pore``) and file columns.
    label : human label for plots and reports.
    color_rgb : overlay colour, 0-255 per channel.
    mean_atomic_number : mass-weighted mean atomic number Z of the phase (drives backscatter contrast).
    """

    id: int
    name: str
    label: str
    color_rgb: tuple[int, int, int]
    mean_atomic_number: float


CLASSES: tuple[PhaseClass, ...] = (
    PhaseClass(BACKGROUND, "background", "Resin / background", (0, 0, 0), 6.0),
    PhaseClass(FE2AL5, "fe2al5", "Fe2Al5", (66, 135, 245), 18.9),
    PhaseClass(FEAL, "feal", "FeAl", (245, 194, 66), 21.8),
    PhaseClass(SUBSTRATE, "substrate", "Steel substrate", (140, 140, 140), 25.8),
    PhaseClass(PORE, "pore", "Pore", (230, 40, 40), 6.0),
    # Cr2Al (Z ~21.7) and Cr23C6 (Z ~23.0); the carbide, the brighter of the two, is the one usually seen.
    PhaseClass(PRECIPITATE, "precipitate", "Cr-rich precipitate", (60, 220, 90), 23.0),
    # An open crack: filled with resin where it reaches the surface, empty below; dark either way.
    PhaseClass(CRACK, "crack", "Crack", (235, 90, 235), 6.0),
)

CLASS_IDS: frozenset[int] = frozenset(c.id for c in CLASSES)
CLASS_NAMES: dict[int, str] = {c.id: c.name for c in CLASSES}
NUM_CLASSES = len(CLASSES)
# A label of no class: training leaves pixels so labelled out of the loss and the metrics (never in a mask file).
IGNORE_ID = 255


def class_by_name(name: str) -> PhaseClass:
    """Return the class called ``name``; raise InvalidArgument listing the accepted names otherwise."""
    for c in CLASSES:
        if c.name == name:
            return c
    accepted = ", ".join(c.name for c in CLASSES)
    raise InvalidArgument(f"unknown class name {name!r}; accepted: {accepted}", argument="name")


@dataclass(frozen=True)
class PrecipitatePhase:
    """One Cr-rich phase the precipitates of Fe2Al5 can be (all of them class ``precipitate`` in the mask).

    Attributes
    ----------
    name : machine name, used in spec field names (``precipitates.<name>_share``).
    label : chemical formula.
    mean_atomic_number : mass-weighted mean atomic number Z (drives the backscatter contrast against Fe2Al5).
    """

    name: str
    label: str
    mean_atomic_number: float


# Al8Cr5 (Z ~19.0) hardly differs from Fe2Al5 (18.9); Cr2Al (21.7) and the carbide Cr23C6 (23.0) are brighter:
# relative backscatter contrasts of about +0.00, +0.12 and +0.18 by Reuter's fit.
PRECIPITATE_PHASES: tuple[PrecipitatePhase, ...] = (
    PrecipitatePhase("al8cr5", "Al8Cr5", 19.0),
    PrecipitatePhase("cr2al", "Cr2Al", 21.7),
    PrecipitatePhase("cr23c6", "Cr23C6", 23.0),
)


def backscatter_coefficient(mean_atomic_number: float) -> float:
    """Backscattered-electron coefficient eta of a phase of mass-weighted mean atomic number Z (Reuter's fit)."""
    z = mean_atomic_number
    return -0.0254 + 0.016 * z - 1.86e-4 * z**2 + 8.3e-7 * z**3
