"""The Slurm layer: pure parsers of Slurm's output and a small command transport (SSH or local)."""
