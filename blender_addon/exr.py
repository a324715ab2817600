"""Read the uncompressed OpenEXR files the preview render writes, with numpy alone.

Blender's Python has no image library that reads render passes (the render node uses the OpenImageIO bundled with
the bpy module, which an installed Blender does not offer to add-ons in every version). The preview writes a
multilayer EXR without compression (``exr_codec = 'NONE'``, 32-bit float): single- or multi-part scanline files, one
line per chunk, whose layout the OpenEXR file-format document fixes. Anything else is refused with a clear error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semcoat.errors import SemcoatError

MAGIC = 20000630
_MULTIPART = 0x1000
_PIXEL_TYPES: dict[int, np.dtype[Any]] = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}


class ExrError(SemcoatError):
    """The file is not an EXR this reader handles (the message says what it found)."""


@dataclass
class _Part:
    channels: list[tuple[str, np.dtype[Any]]]
    x_min: int
    y_min: int
    width: int
    height: int
    compression: int
    kind: str
    chunks: int


def _read_header(data: bytes, pos: int) -> tuple[dict[str, tuple[str, bytes]], int]:
    attrs: dict[str, tuple[str, bytes]] = {}
    while True:
        end = data.index(b"\0", pos)
        name = data[pos:end].decode()
        pos = end + 1
        if not name:
            return attrs, pos
        end = data.index(b"\0", pos)
        kind = data[pos:end].decode()
        pos = end + 1
        (size,) = struct.unpack_from("<i", data, pos)
        pos += 4
        attrs[name] = (kind, data[pos:pos + size])
        pos += size


def _part(attrs: dict[str, tuple[str, bytes]]) -> _Part:
    channels: list[tuple[str, np.dtype[Any]]] = []
    raw = attrs["channels"][1]
    pos = 0
    while raw[pos:pos + 1] != b"\0":
        end = raw.index(b"\0", pos)
        name = raw[pos:end].decode()
        (pixel_type,) = struct.unpack_from("<i", raw, end + 1)
        if pixel_type not in _PIXEL_TYPES:
            raise ExrError(f"channel {name!r} has pixel type {pixel_type}, not one of uint, half, float")
        channels.append((name, _PIXEL_TYPES[pixel_type]))
        pos = end + 1 + 16
    x_min, y_min, x_max, y_max = struct.unpack("<4i", attrs["dataWindow"][1])
    compression = attrs["compression"][1][0]
    kind = attrs["type"][1].decode().rstrip("\0") if "type" in attrs else "scanlineimage"
    height = y_max - y_min + 1
    chunks = struct.unpack("<i", attrs["chunkCount"][1])[0] if "chunkCount" in attrs else height
    return _Part(channels, x_min, y_min, x_max - x_min + 1, height, compression, kind, chunks)


def read_channels(path: str | Path) -> dict[str, np.ndarray]:
    """Every channel of an uncompressed scanline EXR as float32 arrays of shape (height, width), top row first.

    Raises
    ------
    ExrError
        when the file is not an EXR, is compressed, tiled or deep, or is cut short.
    """
    data = Path(path).read_bytes()
    if len(data) < 8 or struct.unpack_from("<i", data, 0)[0] != MAGIC:
        raise ExrError(f"{path} is not an OpenEXR file")
    flags = struct.unpack_from("<i", data, 4)[0]
    pos = 8
    parts: list[_Part] = []
    try:
        if flags & _MULTIPART:
            while data[pos:pos + 1] != b"\0":
                attrs, pos = _read_header(data, pos)
                parts.append(_part(attrs))
            pos += 1
        else:
            attrs, pos = _read_header(data, pos)
            parts.append(_part(attrs))
        for part in parts:
            if part.compression != 0 or part.kind != "scanlineimage":
                raise ExrError(f"{path} holds a {part.kind} part with compression {part.compression}; the preview "
                               "reads uncompressed scanline images only")
        tables = []
        for part in parts:
            tables.append(struct.unpack_from(f"<{part.chunks}Q", data, pos))
            pos += 8 * part.chunks
        out: dict[str, np.ndarray] = {}
        for index, (part, offsets) in enumerate(zip(parts, tables, strict=True)):
            arrays = {name: np.empty((part.height, part.width), np.float32) for name, _ in part.channels}
            for offset in offsets:
                at = offset + (4 if flags & _MULTIPART else 0)
                if flags & _MULTIPART and struct.unpack_from("<i", data, offset)[0] != index:
                    raise ExrError(f"{path}: a chunk of part {index} names another part")
                y, size = struct.unpack_from("<2i", data, at)
                at += 8
                row = y - part.y_min
                for name, dtype in part.channels:
                    n = part.width * dtype.itemsize
                    arrays[name][row] = np.frombuffer(data, dtype, part.width, at).astype(np.float32)
                    at += n
            out.update(arrays)
    except (struct.error, ValueError, KeyError, IndexError) as exc:
        raise ExrError(f"{path} is damaged or of a kind this reader does not handle ({exc})") from exc
    return out


def find_channel(channels: dict[str, np.ndarray], *suffixes: str) -> np.ndarray:
    """The channel whose name ends with one of ``suffixes`` (e.g. ``"Object Index.X"``); ExrError when none does."""
    for name, array in channels.items():
        if name.endswith(suffixes):
            return array
    raise ExrError(f"no channel ending in {' or '.join(suffixes)}; the file holds {', '.join(sorted(channels))}")
