"""Segmentation training (Lightning) over dataset folders: see the modules' docstrings and README's Training section.

OpenMP threads that wait for work sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, unless the environment sets
it): set here, before any training module loads torch and with it the OpenMP runtime, which reads it once. On CPUs
shared with other work, spinning threads steal the cores the other threads of the same step need: a U-Net step of 8
crops of 256 px took 1.9-6.3 s spinning against 1.05-1.9 s passive on 2 cores at load 5-6 (OpenMP's default spins a
while before it sleeps).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
