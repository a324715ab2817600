"""The Slurm layer of the render service.

- ``sbatch``: the pure sbatch-script builder of a render batch's job array;
- ``parsers``: pure parsers of sbatch, squeue and jobcomp output;
- ``jobs``: submit, cancel and poll arrays through a runner;
- ``transport`` (the ``CommandRunner`` protocol), ``local``, ``ssh``, ``fake``: where commands and file operations run;
- ``errors``: the typed errors (transport, submission, failed jobs, remote files), all ``SemcoatError``.
"""
