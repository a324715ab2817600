"""A render task keeps OpenCV to the threads it was given (its share of the node), and leaves it alone with 0."""

from __future__ import annotations

import cv2

from blender_addon.render_node.process import tune_render_process


def test_opencv_keeps_to_the_task_threads_and_zero_leaves_it_alone() -> None:
    before = cv2.getNumThreads()
    try:
        tune_render_process(1)
        assert cv2.getNumThreads() == 1
        tune_render_process(0)
        assert cv2.getNumThreads() == 1  # 0: as it was
        tune_render_process(3)
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)
