"""The HTML report of a set of measurements: summary, parity plots against truth, histograms, per-image views; or,
given several sets (one per model, on the same images), a report that compares the models.

The report is one self-contained ``report.html`` (figures embedded as PNG data) next to a ``figures/`` folder that
holds the same PNGs for reuse in papers and slides. Gathering the data is :mod:`analysis.report_data`, the page
:mod:`analysis.report_html` (one model) or :mod:`analysis.report_compare` (several); this module writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from analysis import files
from analysis.report_data import gather, gather_models, results_csv_path, truth_match
from analysis.report_html import render_html


def write_report(
    results: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    truth: str | Path | None = None,
    title: str = "Coating measurements",
    max_images: int = 24,
    truth_pixel_size_um: float | None = None,
    on_warning: Callable[[str], None] | None = None,
    labels: Sequence[str] | None = None,
) -> Path:
    """Write ``OUT/report.html`` and ``OUT/figures/*.png``; return the page's path.

    Parameters
    ----------
    results : str or Path, or a sequence of them
        A measurements CSV, or a ``semcoat predict`` output folder (its overlays, masks and pixel sizes are used).
        Several (one per model, on the same images): the page compares the models, each a column of the tables and
        a series of the plots.
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
    labels : sequence of str, optional
        The models' names when comparing several, in the order of ``results`` (default: each model's own, see
        :func:`analysis.report_data.default_label`).

    Raises
    ------
    files.OutputPathError
        When ``out_dir`` cannot be created or written, or would be written over the results or the truth (see
        :func:`files.check_output_apart`).
    """
    sources = [Path(results)] if isinstance(results, str | Path) else [Path(r) for r in results]
    if not sources:
        raise files.MissingInputError("no results given: name a measurements CSV or a `semcoat predict` folder")
    out = Path(out_dir)
    files.check_output_dir(out)
    for source in sources:
        results_csv_path(source)  # a missing table is said before where the report goes
    files.check_output_apart(out, sources + ([Path(truth)] if truth is not None else []), output_is_folder=True)
    if len(sources) == 1:
        models = [gather(sources[0], truth, truth_pixel_size_um)]
    else:
        models = gather_models(sources, truth, truth_pixel_size_um, labels)
    for data in models:
        if data.truth is not None and on_warning is not None:
            matched, reasons = truth_match(data)
            if matched < len(data.results):
                on_warning(
                    (f"{data.label}: " if len(models) > 1 else "")
                    + f"{matched} of {len(data.results)} results matched a truth in {data.truth_source}"
                    + "".join(f"; {r}" for r in reasons)
                )
    if len(models) == 1:
        page, figures = render_html(models[0], title, max_images)
    else:
        from analysis.report_compare import render_comparison_html

        page, figures = render_comparison_html(models, title, max_images)
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        for name, png in figures.items():
            (out / "figures" / name).write_bytes(png)
        path = out / "report.html"
        files.write_text_atomic(path, page)
    except OSError as exc:
        raise files.OutputPathError(f"{out}: cannot write the report ({exc.strerror or exc})") from exc
    return path
