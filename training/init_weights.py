"""Starting weights for a fit from an earlier fit's checkpoint: fine-tuning a model trained on renders with a
lab's own labelled micrographs (``semcoat train fit ... --model.init_from CKPT``).

Only the network's weights are taken: the optimizer, the schedule, the epoch count, the class weights and the
calibrated logit offsets (``class_offsets``, which belong to the weights they were chosen for) start afresh. The
checkpoint is read with ``weights_only=True``, so a file given here runs no code when it is loaded. The network must be
the same (model name and options) and segment the same classes in the same order.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from semcoat.errors import InvalidArgument

NET_PREFIX = "net."


def load_initial_weights(path: str | Path, model: str, model_options: Mapping[str, Any] | None,
                         class_names: list[str]) -> dict[str, torch.Tensor]:
    """The network weights of the checkpoint at ``path`` (keys as in the network's own ``state_dict``), checked
    against the network about to be trained: ``model`` built with ``model_options``, segmenting ``class_names``.

    Raises
    ------
    InvalidArgument
        (argument ``init_from``) when the file is missing, is no checkpoint of ``semcoat train fit``, or holds another
        network or other classes; the message says which and what this fit builds.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"init_from: no such checkpoint file {path}", argument="init_from")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InvalidArgument(f"init_from: {path} is not a checkpoint of `semcoat train fit` (a .ckpt file of "
                              f"weights and hyperparameters; {reason})", argument="init_from") from exc
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(hparams, dict) or not isinstance(state, dict):
        raise InvalidArgument(f"init_from: {path} is not a checkpoint of `semcoat train fit` (it has no "
                              "hyper_parameters and state_dict)", argument="init_from")
    theirs = (hparams.get("model"), dict(hparams.get("model_options") or {}))
    ours = (model, dict(model_options or {}))
    if theirs != ours:
        raise InvalidArgument(f"init_from: {path} holds a {theirs[0]} network with model_options {theirs[1]}, this "
                              f"fit builds a {ours[0]} with {ours[1]}: give the same model and model_options",
                              argument="init_from")
    their_classes = list(hparams.get("class_names") or [])
    if their_classes != list(class_names):
        raise InvalidArgument(f"init_from: {path} segments the classes {their_classes}, this fit's data "
                              f"{list(class_names)}: the classes must be the same, in the same order",
                              argument="init_from")
    weights = {key[len(NET_PREFIX):]: value for key, value in state.items() if key.startswith(NET_PREFIX)}
    if not weights:
        raise InvalidArgument(f"init_from: {path} holds no network weights", argument="init_from")
    return weights
