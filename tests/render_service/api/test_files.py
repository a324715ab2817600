"""A batch's files: listing with sizes, one file, paths that leave the folder refused (404, nothing read), and the
archive streamed as it is written, unzipping to a folder the dataset checker accepts."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from render_service.files import FileRefused, iter_zip, list_files, open_file, path_parts
from semcoat import pngio
from semcoat.dataset import MEASUREMENT_NAMES, DatasetInfo, DatasetWriter, check_dataset, sample_id
from semcoat.measurements import YES_NO_NAMES
from tests.render_service.api.conftest import Api

W, H = 32, 24
TRUTH: dict[str, object] = {name: False if name in YES_NO_NAMES else 0.0 for name in MEASUREMENT_NAMES}


def write_dataset(root: Path, count: int = 3, width: int = W, height: int = H) -> None:
    """A small valid dataset folder written through the core's writer."""
    info = DatasetInfo(name="t", pixel_size_um=0.5, image_width_px=width, image_height_px=height, count=count,
                       seed=1, spec={"name": "t"}, generator_version="test")
    writer = DatasetWriter.open(root, info)
    mask = b"".join(bytes([v]) * width for v in [0] * (height // 4) + [1] * (height // 2) + [3] * (height // 4))
    for i in range(count):
        image = bytes((i * 31 + j * 7) % 256 for j in range(width * height))
        writer.write_sample(sample_id(i), pngio.encode_grey(width, height, 8, image),
                            pngio.encode_grey(width, height, 8, mask),
                            {"id": sample_id(i), "index": i, "params": {}, "truth": TRUTH})


@pytest.fixture()
def batch(api: Api) -> tuple[str, Path]:
    """A submitted batch whose dataset folder holds 3 samples, a symlink to /etc/passwd and a linked sub-folder."""
    response = api.client.post("/api/v1/batches", json={"spec": {"name": "t", "count": 3}}, headers=api.auth())
    batch_id = response.json()["id"]
    root = api.settings.batches_dir / batch_id
    write_dataset(root)
    os.symlink("/etc/passwd", root / "images" / "passwd.png")
    (api.settings.data_dir / "outside").mkdir()
    (api.settings.data_dir / "outside" / "secret.json").write_text('{"secret": 1}')
    os.symlink(api.settings.data_dir / "outside", root / "linked")
    return batch_id, root


def test_listing_shows_every_regular_file_with_its_size_and_no_link(api: Api, batch: tuple[str, Path]) -> None:
    batch_id, root = batch
    (root / "images" / ".000009.png.tmp-abc").write_bytes(b"half")  # a write in progress is not shown
    listing = api.client.get(f"/api/v1/batches/{batch_id}/files", headers=api.auth()).json()
    paths = [f["path"] for f in listing]
    assert paths == sorted(paths) and "dataset.json" in paths and len(paths) == 1 + 3 * 3
    assert all("passwd" not in p and "linked" not in p and ".tmp-" not in p for p in paths)
    sizes = {f["path"]: f["size_bytes"] for f in listing}
    assert sizes["images/000001.png"] == (root / "images" / "000001.png").stat().st_size


def test_one_file_is_served_whole(api: Api, batch: tuple[str, Path]) -> None:
    batch_id, root = batch
    response = api.client.get(f"/api/v1/batches/{batch_id}/files/masks/000002.png", headers=api.auth())
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == (root / "masks" / "000002.png").read_bytes()


@pytest.mark.parametrize("path", [
    "../../../etc/passwd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "images/%2e%2e/%2e%2e/token", "%2fetc%2fpasswd",
    "images/passwd.png", "linked/secret.json", "linked", "images", "images//000000.png", "%2e/dataset.json",
    "images/000000.png%00", "nothing.json",
])
def test_paths_that_leave_the_folder_or_name_no_file_are_404(api: Api, batch: tuple[str, Path], path: str) -> None:
    batch_id, _ = batch
    response = api.client.get(f"/api/v1/batches/{batch_id}/files/{path}", headers=api.auth())
    assert response.status_code == 404, path
    assert "root:x:" not in response.text and '"secret": 1' not in response.text


def test_the_checks_hold_below_http(tmp_path: Path) -> None:
    write_dataset(tmp_path / "ds", count=1)
    os.symlink("/etc/passwd", tmp_path / "ds" / "meta" / "link.json")
    os.symlink(tmp_path / "ds" / "images", tmp_path / "ds" / "alias")
    for bad in ("..", "/etc/passwd", "a\\b", "", "meta/link.json", "alias/000000.png", "x/../dataset.json"):
        with pytest.raises(FileRefused):
            open_file(tmp_path / "ds", bad)
    with pytest.raises(FileRefused):
        open_file(tmp_path / "missing", "dataset.json")
    assert path_parts("images/000000.png") == ["images", "000000.png"]
    handle, size = open_file(tmp_path / "ds", "images/000000.png")
    with handle:
        assert len(handle.read()) == size > 0
    assert list_files(tmp_path / "missing") == []


def test_the_archive_unzips_to_a_folder_the_dataset_checker_accepts(api: Api, batch: tuple[str, Path],
                                                                    tmp_path: Path) -> None:
    batch_id, _ = batch
    with api.client.stream("GET", f"/api/v1/batches/{batch_id}/archive", headers=api.auth()) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        data = b"".join(response.iter_bytes())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert all(n.startswith(f"{batch_id}/") for n in names)
        assert not any("passwd" in n or "secret" in n or "linked" in n for n in names)
        archive.extractall(tmp_path / "out")
    report = check_dataset(tmp_path / "out" / batch_id)
    assert report.ok and report.complete == 3, report.problems


def test_the_archive_is_produced_in_chunks_while_it_is_written(tmp_path: Path) -> None:
    write_dataset(tmp_path / "ds", count=2, width=512, height=512)
    (tmp_path / "ds" / "images" / "000000.png").write_bytes(os.urandom(3_000_000))  # big, incompressible
    chunks = list(iter_zip(tmp_path / "ds", "ds", chunk_bytes=64 * 1024))
    assert len(chunks) > 40 and max(len(c) for c in chunks) < 200_000  # never the whole 3 MB in one piece
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert archive.read("ds/images/000000.png") == (tmp_path / "ds" / "images" / "000000.png").read_bytes()
