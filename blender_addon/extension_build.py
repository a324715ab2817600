"""Packaging for Blender: the standard-library core as a pure-Python wheel that the extension manifest lists, and the
extension zip (manifest, UI modules, scene package, wheel) that `semcoat addon build` writes.

Blender installs the wheels an extension lists (``wheels = ["./wheels/NAME-VER-py3-none-any.whl"]``) into the
extension's own site folder, so the core (``semcoat/``) is importable there as ``semcoat`` beside the add-on's
package (``bl_ext.<repo>.semcoat``). The wheel is built here with the standard library alone and is reproducible: the
same sources give the same bytes (sorted entries, fixed timestamps), so building twice changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import tomllib
import zipfile
from pathlib import Path

import semcoat

CORE_DISTRIBUTION = "semcoat_core"
CORE_PACKAGE_DIR = Path(semcoat.__file__).resolve().parent
MANIFEST_PATH = Path(__file__).resolve().parent / "blender_manifest.toml"
# The earliest date a zip entry can hold: fixed timestamps make the wheel's bytes depend on the sources alone.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def core_wheel_name(version: str = semcoat.__version__) -> str:
    """File name of the core wheel: ``semcoat_core-<version>-py3-none-any.whl``."""
    return f"{CORE_DISTRIBUTION}-{version}-py3-none-any.whl"


def manifest_wheels(manifest_path: Path = MANIFEST_PATH) -> list[str]:
    """The ``wheels`` the extension manifest lists (paths relative to the extension root)."""
    with manifest_path.open("rb") as handle:
        return list(tomllib.load(handle).get("wheels", []))


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _core_sources() -> list[tuple[str, bytes]]:
    """(archive name, bytes) of every module of the core package, sorted; caches and compiled files left out."""
    return [(f"semcoat/{p.relative_to(CORE_PACKAGE_DIR).as_posix()}", p.read_bytes())
            for p in sorted(CORE_PACKAGE_DIR.rglob("*.py")) if "__pycache__" not in p.parts]


def build_core_wheel(out_dir: str | Path) -> Path:
    """Write the core wheel into ``out_dir`` (created if needed) and return its path.

    The wheel holds the ``semcoat`` package only (standard library, no dependencies) with the metadata pip and
    Blender need (METADATA, WHEEL, RECORD with a sha256 per file).
    """
    version = semcoat.__version__
    dist_info = f"{CORE_DISTRIBUTION}-{version}.dist-info"
    metadata = (f"Metadata-Version: 2.1\nName: {CORE_DISTRIBUTION}\nVersion: {version}\n"
                "Summary: semcoat's shared core (specs, class and measurement tables, dataset contract), "
                "standard library only\nRequires-Python: >=3.11\n").encode()
    wheel = b"Wheel-Version: 1.0\nGenerator: semcoat extension_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entries = [*_core_sources(), (f"{dist_info}/METADATA", metadata), (f"{dist_info}/WHEEL", wheel)]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / core_wheel_name(version)
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    partial.replace(path)  # never a half-written wheel under the final name
    return path


# --- the extension zip -------------------------------------------------------------------------------------------
ADDON_DIR = Path(__file__).resolve().parent
# What of blender_addon/ stays out of the zip: the render node (SciPy, OpenCV), this build script and the `semcoat
# addon` command (Typer), none of which Blender's Python has.
EXCLUDED_FROM_ZIP = ("render_node", "extension_build.py", "commands.py")


def extension_sources() -> list[tuple[str, bytes]]:
    """(archive name, bytes) of every file the extension zip holds but the wheel: the manifest, the UI modules and
    the scene package, sorted; caches left out."""
    out = [("blender_manifest.toml", MANIFEST_PATH.read_bytes())]
    for path in sorted(ADDON_DIR.rglob("*.py")):
        rel = path.relative_to(ADDON_DIR)
        if "__pycache__" in rel.parts or rel.parts[0] in EXCLUDED_FROM_ZIP:
            continue
        out.append((rel.as_posix(), path.read_bytes()))
    return out


def extension_zip_name(version: str = semcoat.__version__) -> str:
    """File name of the extension zip: ``semcoat-<version>.zip``."""
    return f"semcoat-{version}.zip"


def build_extension(out_dir: str | Path) -> Path:
    """Write the extension zip into ``out_dir`` (created if needed) and return its path.

    The zip holds, at its root, ``blender_manifest.toml``, the add-on's UI modules, the ``scene`` package and
    ``wheels/<core wheel>`` (the manifest lists it); it is reproducible like the wheel (sorted entries, fixed
    timestamps) and written under a temporary name first.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wheels = manifest_wheels()
    with tempfile.TemporaryDirectory() as scratch:
        wheel = build_core_wheel(scratch)
        entries = [*extension_sources(), (f"wheels/{wheel.name}", wheel.read_bytes())]
    if [f"./{name}" for name, _ in entries if name.startswith("wheels/")] != wheels:
        raise RuntimeError(f"the manifest lists {wheels} but the build makes {wheel.name}; update "
                           f"{MANIFEST_PATH.name}")
    path = out / extension_zip_name()
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    partial.replace(path)
    return path
