"""The built distribution (the wheel a non-editable install uses: the cluster's environment, `pip install semcoat`)
holds every file of the packages, not only their modules: the service's Alembic migrations, the training configs,
the dashboard's static files, the add-on's manifest. An editable install reads them from the checkout, so nothing
else would notice one missing until a deployment fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("semcoat", "semcoat_cli", "blender_addon", "render_service", "training", "analysis")
# Documentation beside the code, for readers of the repository, not for the installed package.
NOT_INSTALLED_NAMES = {"README.md"}


def _tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "pyproject.toml", "README.md", *PACKAGES], cwd=REPO,
                            capture_output=True, text=True, check=True)
    return listed.stdout.split()


def test_the_wheel_holds_every_tracked_file_of_the_packages(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    tracked = _tracked_files()
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("semcoat-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())

    wanted = [n for n in tracked if n.split("/")[0] in PACKAGES and Path(n).name not in NOT_INSTALLED_NAMES]
    assert [n for n in wanted if n not in in_wheel] == []
    # the files the service and training read at run time, named so that a rename shows here too
    assert "render_service/db/migrations/env.py" in in_wheel
    assert any(n.startswith("render_service/db/migrations/versions/0001_") for n in in_wheel)
    assert "training/configs/unet.yaml" in in_wheel
