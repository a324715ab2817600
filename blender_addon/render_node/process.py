"""Settings of a render process that change how it uses the machine, never its pixels: what ``semcoat render`` (one
Slurm array task) sets before it draws the first image.

The image formation's blurs and filters run in OpenCV, which starts a thread per core of the node. A render task given
``--threads N`` (its share of the node: Slurm's ``--cpus-per-task``) keeps OpenCV to N threads as well, as Blender's
and llvmpipe's threads are kept, so that tasks sharing a node do not fight over its cores.
"""

from __future__ import annotations

import cv2


def tune_render_process(threads: int) -> None:
    """Keep OpenCV to ``threads`` threads (0: leave it to use every core). Changes no pixel; safe to call again."""
    if threads > 0:
        cv2.setNumThreads(threads)
