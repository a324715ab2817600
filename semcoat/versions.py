"""What an installation of semcoat is, in the terms two installations compare: the render service's and the cluster's.

``semcoat version --json`` prints an :class:`InstalledVersion` of the installation it runs from; the service's Slurm
backend runs that command on the cluster and compares the answer with its own before submitting anything
(:func:`compatibility_problems`). Two installations are compatible when

- their batch specs have the same JSON Schema fingerprint (:func:`schema_fingerprint`: fields, types, ranges,
  choices and defaults; wording of titles and descriptions left out), so every spec the service accepts the cluster
  reads the same way, and
- their renderers have the same generator version (the one ``dataset.json`` records), so the cluster renders the
  same images, bit for bit, that the service's own renderer (local backend, previews) would, and
- for trainings, they read the same training configs (``train_config``: the fingerprint of the config keys and
  names, :func:`training.config_check.train_config_fingerprint`), so a key the service writes (``init_from``) is not
  refused by the cluster's `semcoat train fit` after the job waited in the queue.

The package version alone says little (it stays 0.1.0 across many changes of a checkout); it is shown, not compared,
where the generator is known.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Keywords that only document a schema; changing their words changes nothing a spec means.
_DOC_KEYWORDS = frozenset({"title", "description", "$comment", "examples"})
# Keywords whose value is a map of names to schemas: the names are meaningful, a field may be called "description".
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
# Keywords whose value is data (a default, a constant), kept as it is.
_DATA_KEYWORDS = frozenset({"default", "const", "enum"})
# The short form of a fingerprint shown in messages (48 bits: two different schemas never look alike in practice).
SHORT_FINGERPRINT = 12


def _without_docs(node: Any, names: bool = False) -> Any:
    if isinstance(node, dict):
        if names:
            return {key: _without_docs(value) for key, value in node.items()}
        return {key: value if key in _DATA_KEYWORDS else _without_docs(value, key in _NAME_MAPS)
                for key, value in node.items() if key not in _DOC_KEYWORDS}
    if isinstance(node, list):
        return [_without_docs(value) for value in node]
    return node


def schema_fingerprint(schema: dict[str, Any]) -> str:
    """SHA-256 (hex) of a JSON Schema without its documentation keywords, in canonical JSON (sorted keys)."""
    canonical = json.dumps(_without_docs(schema), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def batch_schema_fingerprint() -> str:
    """The fingerprint of this installation's batch-spec schema (``semcoat spec schema``)."""
    from semcoat.schema import batch_spec_schema  # the spec modules load only when asked

    return schema_fingerprint(batch_spec_schema())


@dataclass(frozen=True)
class InstalledVersion:
    """One installation: package version, renderer's generator version (None: no render part), batch-schema
    fingerprint, the optional parts that can run there (``render``, ``train``) and the training-config fingerprint
    (None: an installation that cannot read training configs, or one older than the fingerprint)."""

    semcoat: str
    generator: str | None
    batch_schema: str
    parts: tuple[str, ...] = ()
    train_config: str | None = None

    def to_json(self) -> str:
        """One line of JSON (what ``semcoat version --json`` prints)."""
        return json.dumps({"semcoat": self.semcoat, "generator": self.generator, "batch_schema": self.batch_schema,
                           "parts": list(self.parts), "train_config": self.train_config})

    @classmethod
    def from_json(cls, text: str) -> InstalledVersion:
        """Read :meth:`to_json`'s line back; ValueError saying what is wrong with it."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        semcoat, generator, schema = data.get("semcoat"), data.get("generator"), data.get("batch_schema")
        parts = data.get("parts", [])
        if not isinstance(semcoat, str) or not isinstance(schema, str) or not schema:
            raise ValueError("'semcoat' and 'batch_schema' must be strings")
        if generator is not None and not isinstance(generator, str):
            raise ValueError("'generator' must be a string or null")
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            raise ValueError("'parts' must be a list of strings")
        train_config = data.get("train_config")
        if train_config is not None and not isinstance(train_config, str):
            raise ValueError("'train_config' must be a string or null")
        return cls(semcoat, generator, schema, tuple(parts), train_config)

    def describe(self) -> str:
        """A short human form: ``semcoat 0.1.0, generator 'semcoat 0.1.0 blender_addon renderer 12', batch schema
        1a2b3c4d5e6f``."""
        generator = f"generator {self.generator!r}" if self.generator else "no renderer"
        return f"semcoat {self.semcoat}, {generator}, batch schema {self.batch_schema[:SHORT_FINGERPRINT]}"


def compatibility_problems(service: InstalledVersion, cluster: InstalledVersion,
                           needs: Iterable[str] = ("render",)) -> list[str]:
    """What keeps ``cluster`` from doing the service's work (empty: compatible), each as a short clause.

    ``needs`` are the parts the work needs on the cluster (``render`` for batches, ``train`` for trainings). The
    generator versions are compared when the service knows its own (a service installed without the render part
    compares the package versions instead).
    """
    problems = []
    if cluster.batch_schema != service.batch_schema:
        problems.append(f"its batch-spec schema differs ({cluster.batch_schema[:SHORT_FINGERPRINT]}, the service's "
                        f"{service.batch_schema[:SHORT_FINGERPRINT]})")
    if service.generator is not None and cluster.generator is not None and cluster.generator != service.generator:
        problems.append(f"its renderer differs ({cluster.generator!r}, the service's {service.generator!r})")
    elif service.generator is None and cluster.semcoat != service.semcoat:
        problems.append(f"its version differs ({cluster.semcoat}, the service's {service.semcoat})")
    if "train" in needs and service.train_config is not None and cluster.train_config != service.train_config:
        problems.append("it does not say which training configs it reads (older than the service's)"
                        if cluster.train_config is None else
                        f"its training-config keys differ ({cluster.train_config[:SHORT_FINGERPRINT]}, the service's "
                        f"{service.train_config[:SHORT_FINGERPRINT]})")
    missing = [part for part in needs if part not in cluster.parts]
    if missing:
        problems.append(f"it lacks the {' and '.join(missing)} part{'s' if len(missing) > 1 else ''}")
    return problems
