"""Render throughput: a 100-image 1024x768 batch with masks and ground truth, one render process per core.

    .venv/bin/python bench/render_throughput.py [--count 100] [--processes 2] [--preset 5h_650C]
        [--engines raster,workbench,cycles] [--threads 1] [--keep DIR] [--untuned]

Runs the batch once per engine named in ``--engines`` (default: raster, Workbench, then Cycles: an A/B in the same
run, on the same machine state), checks that the engines wrote identical files, and prints per engine: images/s over
the whole run (process start to last sample written), the CPU seconds per image (all threads, so a busy machine
inflates them less than the wall time), and the wall and CPU milliseconds per image of each step summed over the
processes: import (Python + bpy + scene setup + engine choice), geometry, scene update, render (the engine's draw,
with the EXR write for Workbench and Cycles; its CPU includes the EXR read), read (EXR read), rule (the pixel-centre
rule and the id lookup), texture (specimen texture and artefacts), formation (SEM image formation), truth, encode
(PNG) and write (meta JSON + atomic files).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("import", "geometry", "scene", "render", "read", "rule", "texture", "formation", "truth", "encode", "write")
# batch_render's module-level functions timed in the worker, per step (the names present are wrapped)
TIMED = {"texture": ("specimen_signal",), "formation": ("form_image",), "truth": ("ground_truth",),
         "encode": ("encode_png",)}


class Meter:
    """Wall and CPU seconds (this process, all its threads: llvmpipe's and Cycles' too) per step."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def add(self, step: str, wall_s: float, cpu_s: float) -> None:
        self.wall[step] = self.wall.get(step, 0.0) + wall_s
        self.cpu[step] = self.cpu.get(step, 0.0) + cpu_s

    def wrap(self, fn: Callable[..., Any], step: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(step, time.perf_counter() - w, time.process_time() - c)
        return timed


def worker(spec_path: str, out_dir: str, start: int, count: int, threads: int, engine: str, timings_path: str,
           tune: bool = True) -> None:
    """Render one chunk in this process and write its timings as JSON (``tune``: as ``semcoat render`` sets its
    process up; without, to measure what that gives)."""
    t0, c0 = time.perf_counter(), time.process_time()
    from blender_addon.render_node import batch_render
    from blender_addon.render_node.process import tune_render_process
    from blender_addon.render_node.renderer import Renderer
    from semcoat.batch import BatchSpec
    from semcoat.dataset import DatasetWriter

    batch = BatchSpec.load(spec_path)
    if tune:
        tune_render_process(threads)
    renderer = Renderer(threads=threads, engine=engine)
    meter = Meter()
    meter.add("import", time.perf_counter() - t0, time.process_time() - c0)
    for step, names in TIMED.items():
        for name in names:
            if hasattr(batch_render, name):
                setattr(batch_render, name, meter.wrap(getattr(batch_render, name), step))
    batch_render.geometry_mod.build_geometry = meter.wrap(batch_render.geometry_mod.build_geometry, "geometry")
    DatasetWriter.write_sample = meter.wrap(DatasetWriter.write_sample, "write")  # type: ignore[method-assign]
    renderer.build = meter.wrap(renderer.build, "scene")  # type: ignore[method-assign]
    renderer.render_ids = meter.wrap(renderer.render_ids, "engine")  # type: ignore[method-assign]
    renderer.builder.class_map = meter.wrap(renderer.builder.class_map, "rule")  # type: ignore[method-assign]
    cpu0 = time.process_time()
    report = batch_render.render_range(batch, out_dir, lambda: renderer, start=start, count=count)
    wall, cpu = meter.wall, meter.cpu
    # the engine's wall time splits into the render and the EXR read (the renderer's own clocks); CPU stays whole
    wall["render"], wall["read"] = renderer.seconds["render_s"], renderer.seconds["read_s"]
    cpu["render"] = cpu.pop("engine", 0.0)
    wall.pop("engine", None)
    times = {
        "wall": wall, "cpu": cpu, "cpu_total": time.process_time() - cpu0, "images": len(report.rendered),
        "decided": renderer.pixels_decided, "engine": renderer.engine, "note": renderer.engine_note,
    }
    Path(timings_path).write_text(json.dumps(times))


def run(spec_path: Path, out: Path, count: int, processes: int, threads: int, engine: str,
        tmp: Path, tune: bool = True) -> tuple[float, dict[str, Any]]:
    """Render the batch in ``processes`` processes; (wall seconds, timings summed over the processes)."""
    chunk = -(-count // processes)
    t0 = time.perf_counter()
    procs = []
    for k in range(processes):
        start = k * chunk
        n = min(chunk, count - start)
        if n <= 0:
            break
        cmd = [sys.executable, __file__, "--worker", str(spec_path), str(out), str(start), str(n), str(threads),
               engine, str(tmp / f"times-{engine}-{k}.json"), *([] if tune else ["--untuned"])]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    results = [p.communicate() for p in procs]
    wall_s = time.perf_counter() - t0
    failed = [(p.returncode, err.strip().splitlines()[-3:]) for p, (_, err) in zip(procs, results, strict=True)
              if p.returncode]
    if failed:
        sys.exit(f"a {engine} render process failed: {failed}")
    totals: dict[str, Any] = {"wall": {}, "cpu": {}}
    for k in range(len(procs)):
        for key, value in json.loads((tmp / f"times-{engine}-{k}.json").read_text()).items():
            if isinstance(value, dict):
                for step, seconds in value.items():
                    totals[key][step] = totals[key].get(step, 0.0) + seconds
            else:
                totals[key] = value if isinstance(value, str) else totals.get(key, 0) + value
    return wall_s, totals


def same_files(a: Path, b: Path) -> list[str]:
    """Relative paths of images, masks, phase maps and meta that differ between two dataset folders (or exist in one
    only)."""
    differ = []
    for sub in ("images", "masks", "phases", "meta"):
        names = sorted({p.name for p in (a / sub).iterdir()} | {p.name for p in (b / sub).iterdir()})
        differ += [f"{sub}/{n}" for n in names
                   if not ((a / sub / n).is_file() and (b / sub / n).is_file()
                           and filecmp.cmp(a / sub / n, b / sub / n, shallow=False))]
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=1, help="render threads per process")
    parser.add_argument("--preset", default="5h_650C")
    parser.add_argument("--engines", default="raster,workbench,cycles", help="engines to run in turn, comma-separated")
    parser.add_argument("--keep", help="write the datasets here, one folder per engine (default: temporary)")
    parser.add_argument("--untuned", action="store_true",
                        help="leave OpenCV's threads as they are (semcoat render keeps them to --threads)")
    parser.add_argument("--worker", nargs=7, metavar=("SPEC", "OUT", "START", "COUNT", "THREADS", "ENGINE", "TIMES"))
    args = parser.parse_args()
    if args.worker:
        spec, out, start, count, threads, engine, timings = args.worker
        worker(spec, out, int(start), int(count), int(threads), engine, timings, tune=not args.untuned)
        return

    from semcoat.dataset import check_dataset
    from semcoat.presets import preset_batch

    batch = preset_batch(args.preset, count=args.count, seed=0)
    img = batch.base.imaging
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    with tempfile.TemporaryDirectory(prefix="semcoat-bench-") as tmp_name:
        tmp = Path(tmp_name)
        spec_path = tmp / "batch.json"
        spec_path.write_text(batch.to_json())
        print(f"{args.count} images {img.width_px}x{img.height_px} ({args.preset}), {args.processes} processes x "
              f"{args.threads} render thread(s), {os.cpu_count()} cores; load average before: "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        folders = {}
        for engine in engines:
            out = (Path(args.keep) if args.keep else tmp) / f"dataset-{engine}"
            wall_s, t = run(spec_path, out, args.count, args.processes, args.threads, engine, tmp, not args.untuned)
            folders[engine] = out
            report = check_dataset(out)
            n = args.count
            print(f"\n{engine} ({t['note']})")
            print(f"  wall {wall_s:.1f} s -> {n / wall_s:.2f} images/s; CPU {t['cpu_total'] / n * 1000:.0f} ms/image "
                  f"(2 cores busy only with this: ~{2 * n / t['cpu_total']:.1f} images/s); "
                  f"{t['decided'] / n:.0f} edge pixels decided per image; dataset check: "
                  f"{'ok' if report.ok else report.problems[:3]}")
            for kind in ("wall", "cpu"):
                print(f"  {kind} ms per image: " + ", ".join(
                    f"{s} {t[kind][s] / n * 1000:.1f}" for s in STEPS if s in t[kind]))
        if len(folders) > 1:
            first, *rest = folders
            for other in rest:
                differ = same_files(folders[first], folders[other])
                print(f"\n{first} vs {other}: " + ("images, masks and meta identical" if not differ else
                                                   f"{len(differ)} files differ, e.g. {differ[:3]}"))


if __name__ == "__main__":
    main()
