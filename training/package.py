"""What a finished fit leaves for its users, in one folder: ``semcoat train package ROOT --out DIR``.

``ROOT`` is the fit's ``trainer.default_root_dir``; its newest fit's CSV log folder ``ROOT/logs/version_N`` holds
the checkpoints and metrics (``validate``, ``test`` and ``predict`` runs with the same root write newer
``version_N`` folders of their own, which are passed over: :func:`fit_log_dir`). ``DIR`` gets:

- ``model.onnx``: the best checkpoint exported (what ``semcoat predict --model`` takes);
- ``checkpoints/<best>.ckpt``: the best checkpoint itself (by the ModelCheckpoint's monitor; ``last.ckpt`` when
  the fit never validated);
- ``metrics.csv`` (every logged value), ``metrics.json`` (a summary: the monitor, its best value with the epoch
  and step, every validation metric of that epoch, the last epoch and step), and, where the fit wrote them,
  ``confusion_val.csv``, ``config.yaml`` (the whole config the fit ran with) and ``hparams.yaml``.

The folder is written under a temporary name and renamed into place, so a reader never sees half of it. The render
service runs this as the last step of a training job and collects ``DIR``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semcoat.errors import InvalidArgument, SemcoatError

COPIED = ("metrics.csv", "confusion_val.csv", "config.yaml", "hparams.yaml")
# Everything a package holds (what an earlier one may hold when it is replaced).
PACKAGE_NAMES = frozenset({"model.onnx", "metrics.json", "checkpoints", *COPIED})
_VERSION = re.compile(r"version_(\d+)")


class PackageError(SemcoatError):
    """The fit's folder lacks what packaging needs (no log folder, no checkpoint)."""


@dataclass(frozen=True)
class Packaged:
    """What :func:`package_run` wrote: the folder, the checkpoint packaged and the summary of ``metrics.json``."""

    out: Path
    checkpoint: Path
    summary: dict[str, Any]
    passed_over: tuple[Path, ...] = ()  # newer log folders of runs that were no fit (validate, test, predict)


def _is_fit_log(version: Path) -> bool:
    """Whether a log folder is a fit's: it holds a checkpoint or logged a training step (``validate``, ``test`` and
    ``predict`` runs do neither)."""
    if (version / "checkpoints").is_dir() and any((version / "checkpoints").glob("*.ckpt")):
        return True
    try:
        with (version / "metrics.csv").open(encoding="utf-8", errors="replace") as log:
            header = log.readline()
    except OSError:
        return False
    return any(name.startswith("train/") for name in header.strip().split(","))


def fit_log_dir(root: Path) -> tuple[Path, list[Path]]:
    """The newest fit's ``ROOT/logs/version_N`` folder (highest N among the fits'), and the newer folders passed
    over (runs that were no fit). With no fit's folder at all, the newest folder (its missing checkpoint is then
    the error)."""
    logs = root / "logs"
    versions = sorted(((int(m.group(1)), p) for p in logs.glob("version_*") if (m := _VERSION.fullmatch(p.name))),
                      reverse=True) if logs.is_dir() else []
    if not versions:
        raise PackageError(f"{root} holds no fit log folder (logs/version_N): did `semcoat train fit` run with "
                           f"--trainer.default_root_dir {root}?", argument="root")
    for k, (_, version) in enumerate(versions):
        if _is_fit_log(version):
            return version, [p for _, p in versions[:k]]
    return versions[0][1], []


def _checkpoint_state(path: Path) -> dict[str, Any]:
    """The ModelCheckpoint state saved in a checkpoint (monitor, best_model_path, best_model_score), or {}."""
    import torch

    from training.init_weights import LOAD_ERRORS

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS:  # not readable as weights and plain values: the state is unknown, the files decide
        return {}
    for key, state in (ckpt.get("callbacks") or {}).items():
        if key.startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor"):
            score = state.get("best_model_score")
            return {"monitor": state["monitor"], "best_model_path": state.get("best_model_path") or "",
                    "best_score": float(score) if score is not None else None,
                    "mode": "min" if "'mode': 'min'" in key else "max"}
    return {}


def best_checkpoint(checkpoints: Path) -> tuple[Path, dict[str, Any]]:
    """The best checkpoint in a fit's ``checkpoints`` folder and the ModelCheckpoint's state (monitor, score).

    The state in ``last.ckpt`` names the best; without it, the newest ``best*.ckpt``, then ``last.ckpt``, then the
    newest checkpoint of any name.
    """
    found = sorted(checkpoints.glob("*.ckpt"), key=lambda p: (p.stat().st_mtime, p.name)) \
        if checkpoints.is_dir() else []
    if not found:
        raise PackageError(f"the fit saved no checkpoint in {checkpoints}; see its log for why it stopped",
                           argument="root")
    last = checkpoints / "last.ckpt"
    state = _checkpoint_state(last) if last.is_file() else _checkpoint_state(found[-1])
    named = Path(state.get("best_model_path") or "")
    if named.name and (checkpoints / named.name).is_file():
        return checkpoints / named.name, state
    best = [p for p in found if p.name.startswith("best")]
    return (best[-1] if best else last if last.is_file() else found[-1]), state


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def summarise_metrics(csv_text: str, monitor: str | None, mode: str = "max") -> dict[str, Any]:
    """A summary of a CSV log (Lightning's ``metrics.csv``: one row per logging call, empty cells elsewhere).

    Returns ``{"monitor", "best": {"value", "epoch", "step"}, "val": {name: value at the best row}, "last":
    {"epoch", "step"}}``; ``best`` and ``val`` are None/{} when the monitor was never logged.
    """
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    last_epoch = max((int(v) for r in rows if (v := _number(r.get("epoch"))) is not None), default=None)
    last_step = max((int(v) for r in rows if (v := _number(r.get("step"))) is not None), default=None)
    scored = [(v, i) for i, r in enumerate(rows) if monitor and (v := _number(r.get(monitor))) is not None]
    summary: dict[str, Any] = {"monitor": monitor, "best": None, "val": {},
                               "last": {"epoch": last_epoch, "step": last_step}}
    if scored:
        # the first row reaching the best value (a tie keeps the earlier epoch, as ModelCheckpoint does)
        if mode == "min":
            value, index = min(scored, key=lambda s: (s[0], s[1]))
        else:
            value, index = max(scored, key=lambda s: (s[0], -s[1]))
        row = rows[index]
        epoch, step = _number(row.get("epoch")), _number(row.get("step"))
        summary["best"] = {"value": value, "epoch": None if epoch is None else int(epoch),
                           "step": None if step is None else int(step)}
        summary["val"] = {k: v for k in sorted(row)
                          if k and k.startswith("val/") and (v := _number(row[k])) is not None}
    return summary


def is_package(folder: Path) -> bool:
    """Whether ``folder`` is a package this module wrote: its model and summary, and nothing else than a package
    holds (so a fit's root, a dataset or any folder of the user's is never taken for one)."""
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return {"model.onnx", "metrics.json"} <= names and names <= PACKAGE_NAMES


def check_package_out(root: Path, out: Path) -> None:
    """Refuse an ``out`` that package_run would replace wrongly: anything but a missing or empty folder or an earlier
    package (a fit's root, its parent, a dataset: replacing ``out`` deletes it), a file, the root or a folder
    holding it.

    Raises
    ------
    InvalidArgument
        Saying what ``out`` is and what is accepted.
    """
    resolved_out, resolved_root = out.resolve(), root.resolve()
    if resolved_out == resolved_root or resolved_out in resolved_root.parents:
        raise InvalidArgument(f"{out} is the fit's root or holds it; give a folder of its own for the package "
                              f"(e.g. {root / 'package'})", argument="out")
    if out.exists() and not out.is_dir():
        raise InvalidArgument(f"{out} exists and is not a folder; give a new folder for the package", argument="out")
    if out.is_dir() and any(out.iterdir()) and not is_package(out):
        shown = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise InvalidArgument(f"{out} is a folder of other files ({shown}...), not an earlier package, which alone "
                              "is replaced; give a new or empty folder", argument="out")


def package_run(root: str | Path, out: str | Path, sample_px: tuple[int, int] = (256, 256)) -> Packaged:
    """Write the package of the fit in ``root`` into ``out`` (a new or empty folder, or an earlier package, replaced
    whole: :func:`check_package_out`); see the module doc."""
    from training.export import export

    root, out = Path(root), Path(out)
    check_package_out(root, out)
    version, passed_over = fit_log_dir(root)
    checkpoint, state = best_checkpoint(version / "checkpoints")
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "checkpoints").mkdir(parents=True)
    try:
        export(checkpoint, staging / "model.onnx", sample_px)
        shutil.copy2(checkpoint, staging / "checkpoints" / checkpoint.name)
        for name in COPIED:
            if (version / name).is_file():
                shutil.copy2(version / name, staging / name)
        metrics = version / "metrics.csv"
        summary = summarise_metrics(metrics.read_text(encoding="utf-8") if metrics.is_file() else "",
                                    state.get("monitor"), state.get("mode", "max"))
        summary["checkpoint"] = f"checkpoints/{checkpoint.name}"
        summary["model"] = "model.onnx"
        (staging / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Packaged(out, out / "checkpoints" / checkpoint.name, summary, tuple(passed_over))
