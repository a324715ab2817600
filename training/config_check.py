"""A training config checked without torch: what the service can refuse at submit, before a job starts.

``semcoat train fit`` (Lightning's CLI) is the judge of a config, but it needs torch and runs on the cluster; a
config it would refuse should not wait in a queue for that. This module parses the YAML safely (no tags, anchors or
aliases, bounded size and depth), merges dotted overrides, and checks what is cheap to check: the sections and
keys Lightning's CLI accepts for :class:`~training.module.SegmentationModule`,
:class:`~training.data.SegmentationDataModule` and the Trainer, model and loss names, the types of values that
jsonargparse would otherwise read as file paths (a string where a mapping belongs names a file to load), and the
keys the service sets itself or does not allow (logging off, uploads to a model registry, other processes' paths).

Standard library and PyYAML only: the service's API imports it. The name lists here are copies of the training
code's own (``training.models.MODEL_NAMES``, ``training.losses.LOSS_NAMES``, the classes' signatures); a test keeps
them equal.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semcoat import classes
from semcoat.errors import SemcoatError

CONFIG_DIR = Path(__file__).parent / "configs"
READY_CONFIGS = ("unet", "deeplab", "swin_unetr")
MODEL_NAMES = ("unet", "deeplab", "swin_unetr")
LOSS_NAMES = ("dice_ce", "ce", "dice", "focal")
SCHEDULERS = ("cosine", "constant")
PRECISIONS = ("16-true", "16-mixed", "bf16-true", "bf16-mixed", "32-true", "64-true", "16", "32", "64", "bf16", 16,
              32, 64)

MAX_CONFIG_CHARS = 65_536
MAX_DEPTH = 12
MAX_OVERRIDES = 100

SECTIONS = ("seed_everything", "trainer", "model", "data")
MODEL_KEYS = ("model", "model_options", "loss", "class_weights", "label_smoothing", "focal_gamma", "dice_weight",
              "ce_weight", "max_weight_ratio", "class_weight_power", "lr", "weight_decay", "scheduler", "warmup_steps",
              "channels_last", "prior_correction", "class_offsets", "init_from")
DATA_KEYS = ("datasets", "weights", "val_datasets", "test_datasets", "val_fraction", "test_fraction", "split_seed",
             "crop_px", "crops_per_epoch", "class_balance", "batch_size", "eval_batch_size", "num_workers", "augment",
             "augment_config", "cache_mb", "ignore_faint_precipitates")
AUGMENT_KEYS = ("flip_p", "brightness", "contrast", "gamma", "intensity_p", "noise_std", "noise_p", "blur_sigma_px",
                "blur_p", "elastic_alpha_px", "elastic_sigma_px", "elastic_p", "scan_gain_std", "scan_jitter_px",
                "scan_p")
TRAINER_KEYS = ("accelerator", "strategy", "devices", "num_nodes", "precision", "logger", "callbacks",
                "fast_dev_run", "max_epochs", "min_epochs", "max_steps", "min_steps", "max_time",
                "limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
                "overfit_batches", "val_check_interval", "check_val_every_n_epoch", "num_sanity_val_steps",
                "log_every_n_steps", "enable_checkpointing", "enable_progress_bar", "enable_model_summary",
                "accumulate_grad_batches", "gradient_clip_val", "gradient_clip_algorithm", "deterministic",
                "benchmark", "inference_mode", "use_distributed_sampler", "profiler", "detect_anomaly", "barebones",
                "plugins", "sync_batchnorm", "reload_dataloaders_every_n_epochs", "default_root_dir",
                "enable_autolog_hparams", "model_registry")

# Set by the service from the request's resources and dataset: dropped from a config text, refused as overrides.
SERVICE_KEYS = ("trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.strategy",
                "trainer.default_root_dir", "data.datasets")
# Not accepted (unless left at a harmless value: null, false, an empty list, and for the logger true, which means
# the default loggers), with the reason.
REFUSED_KEYS = {
    "trainer.logger": "the service keeps the CSV and TensorBoard logs itself (its metrics come from them)",
    "trainer.plugins": "plugins are not accepted through the service",
    "trainer.model_registry": "uploading to a model registry is not accepted (the model is collected by the service)",
    "trainer.barebones": "barebones mode writes no checkpoint or log, which the service collects",
    "trainer.fast_dev_run": "a fast_dev_run saves no checkpoint; limit the run with trainer.max_steps",
    "data.val_datasets": "the service splits its folders by seed (data.val_fraction); folders of other splits are "
                         "not accepted",
    "data.test_datasets": "the service splits its folders by seed (data.test_fraction); folders of other splits are "
                          "not accepted",
}

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}")
_CALLBACK = re.compile(r"(lightning\.pytorch\.callbacks\.)?[A-Z][A-Za-z0-9]{0,63}")
_PROFILERS = ("simple", "advanced", "pytorch")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    """One problem of a config: where (``path``, e.g. ``("model", "loss")``), what is wrong and what is accepted."""

    path: Path_
    msg: str
    value: Any = None

    @property
    def dotted(self) -> str:
        """The path as ``model.loss`` (list positions as numbers)."""
        return ".".join(map(str, self.path))


class ConfigError(SemcoatError):
    """A config the checks refuse; ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        super().__init__("; ".join(f"{p.dotted or 'config'}: {p.msg}" for p in problems))
        self.problems = list(problems)


def train_config_fingerprint() -> str:
    """SHA-256 (hex) of what a training config may say here: the keys of each section, the augmentation's, and the
    model, loss and scheduler names. Two installations with the same fingerprint read the same configs; one with
    another refuses a key the other writes (the service compares its own with the cluster's before a training)."""
    import hashlib
    import json

    known = {"sections": SECTIONS, "model": MODEL_KEYS, "data": DATA_KEYS, "augment": AUGMENT_KEYS,
             "trainer": TRAINER_KEYS, "models": MODEL_NAMES, "losses": LOSS_NAMES, "schedulers": SCHEDULERS}
    return hashlib.sha256(json.dumps(known, sort_keys=True).encode("utf-8")).hexdigest()


def ready_config_text(name: str) -> str:
    """The YAML text of a ready config (``unet``, ``deeplab``, ``swin_unetr``); ConfigError for another name."""
    if name not in READY_CONFIGS:
        raise ConfigError([ConfigProblem((), f"no ready config is called {name!r}; accepted: "
                                             f"{', '.join(READY_CONFIGS)}", name)])
    return (CONFIG_DIR / f"{name}.yaml").read_text(encoding="utf-8")


def parse_config(text: str) -> dict[str, Any]:
    """The YAML ``text`` as a mapping: safe types only, no anchors or aliases (an alias bomb expands when the
    config is written back), at most :data:`MAX_CONFIG_CHARS` characters and :data:`MAX_DEPTH` levels."""
    import yaml

    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError([ConfigProblem((), f"the config is {len(text)} characters, over the "
                                             f"{MAX_CONFIG_CHARS} accepted")])
    try:
        events = list(yaml.parse(text, Loader=yaml.SafeLoader))
        depth = 0
        for event in events:
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ConfigError([ConfigProblem((), "YAML anchors and aliases (&name, *name) are not accepted; "
                                                     "write the values out")])
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError([ConfigProblem((), f"the config nests deeper than {MAX_DEPTH} levels")])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([ConfigProblem((), f"not valid YAML{at}: {reason}")]) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError([ConfigProblem((), f"the config must be a YAML mapping of sections ({', '.join(SECTIONS)}), "
                                             f"not a {type(doc).__name__}")])
    return doc


def _get(doc: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def drop_service_keys(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``doc`` without the keys the service sets (:data:`SERVICE_KEYS`); also the dotted keys dropped.

    The ready configs set some of them (``trainer.devices: 1``, ``trainer.default_root_dir``), so a copy of one is
    accepted as it is; the service's values come from the request's resources and dataset.
    """
    out = copy.deepcopy(doc)
    dropped = []
    for dotted in SERVICE_KEYS:
        section, key = dotted.split(".")
        if isinstance(out.get(section), dict) and key in out[section]:
            del out[section][key]
            dropped.append(dotted)
    return out, dropped


def apply_overrides(doc: dict[str, Any], overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """A copy of ``doc`` with each dotted ``key: value`` of ``overrides`` set (``{"trainer.max_steps": 50}``), and the
    overrides refused: a bad key, a key the service sets, a path through a value that is not a mapping."""
    out = copy.deepcopy(doc)
    problems: list[ConfigProblem] = []
    if len(overrides) > MAX_OVERRIDES:
        return out, [ConfigProblem((), f"{len(overrides)} overrides given; at most {MAX_OVERRIDES} are accepted")]
    for key, value in overrides.items():
        if not isinstance(key, str) or not _DOTTED.fullmatch(key):
            problems.append(ConfigProblem((str(key)[:80],), "an override key is a dotted name like "
                                                            "'trainer.max_steps' or 'model.lr'", key))
            continue
        if key in SERVICE_KEYS or any(key.startswith(k + ".") for k in SERVICE_KEYS):
            problems.append(ConfigProblem((key,), "set by the service (from the request's resources and dataset); "
                                                  "drop this override", value))
            continue
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(ConfigProblem((key,), f"{'.'.join(parts[:i + 1])} is not a mapping in the config, so "
                                                      "nothing can be set under it", value))
                break
            node = child
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return out, problems


# -- value checks ------------------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _int_at_least(low: int) -> Any:
    def check(value: Any) -> str | None:
        return None if _is_int(value) and value >= low else f"expected a whole number of at least {low}"
    return check


def _number_between(low: float, high: float, high_open: bool = False) -> Any:
    def check(value: Any) -> str | None:
        ok = _is_number(value) and low <= value and (value < high if high_open else value <= high)
        return None if ok else f"expected a number in [{low:g}, {high:g}{')' if high_open else ']'}"
    return check


def _positive_number(value: Any) -> str | None:
    return None if _is_number(value) and value > 0 else "expected a number above 0"


def _non_negative_number(value: Any) -> str | None:
    return None if _is_number(value) and value >= 0 else "expected a number of at least 0"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def _one_of(choices: Sequence[Any]) -> Any:
    def check(value: Any) -> str | None:
        return None if value in choices and not isinstance(value, bool) else \
            f"expected one of {', '.join(map(str, choices))}"
    return check


def _mapping(value: Any) -> str | None:
    # jsonargparse reads a string where a mapping belongs as the path of a file to load: only mappings are accepted
    return None if isinstance(value, dict) else "expected a mapping (key: value pairs)"


def _optional(check: Any) -> Any:
    def inner(value: Any) -> str | None:
        return None if value is None else check(value)
    return inner


def _class_weights(value: Any) -> str | None:
    if value is None or value == "auto":
        return None
    if isinstance(value, list) and value and all(_is_number(v) and v >= 0 for v in value):
        return None
    return "expected 'auto', null, or a list of non-negative numbers (one per class)"


def _class_offsets(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict) and all(isinstance(k, str) and _is_number(v) and abs(v) <= 10 for k, v in value.items()):
        unknown = sorted(set(value) - set(classes.CLASS_NAMES.values()))
        return None if not unknown else (f"unknown class name(s) {unknown}; the class table's names: "
                                         f"{', '.join(classes.CLASS_NAMES.values())}")
    return "expected null or a mapping of class names to logit offsets within [-10, 10], like {feal: -0.75}"


MAX_PATH_CHARS = 4096
MAX_NAME_CHARS = 255


def checkpoint_path_problem(value: Any) -> str | None:
    """Why ``value`` is not accepted as ``model.init_from`` (None: accepted): the absolute path of a .ckpt file,
    printable, at most 4096 characters and 255 per name. It is read by the job from its own working folder, so only
    an absolute path means one file there."""
    if not (isinstance(value, str) and value.startswith("/") and value.endswith(".ckpt") and value.isprintable()
            and len(value) <= MAX_PATH_CHARS and all(len(name) <= MAX_NAME_CHARS for name in value.split("/"))):
        return (f"expected the absolute path of a .ckpt file on the cluster (an earlier fit's checkpoint; printable, "
                f"at most {MAX_PATH_CHARS} characters and {MAX_NAME_CHARS} per name)")
    return None


def _steps(value: Any) -> str | None:
    return None if _is_int(value) and value >= -1 else "expected a whole number (-1: no limit)"


def _batches(value: Any) -> str | None:
    ok = (_is_int(value) and value >= 0) or (isinstance(value, float) and 0.0 <= value <= 1.0)
    return None if ok or value is None else "expected a count of batches (0 or more) or a fraction in [0, 1]"


def _max_time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{1,3}:\d{1,2}:\d{1,2}:\d{1,2}", value):
        return None
    return "expected 'DD:HH:MM:SS' (e.g. '00:00:20:00')"


def _profiler(value: Any) -> str | None:
    return None if value is None or value in _PROFILERS else f"expected null or one of {', '.join(_PROFILERS)}"


VALUE_CHECKS: dict[str, Any] = {
    "seed_everything": lambda v: None if isinstance(v, bool) or _is_int(v) else "expected a whole number or true",
    "trainer": _mapping, "model": _mapping, "data": _mapping,
    "model.model": _one_of(MODEL_NAMES), "model.loss": _one_of(LOSS_NAMES), "model.scheduler": _one_of(SCHEDULERS),
    "model.model_options": _optional(_mapping), "model.class_weights": _class_weights,
    "model.lr": _positive_number, "model.weight_decay": _non_negative_number,
    "model.label_smoothing": _number_between(0.0, 1.0, high_open=True), "model.focal_gamma": _non_negative_number,
    "model.dice_weight": _non_negative_number, "model.ce_weight": _non_negative_number,
    "model.max_weight_ratio": _number_between(1.0, 1e6), "model.class_weight_power": _number_between(0.0, 4.0),
    "model.warmup_steps": _int_at_least(0),
    "model.channels_last": _boolean, "model.prior_correction": _number_between(0.0, 1.0),
    "model.class_offsets": _class_offsets, "model.init_from": _optional(checkpoint_path_problem),
    "data.val_fraction": _number_between(0.0, 1.0, high_open=True),
    "data.test_fraction": _number_between(0.0, 1.0, high_open=True), "data.split_seed": _int_at_least(0),
    "data.crop_px": _int_at_least(32), "data.crops_per_epoch": _int_at_least(1),
    "data.class_balance": _number_between(0.0, 1.0), "data.batch_size": _int_at_least(1),
    "data.eval_batch_size": _int_at_least(1), "data.num_workers": _int_at_least(0), "data.augment": _boolean,
    "data.augment_config": _optional(_mapping), "data.cache_mb": _int_at_least(0),
    "data.ignore_faint_precipitates": _number_between(0.0, 1.0),
    "trainer.precision": _optional(_one_of(PRECISIONS)), "trainer.max_epochs": _optional(_steps),
    "trainer.min_epochs": _optional(_steps), "trainer.max_steps": _steps, "trainer.min_steps": _optional(_steps),
    "trainer.max_time": _max_time, "trainer.limit_train_batches": _batches, "trainer.limit_val_batches": _batches,
    "trainer.limit_test_batches": _batches, "trainer.limit_predict_batches": _batches,
    "trainer.log_every_n_steps": _optional(_int_at_least(1)),
    "trainer.check_val_every_n_epoch": _optional(_int_at_least(1)),
    "trainer.num_sanity_val_steps": _optional(_steps), "trainer.enable_progress_bar": _optional(_boolean),
    "trainer.enable_model_summary": _optional(_boolean), "trainer.profiler": _profiler,
    "trainer.accumulate_grad_batches": _int_at_least(1), "trainer.gradient_clip_val": _optional(_non_negative_number),
    "trainer.gradient_clip_algorithm": _optional(_one_of(("norm", "value"))),
    "trainer.deterministic": _optional(lambda v: None if isinstance(v, bool) or v == "warn" else
                                       "expected true, false or 'warn'"),
}


def _walk_keys(node: Any, path: Path_, problems: list[ConfigProblem]) -> None:
    """Every mapping key is a plain name (YAML allows numbers, nulls or '__path__'-like keys jsonargparse reads)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str) or not _KEY.fullmatch(key) or key.startswith("__"):
                problems.append(ConfigProblem((*path, str(key)[:64]), "keys are plain names (letters, digits, '_', "
                                                                      "not starting with '__' or a digit)", key))
                continue
            _walk_keys(value, (*path, key), problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk_keys(value, (*path, i), problems)


def _known_keys(section: str, node: Any, accepted: Sequence[str], problems: list[ConfigProblem]) -> None:
    if not isinstance(node, dict):
        return
    for key in node:
        if isinstance(key, str) and _KEY.fullmatch(key) and not key.startswith("__") and key not in accepted:
            hint = ""
            if section == "model" and key in ("num_classes", "class_names"):
                hint = " (taken from the datasets' class table)"
            problems.append(ConfigProblem((*section.split("."), key), f"unknown key{hint}; accepted: "
                                                                      f"{', '.join(accepted)}", key))


def _check_callbacks(callbacks: Any, problems: list[ConfigProblem]) -> None:
    if callbacks is None:
        return
    if not isinstance(callbacks, list):
        problems.append(ConfigProblem(("trainer", "callbacks"), "expected a list of {class_path, init_args}", "..."))
        return
    for i, item in enumerate(callbacks):
        where: Path_ = ("trainer", "callbacks", i)
        if not isinstance(item, dict) or not isinstance(item.get("class_path"), str):
            problems.append(ConfigProblem(where, "expected {class_path: ..., init_args: {...}}", "..."))
            continue
        unknown = set(item) - {"class_path", "init_args"}
        if unknown:
            problems.append(ConfigProblem(where, f"unknown key(s) {sorted(unknown)}; accepted: class_path, "
                                                 "init_args", sorted(unknown)))
        if not _CALLBACK.fullmatch(item["class_path"]):
            problems.append(ConfigProblem((*where, "class_path"), "expected a callback of Lightning "
                                          "(lightning.pytorch.callbacks.NAME, e.g. ModelCheckpoint, EarlyStopping)",
                                          item["class_path"]))
        init_args = item.get("init_args", {})
        if init_args is not None and not isinstance(init_args, dict):
            problems.append(ConfigProblem((*where, "init_args"), "expected a mapping", "..."))
        elif isinstance(init_args, dict) and "dirpath" in init_args:
            problems.append(ConfigProblem((*where, "init_args", "dirpath"), "checkpoints go where the service "
                                          "collects them; drop dirpath", init_args["dirpath"]))


def check_config(doc: Mapping[str, Any], dataset_count: int | None = None) -> list[ConfigProblem]:
    """Every problem of a merged config (after :func:`drop_service_keys` and :func:`apply_overrides`) that can be
    found without torch. ``dataset_count``: the number of dataset folders the job gets (``data.weights`` needs one
    weight per folder)."""
    problems: list[ConfigProblem] = []
    _walk_keys(doc, (), problems)
    for key in doc:
        if isinstance(key, str) and key not in SECTIONS:
            problems.append(ConfigProblem((key,), f"unknown section; accepted: {', '.join(SECTIONS)}", key))
    _known_keys("trainer", doc.get("trainer"), TRAINER_KEYS, problems)
    _known_keys("model", doc.get("model"), MODEL_KEYS, problems)
    _known_keys("data", doc.get("data"), DATA_KEYS, problems)
    data = doc.get("data")
    if isinstance(data, dict):
        _known_keys("data.augment_config", data.get("augment_config"), AUGMENT_KEYS, problems)
    for dotted, reason in REFUSED_KEYS.items():
        present, value = _get(doc, dotted)
        harmless = value is None or value is False or value == [] or (dotted == "trainer.logger" and value is True)
        if present and not harmless:
            problems.append(ConfigProblem(tuple(dotted.split(".")), f"not accepted: {reason}", _short(value)))
    for dotted, check in VALUE_CHECKS.items():
        present, value = _get(doc, dotted)
        if present:
            message = check(value)
            if message:
                problems.append(ConfigProblem(tuple(dotted.split(".")), message, _short(value)))
    present, value = _get(doc, "trainer.enable_checkpointing")
    if present and value is not None and value is not True:
        problems.append(ConfigProblem(("trainer", "enable_checkpointing"), "not accepted: the service exports the "
                                                                           "best checkpoint; leave it true", value))
    trainer = doc.get("trainer")
    if isinstance(trainer, dict):
        _check_callbacks(trainer.get("callbacks"), problems)
    present, weights = _get(doc, "data.weights")
    if present and weights is not None:
        if not isinstance(weights, list) or not all(_is_number(w) and w >= 0 for w in weights) or not sum(weights):
            problems.append(ConfigProblem(("data", "weights"), "expected a list of non-negative numbers with a "
                                                               "positive sum, one per dataset folder", _short(weights)))
        elif dataset_count is not None and len(weights) != dataset_count:
            problems.append(ConfigProblem(("data", "weights"), f"{len(weights)} weight(s) for {dataset_count} "
                                          "dataset folder(s) (batches first, then folders); give one per folder",
                                          _short(weights)))
    return problems


def _short(value: Any, limit: int = 200) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value if not isinstance(value, str) else value[:limit]
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
