"""Is the cluster's semcoat the one this service needs? Ask it (``semcoat version --json`` over the backend's
runner) and compare with the service's own (:mod:`semcoat.versions`: the same batch-schema fingerprint and the same
renderer generator, and the parts the work needs).

A cluster environment installed before the service's semcoat gained spec fields would fail every array task with
"unknown field ..."; this check turns that into one sentence at submit, with the fix, and nothing submitted. The
pure parts are here; :class:`~render_service.backends.slurm.SlurmBackend` runs the command, caches the answer per
connection and raises :class:`IncompatibleCluster`.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable, Sequence

from render_service.slurm.errors import SubmissionError
from render_service.slurm.transport import CommandResult
from semcoat.versions import InstalledVersion, compatibility_problems

# The cluster's answer is asked again after this long, and after every reconnection; an answer that stops work
# sooner (the admin is probably reinstalling), and always before it fails a batch if it is older than FRESH_S.
RECHECK_S = 300.0
MISMATCH_RECHECK_S = 30.0
FRESH_S = 5.0
_QUOTED_OUTPUT_CHARS = 300


class IncompatibleCluster(SubmissionError):
    """The cluster's semcoat cannot do this service's work as the service promises it (another spec schema or
    renderer, a missing part, too old to say, or it does not run); the message says which, and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message, slurm_message="")


def version_argv(semcoat: str, setup_lines: Sequence[str] = ()) -> list[str]:
    """The command that asks the cluster's semcoat what it is, through bash as a task runs it (a semcoat that is
    missing is bash's exit 127 wherever the service runs). The admin's set-up lines (``module load ...``) run first,
    as before each task, their output kept off stdout and their failures ignored (a line meant for compute nodes
    must not make a working semcoat look broken)."""
    setup = "{\n" + "\n".join(setup_lines) + "\n} >&2\n" if setup_lines else ""
    return ["bash", "-c", f"{setup}exec {shlex.quote(semcoat)} version --json"]


def install_prefix(semcoat: str) -> str:
    """Where ``scripts/install-render-env.sh`` put the cluster's semcoat (``PREFIX/bin/semcoat``), or ``PREFIX``."""
    folder = posixpath.dirname(semcoat)
    if posixpath.isabs(semcoat) and posixpath.basename(folder) == "bin":
        return posixpath.dirname(folder) or "/"
    return "PREFIX"


def _quoted(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not set(line.strip()) <= set("╭╮╰╯─│ ")]
    flat = " ".join(line.strip("│ ") for line in lines)
    return flat if len(flat) <= _QUOTED_OUTPUT_CHARS else flat[:_QUOTED_OUTPUT_CHARS] + "..."


def read_cluster_version(result: CommandResult) -> InstalledVersion | str:
    """The cluster's installation from the command's result, or why there is none (a clause: "it has no ...")."""
    if result.exit_code == 2 and "No such command" in result.stderr + result.stdout:
        return "it is older than the service's and has no `semcoat version` command"
    if result.exit_code != 0:
        return f"it does not run (`semcoat version --json` exited {result.exit_code}: " \
               f"{_quoted(result.stderr or result.stdout) or 'no output'})"
    # the last line that reads as an object: a login script may have printed something before it
    for line in reversed(result.stdout.splitlines()):
        if line.strip().startswith("{"):
            try:
                return InstalledVersion.from_json(line)
            except ValueError:
                break
    return f"its `semcoat version --json` printed no version ({_quoted(result.stdout) or 'nothing'})"


def incompatibility(service: InstalledVersion, cluster: InstalledVersion | str, semcoat: str, host: str,
                    needs: Iterable[str]) -> str | None:
    """One sentence saying why the cluster's semcoat cannot do work that ``needs`` these parts, naming both
    installations and the fix; None when it can."""
    needs = tuple(needs)
    if isinstance(cluster, InstalledVersion):
        problems = compatibility_problems(service, cluster, needs)
        if not problems:
            return None
        what = "; ".join(problems)  # each names the cluster's value and the service's
        train = "train" in needs or "train" in cluster.parts
    else:
        what = f"{cluster} (service: {service.describe()})"
        train = "train" in needs
    install = f"bash scripts/install-render-env.sh {install_prefix(semcoat)} --extras " + \
        ("render,train" if train else "render")
    return (f"The cluster's semcoat ({semcoat} on {host}) does not match this service's, so no batch or training "
            f"is submitted to Slurm: {what}; rerun `{install}` on the login node from the service's semcoat (or "
            "point SEMCOAT_CLUSTER_SEMCOAT at an installation that matches).")

