"""Where render tasks run: ``local`` (this machine's processes) and ``slurm`` (a job array over SSH).

Both implement :class:`~render_service.backends.base.Backend`; :mod:`render_service.orchestrate` drives them.
"""
