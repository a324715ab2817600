"""The HTML report of a set of measurements: summary, parity plots against truth, histograms, per-image views.

The report is one self-contained ``report.html`` (figures embedded as PNG data) next to a ``figures/`` folder that
holds the same PNGs for reuse in papers and slides. Gathering the data is :mod:`analysis.report_data`, the page
:mod:`analysis.report_html`; this module writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from analysis import files
from analysis.report_data import gather, results_csv_path, truth_match
from analysis.report_html import render_html


def write_report(
    results: str | Path,
    out_dir: str | Path,
    truth: str | Path | None = None,
    title: str = "Coating measurements",
    max_images: int = 24,
    truth_pixel_size_um: float | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Path:
    """Write ``OUT/report.html`` and ``OUT/figures/*.png``; return the page's path.

    Parameters
    ----------
    results : str or Path
        A measurements CSV, or a ``semcoat predict`` output folder (its overlays, masks and pixel sizes are used).
    out_dir : str or Path
        Folder for the report (created). Checked before any work; ``report.html`` is written last, in one piece.
    truth : str or Path, optional
        Ground truth, see :func:`read_truth`.
    title : str
        Page title.
    max_images : int
        How many images get their own overlay, profile and table.
    truth_pixel_size_um : float, optional
        µm per pixel for a truth folder of masks (overrides the pixel sizes of ``predictions.json``).
    on_warning : callable, optional
        Called with a message when not every result matched a truth (how many did, and why the others did not).

    Raises
    ------
    files.OutputPathError
        When ``out_dir`` cannot be created or written, or would be written over the results or the truth (see
        :func:`files.check_output_apart`).
    """
    out = Path(out_dir)
    files.check_output_dir(out)
    results_csv_path(Path(results))  # a missing table is said before where the report goes
    files.check_output_apart(out, [Path(results)] + ([Path(truth)] if truth is not None else []), output_is_folder=True)
    data = gather(results, truth, truth_pixel_size_um)
    if data.truth is not None and on_warning is not None:
        matched, reasons = truth_match(data)
        if matched < len(data.results):
            on_warning(
                f"{matched} of {len(data.results)} results matched a truth in {data.truth_source}"
                + "".join(f"; {r}" for r in reasons)
            )
    page, figures = render_html(data, title, max_images)
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        for name, png in figures.items():
            (out / "figures" / name).write_bytes(png)
        path = out / "report.html"
        files.write_text_atomic(path, page)
    except OSError as exc:
        raise files.OutputPathError(f"{out}: cannot write the report ({exc.strerror or exc})") from exc
    return path
