"""The render node: what one Slurm array task (or one local render process) runs.

Renderer (Cycles, exact index-pass masks), specimen texture and artefacts, SEM image formation, the data bar, the
batch render loop with ground truth, and ``semcoat render``. It needs the render extra (bpy, scipy, OpenCV) and is
not part of the extension zip.
"""
