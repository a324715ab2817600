"""Render a range of a batch into a dataset folder: the work of one Slurm array task, without bpy.

For each image index ``i``: draw the geometry (seeded by the batch's ``image_seed(i)``), put it into the scene,
render, add the specimen's texture and artefacts (``specimen.py``), form the SEM image,
measure the truth on the mask, find each precipitate's phase, and write the sample atomically
(image, mask, phase map, then meta).
Finished samples are skipped, so a killed task can be rerun. Everything random comes from ``image_seed(i)``, split
into independent streams for geometry, textures and noise, so image ``i`` is the same bit for bit wherever and
whenever it is rendered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from blender_addon.render_node.frame import FrameRenderer, RenderError
from blender_addon.render_node.png import IMAGE_CODING, MASK_CODING, grey_png
from blender_addon.render_node.precipitate_phases import phase_map_pixels, precipitate_phase_map
from blender_addon.render_node.sem_image import ScanStreams, form_image, scan_margin_px
from blender_addon.render_node.specimen import SpecimenStreams, specimen_signal
from blender_addon.render_node.truth import ground_truth
from blender_addon.scene import geometry as geometry_mod
from blender_addon.scene.stopping import Interrupted, StopCheck, check
from semcoat import __version__
from semcoat.batch import BatchSpec
from semcoat.dataset import DatasetInfo, DatasetWriter, sample_id
from semcoat.errors import InvalidArgument, SemcoatError
from semcoat.spec import CoatingSpec

GENERATOR_VERSION = f"semcoat {__version__} blender_addon renderer 17"
_GEOMETRY, _TEXTURE, _NOISE, _SCRATCHES, _SPECKS = 0, 1, 2, 3, 4
# Image-formation streams of issue 11, numbered from 20 so that streams added for the geometry never meet them.
_FRAMES, _LINE_NOISE, _LATHS, _PARTICLES, _PORE_FILL, _CHARGING = 20, 21, 22, 23, 24, 25


@dataclass
class PhaseTimes:
    """Seconds spent per phase over a run."""

    geometry_s: float = 0.0
    scene_s: float = 0.0
    render_s: float = 0.0
    image_s: float = 0.0
    truth_s: float = 0.0
    write_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Phase name -> seconds."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class RunReport:
    """What a run did: indices rendered and skipped (already complete), time per phase, wall time."""

    rendered: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    interrupted: bool = False
    times: PhaseTimes = field(default_factory=PhaseTimes)
    elapsed_s: float = 0.0


class SampleFailed(SemcoatError):
    """Rendering image ``index`` failed; nothing of it was left in the dataset folder, so a rerun resumes there."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        super().__init__(f"image {index} ({sample_id(index)}) failed: {reason}")


Progress = Callable[[int, int, int, float, bool], None]
"""progress(done, total, index, seconds, skipped)"""


def plan(batch: BatchSpec, start: int, count: int | None) -> list[tuple[int, CoatingSpec]]:
    """The (index, spec) pairs of images ``start .. start + count - 1``, every spec drawn and validated up front.

    Raises
    ------
    InvalidArgument
        when the range leaves the batch (``argument`` is ``"start"`` or ``"count"``; the message gives the batch size).
    SpecError
        when a drawn spec is inconsistent (before anything is written).
    """
    last = batch.count - 1
    if not 0 <= start < batch.count:
        raise InvalidArgument(f"the first image {start} is outside the batch of {batch.count} images; accepted: "
                              f"0 to {last}", argument="start")
    if count is None:
        count = batch.count - start
    if count < 1 or start + count > batch.count:
        raise InvalidArgument(f"images {start}..{start + count - 1} are not inside the batch of {batch.count} images "
                              f"(0..{last}); from image {start}, accepted: 1 to {batch.count - start} images",
                              argument="count")
    return [(i, batch.sample(i)) for i in range(start, start + count)]


def dataset_info(batch: BatchSpec) -> DatasetInfo:
    """The ``dataset.json`` of a batch (image size, pixel size and bit depth of its base spec)."""
    img = batch.base.imaging
    return DatasetInfo(
        name=batch.name, pixel_size_um=img.pixel_size_um, image_width_px=img.width_px, image_height_px=img.height_px,
        count=batch.count, seed=batch.seed, bit_depth=img.bit_depth, spec=batch.to_dict(),
        generator_version=GENERATOR_VERSION)


def encode_png(pixels: np.ndarray, coding: tuple[int, int, int] = MASK_CODING) -> bytes:
    """PNG bytes of a uint8 or uint16 grey array (deterministic for equal input), written with ``coding`` (see
    :mod:`.png`: ``IMAGE_CODING`` for images, ``MASK_CODING`` for masks)."""
    try:
        return grey_png(pixels, coding)
    except ValueError as exc:
        raise RenderError(f"PNG encoding failed: {exc}") from exc


def _json_ready(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = round(value, 6) if isinstance(value, float) else value
    return out


def image_geometry(spec: CoatingSpec, image_seed: int,
                   should_stop: StopCheck | None = None) -> geometry_mod.CoatingGeometry:
    """The geometry the renderer draws for the image of ``spec`` and ``image_seed`` (its meta's ``params`` and
    ``image_seed``), scan margins included: the same, bit for bit, every time."""
    return geometry_mod.build_geometry(spec, np.random.default_rng([image_seed, _GEOMETRY]),
                                       scan_margin_px(spec.imaging), should_stop)


class RenderedSample(NamedTuple):
    """One rendered sample's files: image, class mask and phase map as PNG bytes, and the meta dict."""

    image_png: bytes
    mask_png: bytes
    meta: dict[str, Any]
    phases_png: bytes | None  # None where the geometry does not cover the mask's precipitates (never seen)


def render_sample(
    batch: BatchSpec, index: int, spec: CoatingSpec, renderer: FrameRenderer, times: PhaseTimes,
    should_stop: StopCheck | None = None,
) -> RenderedSample:
    """Render image ``index`` of ``batch`` (its drawn ``spec``): its image, mask, meta and precipitate-phase map.

    ``should_stop`` is asked between the steps and inside the long ones (placement, render strips, image formation),
    at least about once a second at the spec's work bounds; when it answers True, :class:`Interrupted` is raised and
    the image is abandoned. It changes nothing in the result.
    """
    seed = batch.image_seed(index)
    t0 = time.perf_counter()
    margin = scan_margin_px(spec.imaging)
    geometry = image_geometry(spec, seed, should_stop)
    t1 = time.perf_counter()
    renderer.build(spec, geometry)
    t2 = time.perf_counter()
    frame = renderer.render(should_stop)
    check(should_stop)
    t3 = time.perf_counter()
    img = spec.imaging
    streams = SpecimenStreams(*(np.random.default_rng([seed, k]) for k in (_TEXTURE, _SCRATCHES, _SPECKS, _LATHS,
                                                                          _PARTICLES, _PORE_FILL)))
    signal = specimen_signal(frame.signal, frame.mask, spec, streams, should_stop)
    scan = ScanStreams(*(np.random.default_rng([seed, k]) for k in (_FRAMES, _LINE_NOISE, _CHARGING)))
    sem = form_image(signal, frame.mask, img, margin, np.random.default_rng([seed, _NOISE]),
                     should_stop, scan)
    t4 = time.perf_counter()
    truth = ground_truth(sem.mask, spec.imaging.pixel_size_um)
    check(should_stop)
    phase = precipitate_phase_map(geometry, sem.mask)
    check(should_stop)
    t5 = time.perf_counter()
    image_png = encode_png(sem.pixels, IMAGE_CODING)
    check(should_stop)
    mask_png = encode_png(sem.mask)
    phases_png = None if phase is None else encode_png(phase_map_pixels(phase))
    check(should_stop)
    meta = {
        "id": sample_id(index),
        "index": index,
        "image_seed": seed,
        "params": spec.to_dict(),
        "truth": _json_ready(truth),
        "designed": _json_ready(geometry.designed),
        "render": {"generator_version": GENERATOR_VERSION, "margin_px": margin},
    }
    t6 = time.perf_counter()
    times.geometry_s += t1 - t0
    times.scene_s += t2 - t1
    times.render_s += t3 - t2
    times.image_s += t4 - t3
    times.truth_s += t5 - t4
    times.write_s += t6 - t5
    return RenderedSample(image_png, mask_png, meta, phases_png)


def _start(renderer_factory: Callable[[], FrameRenderer]) -> FrameRenderer:
    """The renderer, or a RenderError that says why it cannot start (a missing Blender module above all)."""
    try:
        return renderer_factory()
    except ImportError as exc:
        raise RenderError(f"the renderer cannot start: {exc}. Rendering needs the render part of semcoat: "
                          "pip install 'semcoat[render]' (bpy 5.0.1, Python 3.11)") from exc
    except RenderError:
        raise
    except Exception as exc:
        raise RenderError(f"the renderer cannot start: {type(exc).__name__}: {exc}") from exc


def render_range(
    batch: BatchSpec,
    out_dir: str | Path,
    renderer_factory: Callable[[], FrameRenderer],
    start: int = 0,
    count: int | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Render images ``start .. start + count - 1`` of ``batch`` into the dataset folder ``out_dir``.

    The specs are drawn and checked before anything is created; intact finished samples are skipped (a damaged one is
    rendered again); a failing sample is removed before :class:`SampleFailed` propagates, so the folder holds only
    complete samples. When ``stop`` is set (the command's SIGINT/SIGTERM handler) the image in hand is abandoned
    within about a second (its steps ask ``stop`` as they go; nothing of it is left) and the run ends with
    ``report.interrupted``.
    """
    t_start = time.perf_counter()
    work = plan(batch, start, count)
    report = RunReport()
    info = dataset_info(batch)
    writer = DatasetWriter.open(out_dir, info)
    todo = [(i, s) for i, s in work if not writer.is_intact(sample_id(i))]
    done = {i for i, _ in work} - {i for i, _ in todo}
    for i, _ in work:
        if i in done:
            report.skipped.append(i)
            if progress:
                progress(len(report.skipped), len(work), i, 0.0, True)
    if not todo:
        report.elapsed_s = time.perf_counter() - t_start
        return report
    renderer = _start(renderer_factory)
    should_stop = stop.is_set if stop is not None else None
    try:
        for i, spec in todo:
            if should_stop is not None and should_stop():
                report.interrupted = True
                break
            sid = sample_id(i)
            t0 = time.perf_counter()
            writer.discard(sid)
            try:
                sample = render_sample(batch, i, spec, renderer, report.times, should_stop)
                t_write = time.perf_counter()
                writer.write_sample(sid, sample.image_png, sample.mask_png, sample.meta, sample.phases_png)
                report.times.write_s += time.perf_counter() - t_write
            except Interrupted:  # asked to stop inside the image: it is abandoned, nothing of it stays
                writer.discard(sid)
                report.interrupted = True
                break
            except BaseException as exc:
                writer.discard(sid)
                if isinstance(exc, Exception):
                    raise SampleFailed(i, f"{type(exc).__name__}: {exc}") from exc
                raise
            report.rendered.append(i)
            if progress:
                progress(len(report.rendered) + len(report.skipped), len(work), i, time.perf_counter() - t0, False)
    finally:
        renderer.close()
    report.elapsed_s = time.perf_counter() - t_start
    return report
