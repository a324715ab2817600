"""Read the uncompressed OpenEXR files the renders write (render node and preview), with numpy alone.

Blender's Python has no image library that reads render passes (the OpenImageIO bundled with the bpy module is not
offered to add-ons by every installed Blender). The renders write EXRs without compression (``exr_codec = 'NONE'``,
half or full floats): single- or multi-part scanline files, one line per chunk, whose layout the OpenEXR file-format
document fixes. Anything else is refused with a clear error.
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


def _lines(raw: np.ndarray, starts: np.ndarray, line_bytes: int) -> np.ndarray:
    """(lines, line_bytes) uint8: the lines that begin at ``starts``, in that order. A view when they follow each other
    at one spacing (as writers lay out increasing lines), else a copy."""
    if len(starts) > 1:
        step = int(starts[1] - starts[0])
        if step >= line_bytes and np.array_equal(starts, starts[0] + step * np.arange(len(starts))):
            return np.lib.stride_tricks.as_strided(raw[int(starts[0]):], (len(starts), line_bytes), (step, 1),
                                                   writeable=False)
    return np.stack([raw[a:a + line_bytes] for a in starts.tolist()]) if len(starts) else np.zeros((0, line_bytes),
                                                                                                   np.uint8)


def read_channels(path: str | Path, wanted: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every channel of an uncompressed scanline EXR as float32 arrays of shape (height, width), top row first; with
    ``wanted``, only the channels whose names end with one of those suffixes.

    Uncompressed scanlines are chunks of one line each, of a fixed size, so all lines are gathered in one numpy step.

    Raises
    ------
    ExrError
        when the file is not an EXR, is compressed, tiled or deep, or is cut short.
    """
    data = Path(path).read_bytes()
    if len(data) < 8 or struct.unpack_from("<i", data, 0)[0] != MAGIC:
        raise ExrError(f"{path} is not an OpenEXR file")
    flags = struct.unpack_from("<i", data, 4)[0]
    multipart = bool(flags & _MULTIPART)
    pos = 8
    parts: list[_Part] = []
    try:
        if multipart:
            while data[pos:pos + 1] != b"\0":
                attrs, pos = _read_header(data, pos)
                parts.append(_part(attrs))
            pos += 1
        else:
            attrs, pos = _read_header(data, pos)
            parts.append(_part(attrs))
        for part in parts:
            if part.compression != 0 or part.kind != "scanlineimage":
                raise ExrError(f"{path} holds a {part.kind} part with compression {part.compression}; this reader "
                               "reads uncompressed scanline images only")
        tables = []
        for part in parts:
            tables.append(np.frombuffer(data, "<u8", part.chunks, pos).astype(np.int64))
            pos += 8 * part.chunks
        raw = np.frombuffer(data, np.uint8)
        out: dict[str, np.ndarray] = {}
        for index, (part, offsets) in enumerate(zip(parts, tables, strict=True)):
            head = 4 if multipart else 0  # a multi-part chunk starts with its part number
            line_bytes = sum(part.width * dtype.itemsize for _, dtype in part.channels)
            if len(offsets) != part.height or len(offsets) and (
                    offsets.min() < 0 or offsets.max() + head + 8 + line_bytes > len(data)):
                raise ExrError(f"{path}: part {index} has a chunk table that does not fit its {part.height} lines")
            fields = raw[offsets[:, None] + np.arange(head + 8)].copy().view("<i4")  # (lines, 2 or 3)
            if multipart and np.any(fields[:, 0] != index):
                raise ExrError(f"{path}: a chunk of part {index} names another part")
            y, size = fields[:, -2], fields[:, -1]
            if np.any(size != line_bytes):
                raise ExrError(f"{path}: part {index} has lines of {sorted(set(size.tolist()))[:3]} bytes, not the "
                               f"{line_bytes} of an uncompressed line")
            rows = y - part.y_min
            if np.any((rows < 0) | (rows >= part.height)) or len(np.unique(rows)) != part.height:
                raise ExrError(f"{path}: part {index} does not hold each of its lines once")
            lines = _lines(raw, (offsets + head + 8)[np.argsort(rows)], line_bytes)
            at = 0
            for name, dtype in part.channels:
                n = part.width * dtype.itemsize
                if not wanted or name.endswith(wanted):
                    block = np.ascontiguousarray(lines[:, at:at + n])
                    out[name] = block.view(dtype).reshape(part.height, part.width).astype(np.float32)
                at += n
    except (struct.error, ValueError, KeyError, IndexError) as exc:
        raise ExrError(f"{path} is damaged or of a kind this reader does not handle ({exc})") from exc
    return out


def find_channel(channels: dict[str, np.ndarray], *suffixes: str) -> np.ndarray:
    """The channel whose name ends with one of ``suffixes`` (e.g. ``"Object Index.X"``); ExrError when none does."""
    for name, array in channels.items():
        if name.endswith(suffixes):
            return array
    raise ExrError(f"no channel ending in {' or '.join(suffixes)}; the file holds {', '.join(sorted(channels))}")
