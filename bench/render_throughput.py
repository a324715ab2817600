"""Render throughput: a 100-image 1024x768 batch with masks and ground truth, one render process per core.

    .venv/bin/python bench/render_throughput.py [--count 100] [--processes 2] [--preset 5h_650C] [--keep DIR]

Prints images/s over the whole run (process start to last sample written) and the seconds per phase summed over
the processes: import (Python + bpy + scene setup), geometry, scene update, render (Cycles + EXR read-back), image
formation, truth, writing (PNG encoding + atomic files).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worker(spec_path: str, out_dir: str, start: int, count: int, threads: int, timings_path: str) -> None:
    """Render one chunk in this process and write its timings as JSON."""
    t0 = time.perf_counter()
    from blender_addon.render_node.batch_render import render_range
    from blender_addon.render_node.renderer import Renderer
    from semcoat.batch import BatchSpec

    batch = BatchSpec.load(spec_path)
    renderer = Renderer(threads=threads)
    import_s = time.perf_counter() - t0
    report = render_range(batch, out_dir, lambda: renderer, start=start, count=count)
    times = {"import_s": import_s, **report.times.as_dict(), "images": len(report.rendered)}
    Path(timings_path).write_text(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=1, help="Cycles threads per process")
    parser.add_argument("--preset", default="5h_650C")
    parser.add_argument("--keep", help="write the dataset here (default: a temporary folder, removed)")
    parser.add_argument("--worker", nargs=6, metavar=("SPEC", "OUT", "START", "COUNT", "THREADS", "TIMINGS"))
    args = parser.parse_args()
    if args.worker:
        spec, out, start, count, threads, timings = args.worker
        worker(spec, out, int(start), int(count), int(threads), timings)
        return

    from semcoat.dataset import check_dataset
    from semcoat.presets import preset_batch

    batch = preset_batch(args.preset, count=args.count, seed=0)
    img = batch.base.imaging
    with tempfile.TemporaryDirectory(prefix="semcoat-bench-") as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "dataset"
        spec_path = Path(tmp) / "batch.json"
        spec_path.write_text(batch.to_json())
        chunk = -(-args.count // args.processes)
        t0 = time.perf_counter()
        procs = []
        for k in range(args.processes):
            start = k * chunk
            n = min(chunk, args.count - start)
            if n <= 0:
                break
            cmd = [sys.executable, __file__, "--worker", str(spec_path), str(out), str(start), str(n),
                   str(args.threads), str(Path(tmp) / f"times{k}.json")]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        codes = [p.wait() for p in procs]
        wall_s = time.perf_counter() - t0
        if any(codes):
            sys.exit(f"a render process failed (exit codes {codes}); run `semcoat render` on the chunk to see why")
        totals: dict[str, float] = {}
        for k in range(len(procs)):
            for key, value in json.loads((Path(tmp) / f"times{k}.json").read_text()).items():
                totals[key] = totals.get(key, 0.0) + value
        report = check_dataset(out)
        print(f"{args.count} images {img.width_px}x{img.height_px} ({args.preset}), {len(procs)} processes x "
              f"{args.threads} Cycles thread(s), {os.cpu_count()} cores")
        print(f"wall {wall_s:.1f} s -> {args.count / wall_s:.2f} images/s; dataset check: "
              f"{'ok' if report.ok else report.problems[:3]}")
        print("seconds per phase, summed over processes (per image):")
        for key in ("import_s", "geometry_s", "scene_s", "render_s", "image_s", "truth_s", "write_s"):
            print(f"  {key[:-2]:<9} {totals[key]:7.2f} s  ({totals[key] / args.count * 1000:6.1f} ms/image)")


if __name__ == "__main__":
    main()
