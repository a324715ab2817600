"""The polished specimen's own appearance on top of the rendered phase map, before the microscope forms the image.

In order: the pores' fill levels (``voids.py``) and FeAl's blend into the steel (``interfaces.py``) change the phase
greys; then brightness factors multiply them: grain (channelling) contrast, the Fe2Al5 depth gradient, polishing
scratches, sub-resolution specks (``texture.py``, ``artefacts.py``), the steel's martensite and bright particles
(``steel.py``); then bright rims around pores are added and the coating's top edge is rounded (``interfaces.py``).
Each feature draws from its own random stream, and only when it is on, so switching one off leaves the others' draws
unchanged. Nothing here changes the mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blender_addon.render_node.artefacts import apply_fe2al5_depth, apply_scratches
from blender_addon.render_node.interfaces import round_top_edge, substrate_blend_offset
from blender_addon.render_node.steel import apply_laths, apply_particles
from blender_addon.render_node.texture import apply_specks, grain_factor
from blender_addon.render_node.voids import pore_fill_offset, pore_rim
from blender_addon.scene.stopping import StopCheck, check
from semcoat.spec import CoatingSpec


@dataclass
class SpecimenStreams:
    """One random generator per specimen feature."""

    texture: np.random.Generator
    scratches: np.random.Generator
    specks: np.random.Generator
    laths: np.random.Generator
    particles: np.random.Generator
    pores: np.random.Generator


def specimen_signal(
    signal: np.ndarray, mask: np.ndarray, spec: CoatingSpec, streams: SpecimenStreams,
    should_stop: StopCheck | None = None,
) -> np.ndarray:
    """The rendered phase signal (float32, frame sized) with the specimen's texture and artefacts, float32.

    ``should_stop`` is asked between the steps (``Interrupted`` when it answers True).
    """
    img, grey = spec.imaging, spec.grey
    changes = []  # grey changes (first row, offsets), both worked out on the rendered greys
    for change in (pore_fill_offset(mask, grey.pore, grey.resin, grey.pore_fill_max, streams.pores),
                   substrate_blend_offset(signal, mask, grey.substrate_blend_um / img.pixel_size_um)):
        if change is not None:
            changes.append(change)
        check(should_stop)
    specimen = grain_factor(mask, img.pixel_size_um, streams.texture)
    check(should_stop)
    apply_fe2al5_depth(specimen, mask, grey.fe2al5_depth_gradient)
    check(should_stop)
    apply_scratches(specimen, mask, img.pixel_size_um, img.scratch_density_per_100um, img.scratch_contrast,
                    streams.scratches)
    check(should_stop)
    pre = spec.precipitates
    if pre.speck_density_per_um2 > 0:
        contrasts = np.array(grey.precipitate_phase_greys()) / max(grey.fe2al5, 1e-3) - 1.0
        apply_specks(
            specimen, mask, img.pixel_size_um, pre.speck_density_per_um2, contrasts,
            np.array([pre.al8cr5_share, pre.cr2al_share, pre.cr23c6_share]), streams.specks)
        check(should_stop)
    if grey.steel_lath_contrast > 0:
        apply_laths(specimen, mask, img.pixel_size_um, grey.steel_lath_contrast, grey.steel_lath_width_um,
                    grey.steel_packet_um, streams.laths)
        check(should_stop)
    if grey.steel_particle_density_per_100um2 > 0 and grey.steel_particle_contrast > 0:
        apply_particles(specimen, mask, img.pixel_size_um, grey.steel_particle_density_per_100um2,
                        grey.steel_particle_radius_um, grey.steel_particle_contrast, streams.particles)
        check(should_stop)
    # (greys + changes) x factors, in place: each change times its rows' factors, added to greys x factors.
    for top, offset in changes:
        offset *= specimen[top:top + offset.shape[0]]
    out = specimen
    out *= signal
    for top, offset in changes:
        out[top:top + offset.shape[0]] += offset
    if grey.pore_rim > 0:
        rim = pore_rim(mask, img.pixel_size_um, grey.pore_rim_width_um)
        if rim is not None:
            top, profile = rim
            out[top:top + profile.shape[0]] += np.float32(grey.pore_rim) * profile
        check(should_stop)
    if img.edge_rounding_um > 0:
        round_top_edge(out, mask, img.edge_rounding_um / img.pixel_size_um, img.edge_rounding_brightness)
        check(should_stop)
    return out
