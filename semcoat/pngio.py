"""Minimal PNG codec on the standard library (zlib), for masks and images of the dataset contract and the overlays of
a prediction folder.

Writes 8- or 16-bit greyscale and 8-bit RGB, non-interlaced, filter type 0 (masks compress well without filters and
decode fast).
Reads any non-interlaced 8/16-bit greyscale PNG, whatever its row filters, which is what the dataset checker needs.
Sixteen-bit samples are big-endian, as PNG stores them.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from semcoat.errors import SemcoatError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The largest image this reader decodes: twice the side of the largest common SEM frame; anything bigger is refused
# from its header before a byte is decompressed.
MAX_PIXELS = 8192 * 8192
_COLOR_GREY = 0
_COLOR_RGB = 2


class PngError(SemcoatError):
    """A file is not a PNG this codec reads (with the reason)."""


@dataclass(frozen=True)
class PngHeader:
    """The IHDR facts of a PNG."""

    width: int
    height: int
    bit_depth: int
    color_type: int
    interlace: int

    @property
    def is_grey(self) -> bool:
        """True for single-channel greyscale without alpha."""
        return self.color_type == _COLOR_GREY


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _encode(width: int, height: int, bit_depth: int, color_type: int, channels: int, pixels: bytes,
            compress_level: int) -> bytes:
    """PNG bytes of row-major samples, every row with filter type 0."""
    stride = width * channels * bit_depth // 8
    if len(pixels) != stride * height:
        raise PngError(f"pixel buffer holds {len(pixels)} bytes, expected {stride * height} for {width}x{height} "
                       f"at {bit_depth} bit x {channels} channel(s)")
    raw = b"".join(b"\x00" + pixels[r * stride:(r + 1) * stride] for r in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(raw, compress_level)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encode_grey(width: int, height: int, bit_depth: int, pixels: bytes, compress_level: int = 6) -> bytes:
    """Encode row-major greyscale ``pixels`` (``height * width`` samples; 16-bit big-endian) as PNG bytes."""
    if bit_depth not in (8, 16):
        raise PngError(f"bit depth {bit_depth} is not supported; accepted: 8, 16")
    return _encode(width, height, bit_depth, _COLOR_GREY, 1, pixels, compress_level)


def encode_rgb(width: int, height: int, pixels: bytes, compress_level: int = 6) -> bytes:
    """Encode row-major 8-bit RGB ``pixels`` (``height * width * 3`` bytes, R, G, B per pixel) as PNG bytes."""
    return _encode(width, height, 8, _COLOR_RGB, 3, pixels, compress_level)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(PNG_SIGNATURE):
        raise PngError("not a PNG file (bad signature)")
    pos, out = len(PNG_SIGNATURE), []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise PngError(f"truncated PNG: chunk {kind!r} is cut short")
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise PngError(f"damaged PNG: chunk {kind!r} at byte {pos} fails its CRC check")
        out.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            return out
    raise PngError("truncated PNG: no IEND chunk")


def read_header(data: bytes) -> PngHeader:
    """Parse the IHDR of PNG bytes (only the first bytes are needed)."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        raise PngError("not a PNG file (bad signature or no IHDR)")
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return PngHeader(w, h, depth, color, interlace)


def _filtered_rows(data: bytes) -> tuple[PngHeader, bytes]:
    """Header and decompressed (still filtered) image data of a greyscale 8/16-bit PNG, every check done: chunk
    CRCs, a size within MAX_PIXELS (checked before decompressing: a small file can claim gigabytes), a complete
    zlib stream of exactly the size the header gives, and valid row filters."""
    chunks = _chunks(data)
    header = read_header(data)
    if not header.is_grey or header.bit_depth not in (8, 16):
        raise PngError(
            f"expected 8- or 16-bit greyscale, got colour type {header.color_type} at {header.bit_depth} bit")
    if header.interlace:
        raise PngError("interlaced PNGs are not supported")
    if not 0 < header.width * header.height <= MAX_PIXELS:
        raise PngError(f"a {header.width}x{header.height} image is outside what this reader takes (1 to "
                       f"{MAX_PIXELS} pixels)")
    stride = header.width * header.bit_depth // 8
    expected = (stride + 1) * header.height
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"), expected + 1)
    except zlib.error as exc:
        raise PngError(f"corrupt image data: {exc}") from exc
    if len(raw) != expected or not inflater.eof:
        raise PngError(f"image data holds {'more than ' if len(raw) > expected else ''}{len(raw)} bytes"
                       f"{'' if inflater.eof or len(raw) > expected else ' (cut short)'}, expected {expected}")
    if max(raw[::stride + 1]) > 4:
        raise PngError(f"unknown PNG row filter {max(raw[::stride + 1])}")
    return header, raw


def verify(data: bytes) -> PngHeader:
    """Check greyscale PNG bytes completely without unfiltering the pixels (fast: zlib and CRC in C).

    A truncated file or any flipped byte is found: every chunk's CRC, the zlib stream's own checksum and its exact
    length are checked. Raises PngError naming what is wrong.
    """
    return _filtered_rows(data)[0]


def decode_grey(data: bytes) -> tuple[PngHeader, bytes]:
    """Decode a greyscale 8/16-bit PNG to (header, row-major pixel bytes); PngError for anything else."""
    header, raw = _filtered_rows(data)
    bpp = header.bit_depth // 8
    stride = header.width * bpp
    rows: list[bytes] = []
    prev = bytes(stride)
    for r in range(header.height):
        start = r * (stride + 1)
        filt, line = raw[start], raw[start + 1:start + 1 + stride]
        cur = line if filt == 0 else _unfilter(filt, bytearray(line), prev, bpp)
        rows.append(cur)
        prev = cur
    return header, b"".join(rows)


def _unfilter(filt: int, line: bytearray, prev: bytes, bpp: int) -> bytes:
    n = len(line)
    if filt == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif filt == 2:
        for i in range(n):
            line[i] = (line[i] + prev[i]) & 0xFF
    elif filt == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif filt == 4:
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + pred) & 0xFF
    else:
        raise PngError(f"unknown PNG row filter {filt}")
    return bytes(line)
