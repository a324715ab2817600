"""Starting weights for a fit from an earlier fit's checkpoint: fine-tuning a model trained on renders with a
lab's own labelled micrographs (``semcoat train fit ... --model.init_from CKPT``).

Only the network's weights are taken: the optimizer, the schedule, the epoch count, the class weights and the
calibrated logit offsets (``class_offsets``, which belong to the weights they were chosen for) start afresh. The
checkpoint is read with ``weights_only=True``, so a file given here runs no code when it is loaded. It must hold the
same kind of network (model name) segmenting the same classes in the same order, with weights of the same names and
shapes as the network about to be trained (options that change no weight, such as dropout, may differ), all finite.
"""

from __future__ import annotations

import errno
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch

from semcoat.errors import InvalidArgument

NET_PREFIX = "net."
# How many differing weight names a message lists before "..."
_LISTED = 3
_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")


# What torch.load raises for a file it cannot read as weights and plain values.
LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError,
               AttributeError, TypeError, struct.error, zipfile.BadZipFile)


def load_refusal(exc: BaseException) -> str:
    """Why a weights-only ``torch.load`` refused a file, in a few words: torch's own text goes on to advise loading
    it unsafely and to ask for bug reports, which a user given a hostile file must not be told."""
    text = " ".join(_ESCAPES.sub("", str(exc)).split())
    # torch's words for a file that is no archive it wrote, or a cut one: a magic number as a KeyError, EINVAL,
    # "failed finding central directory", "invalid load key"
    damaged = isinstance(exc, KeyError | EOFError | zipfile.BadZipFile | struct.error) \
        or (isinstance(exc, OSError) and exc.errno == errno.EINVAL) \
        or any(words in text for words in ("PytorchStreamReader failed", "invalid load key", "truncated"))
    if damaged:
        return "not a file PyTorch saved, or a damaged or truncated one"
    unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsupported:
        return f"it holds a {unsupported.group(1)} object, which a checkpoint does not; refused unread"
    refused = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    if refused:
        return f"a load of weights and plain values alone stops at: {refused.group(1)[:200]}; refused unread"
    return text.split(" (Could this error message")[0][:200] or type(exc).__name__


def _refuse(message: str, argument: str = "init_from") -> InvalidArgument:
    return InvalidArgument(message, argument=argument)


def read_checkpoint(path: Path, argument: str = "init_from") -> dict[str, Any]:
    """The checkpoint's top-level mapping, read without running code; InvalidArgument about ``argument`` saying why
    not (a folder, no file, a file that is no checkpoint of ``semcoat train fit``)."""
    refuse = partial(_refuse, argument=argument)
    try:
        found = path.is_file()
        folder = path.is_dir()
    except OSError as exc:  # a name too long, a loop of links
        raise refuse(f"{str(path)[:200]}: cannot be read ({exc.strerror or exc})") from exc
    if folder:
        raise refuse(f"{path} is a folder; give a .ckpt file of it (a fit keeps them in "
                     "logs/version_N/checkpoints/, a package in checkpoints/)")
    if not found:
        raise refuse(f"no such checkpoint file {path} (from the folder {Path.cwd()})" if not path.is_absolute()
                     else f"no such checkpoint file {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as exc:
        raise refuse(f"{path} is not a checkpoint of `semcoat train fit` ({load_refusal(exc)})") from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("hyper_parameters"), dict) \
            or not isinstance(ckpt.get("state_dict"), dict):
        raise refuse(f"{path} is not a checkpoint of `semcoat train fit` (it has no hyper_parameters and "
                     "state_dict)")
    return ckpt


def _names(keys: Any) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:_LISTED]) + (f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else "")


def load_initial_weights(path: str | Path, model: str, class_names: list[str],
                         expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network weights of the checkpoint at ``path`` (keys as in the network's own ``state_dict``), checked
    against the network about to be trained: a ``model`` segmenting ``class_names`` whose ``state_dict`` is
    ``expected`` (only its names and shapes are read).

    Raises
    ------
    InvalidArgument
        (argument ``init_from``) when the path is empty, missing or a folder, the file is no checkpoint of
        ``semcoat train fit``, or holds another network, other classes, weights of other names or shapes, or
        non-finite weights; the message says which.
    """
    if not str(path).strip():
        raise _refuse("an empty path: give an earlier fit's .ckpt file, or leave init_from null")
    path = Path(path)
    ckpt = read_checkpoint(path)
    hparams, state = ckpt["hyper_parameters"], ckpt["state_dict"]
    theirs = hparams.get("model")
    if not isinstance(theirs, str):
        raise _refuse(f"{path} names no semcoat network (hyper_parameters.model is {theirs!r}): is it a "
                      "checkpoint of `semcoat train fit`?")
    if theirs != model:
        raise _refuse(f"{path} holds a {theirs} network; this fit builds a {model}: give the same model")
    their_classes = hparams.get("class_names")
    if not (isinstance(their_classes, list) and all(isinstance(c, str) for c in their_classes)):
        raise _refuse(f"{path} has no class table (hyper_parameters.class_names is {their_classes!r})")
    if their_classes != list(class_names):
        raise _refuse(f"{path} segments the classes {their_classes}, this fit's data {list(class_names)}: the "
                      "classes must be the same, in the same order")
    weights = {key[len(NET_PREFIX):]: value for key, value in state.items() if key.startswith(NET_PREFIX)}
    missing, extra = expected.keys() - weights.keys(), weights.keys() - expected.keys()
    shaped = {k for k in expected.keys() & weights.keys()
              if not isinstance(weights[k], torch.Tensor) or weights[k].shape != expected[k].shape}
    if missing or extra or shaped:
        parts = [f"{len(group)} {what} ({_names(group)})" for group, what in
                 ((missing, "missing"), (extra, "not in this network"), (shaped, "of another shape")) if group]
        raise _refuse(f"{path}: its {theirs} weights do not fit the network this fit builds (model_options "
                      f"{hparams.get('model_options')!r} there): {'; '.join(parts)}")
    bad = {k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())}
    if bad:
        raise _refuse(f"{path} holds non-finite weights ({_names(bad)}): a fit cannot start from them")
    return weights
