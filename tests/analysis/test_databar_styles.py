"""Data bars in the styles of real instruments, drawn under scanned-looking micrographs, and micrographs without one.

Each style is drawn with OpenCV the way its instrument lays the bar out: Thermo/FEI xT (black, a thin rule, cells
between grey separators, a logo box), Zeiss SmartSEM (black, no rule, text from the bar's first rows), JEOL (black,
one line of text and a scale bar with end ticks), Hitachi (black, a dotted scale bar), a mid-grey bar with a black
rule, a light grey bar with black text (no rule) over a bright substrate, a bar split into a black and a grey panel,
and a white bar over a 16-bit micrograph that uses 12 bits.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from analysis.databar_crop import crop_databar, find_databar_top

FONT = cv2.FONT_HERSHEY_SIMPLEX


def scanned(rng: np.random.Generator, rows: int, columns: int, substrate: float = 225.0, noise: float = 12.0,
            top: float = 255.0) -> np.ndarray:
    """A noisy micrograph (float, 0..``top``): dark resin, a grey coating with pores and a bright substrate that
    reaches the bottom row, wavy interfaces; shot noise, clipped at 0 and ``top``."""
    r = np.arange(rows)[:, None]
    c = np.arange(columns)[None, :]
    surface = 0.15 * rows + 6 * np.sin(c / 41.0 + rng.uniform(0, 6))
    interface = 0.45 * rows + 5 * np.sin(c / 29.0 + rng.uniform(0, 6))
    scale = top / 255.0
    image = np.where(r < surface, 25.0, np.where(r < interface, 150.0, substrate)).astype(np.float32) * scale
    for _ in range(columns // 20):
        centre = (int(rng.uniform(0, columns)), int(rng.uniform(0.2 * rows, 0.4 * rows)))
        cv2.circle(image, centre, int(rng.uniform(2, 6)), (15.0 * scale,), -1)
    image += rng.normal(0.0, noise * scale, image.shape).astype(np.float32)
    return np.clip(image, 0.0, top)


def _text(bar: np.ndarray, words: str, x: int, baseline: int, height_px: int, value: float) -> None:
    scale = max(0.25, height_px / 22.0)
    cv2.putText(bar, words, (x, baseline), FONT, scale, (float(value),), max(1, round(scale * 1.5)), cv2.LINE_AA)


def thermo_xt(bar: np.ndarray, top: float) -> None:
    """Black, a 1-px white rule, cells between grey separators, two lines of text, a scale bar, a logo box."""
    rows, columns = bar.shape
    bar[:] = 0
    bar[0] = top
    for x in np.linspace(0, columns, 6)[1:-1].astype(int):
        bar[1:, x] = 0.5 * top
    line = rows // 3
    for k, words in enumerate(("HV 15.00 kV  mag 2 500 x", "WD 10.1 mm  det BSED  HFW 50.8 um")):
        _text(bar, words, 6, line * (k + 1) + line // 2, line, top)
    x0, x1 = int(0.62 * columns), int(0.78 * columns)
    bar[rows // 2 : rows // 2 + 2, x0:x1] = top
    bar[rows // 2 - 3 : rows // 2 + 5, x0 : x0 + 2] = top
    bar[rows // 2 - 3 : rows // 2 + 5, x1 - 2 : x1] = top
    logo = slice(int(0.84 * columns), int(0.97 * columns))
    bar[rows // 5 : rows - rows // 5, logo] = top
    _text(bar, "FEI", logo.start + 4, rows - rows // 3, rows // 3, 0)


def zeiss(bar: np.ndarray, top: float) -> None:
    """Black, no rule, text touching the bar's first rows, a scale bar at the left, a logo at the right."""
    rows, columns = bar.shape
    bar[:] = 0
    line = rows // 2
    _text(bar, "EHT = 15.00 kV   WD = 8.5 mm   Signal A = QBSD", int(0.25 * columns), line - 1, line + 2, top)
    _text(bar, "Mag = 2.00 K X   Date : 3 Mar 2024", int(0.25 * columns), 2 * line - 2, line, top)
    bar[line : line + 3, 8 : int(0.18 * columns)] = top
    _text(bar, "10 um", 10, line - 2, line, top)
    _text(bar, "ZEISS", int(0.88 * columns), 2 * line - 3, line + 2, top)


def jeol(bar: np.ndarray, top: float) -> None:
    """Black, no rule, one line of text and a scale bar with end ticks."""
    rows, columns = bar.shape
    bar[:] = 0
    _text(bar, "COMPO  15kV  WD10mm  SS50  x1,000", 6, rows - rows // 4, rows // 2, top)
    x0, x1, y = int(0.7 * columns), int(0.82 * columns), rows // 2
    bar[y : y + 2, x0:x1] = top
    bar[y - rows // 4 : y + rows // 4, x0 : x0 + 2] = top
    bar[y - rows // 4 : y + rows // 4, x1 - 2 : x1] = top
    _text(bar, "10um", x1 + 6, rows - rows // 4, rows // 2, top)
    _text(bar, "JEOL", int(0.92 * columns), rows - rows // 4, rows // 2, top)


def hitachi(bar: np.ndarray, top: float) -> None:
    """Black, text and a scale bar of eleven ticks."""
    rows, columns = bar.shape
    bar[:] = 0
    _text(bar, "S-4800 15.0kV 10.0mm x2.00k BSE(C)", 6, rows - rows // 3, rows // 2, top)
    x0, step = int(0.72 * columns), max(3, columns // 200)
    for k in range(11):
        bar[rows // 3 : rows - rows // 3, x0 + k * step : x0 + k * step + 1] = top
    _text(bar, "20.0um", x0 + 11 * step + 6, rows - rows // 3, rows // 2, top)


def grey_with_rule(bar: np.ndarray, top: float) -> None:
    """Mid grey, a 2-px black rule, white text."""
    rows, _ = bar.shape
    bar[:] = 0.5 * top
    bar[:2] = 0
    _text(bar, "SEM HV: 20.0 kV   View field: 138 um   Det: BSE", 8, rows - rows // 3, rows // 2, top)


def light_grey(bar: np.ndarray, top: float) -> None:
    """Light grey (a level of the bright substrate above), black text, no rule."""
    rows, columns = bar.shape
    bar[:] = 0.9 * top
    _text(bar, "SEM HV: 20.0 kV  WD: 15.00 mm  SEM MAG: 1.50 kx", 8, rows - rows // 3, rows // 2, 0)
    bar[rows // 2 : rows // 2 + 2, int(0.8 * columns) : int(0.95 * columns)] = 0


def two_panels(bar: np.ndarray, top: float) -> None:
    """A black panel with text and a dark grey panel with a white scale bar at the right."""
    rows, columns = bar.shape
    split = int(0.7 * columns)
    bar[:, :split] = 0
    bar[:, split:] = 0.25 * top
    _text(bar, "Acc.V 15.0kV  Spot 4.0  Magn 1000x  Det BSE", 6, rows - rows // 3, rows // 2, top)
    bar[rows // 2 : rows // 2 + 3, split + 10 : columns - 10] = top


Style = Callable[[np.ndarray, float], None]


def with_bar(image: np.ndarray, bar_rows: int, style: Style, top: float) -> np.ndarray:
    out = image.copy()
    style(out[-bar_rows:], top)
    return out


# (style, width, height, bar share of the height): widths 512-4096, bars 4-15 % of the height.
STYLES = [
    (thermo_xt, 1024, 884, 0.07),
    (thermo_xt, 4096, 3536, 0.04),
    (zeiss, 1024, 768, 0.10),
    (zeiss, 2048, 1536, 0.15),
    (jeol, 1280, 960, 0.06),
    (jeol, 512, 384, 0.08),
    (hitachi, 1280, 1000, 0.04),
    (hitachi, 640, 480, 0.10),
    (grey_with_rule, 1024, 768, 0.09),
    (light_grey, 768, 576, 0.12),
    (two_panels, 1536, 1103, 0.05),
]


@pytest.mark.parametrize(("style", "width", "height", "share"), STYLES)
def test_instrument_bars_are_found_exactly(style: Style, width: int, height: int, share: float) -> None:
    rng = np.random.default_rng(width + height)
    bar_rows = round(share * height)
    image = with_bar(scanned(rng, height, width), bar_rows, style, 255.0).round().astype(np.uint8)
    assert find_databar_top(image) == height - bar_rows
    assert find_databar_top(image.astype(np.uint16) * 257) == height - bar_rows  # the same file, 16 bit


@pytest.mark.parametrize("style", [thermo_xt, zeiss, jeol, light_grey])
def test_noisy_saturated_substrate_above_the_bar(style: Style) -> None:
    """A bright substrate whose noise clips at white over a third of its pixels, straight above the bar."""
    rng = np.random.default_rng(7)
    image = with_bar(scanned(rng, 600, 800, substrate=250.0, noise=15.0), 60, style, 255.0)
    assert find_databar_top(image.round().astype(np.uint8)) == 540


def test_sixteen_bit_micrograph_using_twelve_bits_under_a_white_bar() -> None:
    """A 16-bit file whose micrograph spans 0-4095 and whose bar is drawn at full scale (white, black text)."""
    rng = np.random.default_rng(3)
    image = scanned(rng, 768, 1024, top=4095.0)
    image[-70:] = 65535.0
    _text(image[-70:], "HV 5 kV  WD 4.9 mm  Mag 5000x", 10, 45, 30, 0.0)
    assert find_databar_top(image.round().astype(np.uint16)) == 698


@pytest.mark.parametrize(("scale", "interpolation"), [(0.5, cv2.INTER_AREA), (0.75, cv2.INTER_LINEAR),
                                                      (0.5, cv2.INTER_CUBIC), (0.3, cv2.INTER_AREA)])
def test_resized_micrograph(scale: float, interpolation: int) -> None:
    """A micrograph shrunk after saving (for a report): the bar's flat background survives the interpolation; its
    top is found in the row that mixes micrograph and bar, or the one under it."""
    image = with_bar(scanned(np.random.default_rng(1), 1536, 2048), 150, thermo_xt, 255.0).round().astype(np.uint8)
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)
    top = find_databar_top(small)
    assert top is not None and np.floor(1386 * scale) <= top <= np.ceil(1386 * scale) + 1


def test_float_image() -> None:
    image = with_bar(scanned(np.random.default_rng(5), 480, 640), 40, jeol, 255.0) / 255.0
    assert find_databar_top(image.astype(np.float32)) == 440


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scanned_micrograph_without_bar(seed: int) -> None:
    image = scanned(np.random.default_rng(seed), 768, 1024).round().astype(np.uint8)
    assert find_databar_top(image) is None
    assert crop_databar(image)[1] is None


def test_saturated_substrate_with_pores_under_a_wavy_interface_is_not_a_bar() -> None:
    """White (clipped) substrate with dark pores at the bottom: flat rows and 'text', but no straight top edge."""
    rng = np.random.default_rng(4)
    image = scanned(rng, 600, 800, substrate=300.0, noise=8.0)  # clipped at 255 below the interface
    r, c = np.arange(600)[:, None], np.arange(800)[None, :]
    for _ in range(40):
        y, x = rng.uniform(320, 590), rng.uniform(0, 800)
        image[(r - y) ** 2 + (c - x) ** 2 < 16] = 30.0
    assert find_databar_top(image.round().astype(np.uint8)) is None


def test_dark_resin_band_at_the_bottom_is_not_a_bar() -> None:
    """A micrograph upside down: black (clipped) resin with bright filler particles along the bottom."""
    rng = np.random.default_rng(6)
    image = scanned(rng, 600, 800, noise=10.0)[::-1].copy()
    image[image < 40] = 0.0  # the resin clipped at black
    r, c = np.arange(600)[:, None], np.arange(800)[None, :]
    for _ in range(30):
        y, x = rng.uniform(520, 595), rng.uniform(0, 800)
        image[(r - y) ** 2 + (c - x) ** 2 < 9] = 240.0
    assert find_databar_top(image.round().astype(np.uint8)) is None


def test_text_written_over_the_micrograph_is_not_a_bar() -> None:
    """Labels drawn straight onto the micrograph (no bar under them): no row to crop at."""
    image = scanned(np.random.default_rng(8), 600, 800)
    _text(image, "15kV x2,000 10um", 20, 580, 20, 255.0)
    assert find_databar_top(image.round().astype(np.uint8)) is None


def test_bar_taller_than_half_the_image_is_not_a_bar() -> None:
    image = with_bar(scanned(np.random.default_rng(9), 400, 600), 210, jeol, 255.0).round().astype(np.uint8)
    assert find_databar_top(image) is None
