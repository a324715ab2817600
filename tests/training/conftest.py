"""Tiny generated dataset folders shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.synth import write_dataset


@pytest.fixture(scope="session")
def tiny_datasets(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two small dataset folders of different image sizes (96x128 and 112x144 px)."""
    root = tmp_path_factory.mktemp("tiny")
    return [write_dataset(root / "a", count=6, seed=0), write_dataset(root / "b", count=4, rows=112, cols=144, seed=1)]
