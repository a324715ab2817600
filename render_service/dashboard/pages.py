"""The dashboard's HTML, as pure functions of the view dicts (:mod:`render_service.dashboard.views`).

Every value goes through :func:`esc` (``html.escape`` with quotes), attributes included; the pages hold no inline
script, style or event handler (the Content-Security-Policy forbids them), only ``data-*`` attributes the page's
script (``static/dashboard.js``) reads: ``data-text="field"`` elements get that field as text, ``data-key`` marks a
row or figure by id, ``<template>`` elements are the rows and figures the script adds as data arrives.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from render_service.dashboard.curves import Series, chart_svg
from render_service.dashboard.views import OVERLAY_PERCENT, TRUTH_COLUMNS

POLL_MS = 2000


def esc(value: Any) -> str:
    """``value`` as text safe inside an element or a quoted attribute."""
    return html.escape(str(value), quote=True)


def page(title: str, main: str, owner: str | None = None, source: str | None = None, kind: str = "signin") -> str:
    """A whole page: head (stylesheet, script, icon), a header with the signed-in user and a sign-out button, and
    ``main`` (ready HTML). ``source`` is the JSON the script polls every :data:`POLL_MS`; ``kind`` names the page."""
    user = ("<form class=\"signout\" method=\"post\" action=\"/ui/signout\">"
            f"<span class=\"owner\">{esc(owner)}</span> <button type=\"submit\">Sign out</button></form>"
            if owner else "")
    data = f' data-page="{esc(kind)}"' + (f' data-source="{esc(source)}" data-poll-ms="{POLL_MS}"' if source else "")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)} · semcoat</title>"
            "<link rel=\"icon\" href=\"/ui/static/favicon.svg\" type=\"image/svg+xml\">"
            "<link rel=\"stylesheet\" href=\"/ui/static/dashboard.css\">"
            "<script src=\"/ui/static/dashboard.js\" defer></script></head>"
            f"<body{data}><header><a class=\"brand\" href=\"/\">semcoat</a>"
            "<span class=\"subtitle\">render service</span>"
            f"{user}</header><main>{main}</main>"
            "<p class=\"status\" role=\"status\" id=\"status\"></p></body></html>\n")


def signin_page(message: str = "") -> str:
    """The sign-in form: one token field posted to ``/ui/signin`` (never put in a URL)."""
    problem = f"<p class=\"error\" role=\"alert\">{esc(message)}</p>" if message else ""
    main = ("<h1>Sign in</h1>"
            "<p>Paste your token (from <code>semcoat token create NAME</code>, or the <code>token</code> file in the "
            "data folder of <code>semcoat serve</code>). It is kept in a browser cookie this site's scripts cannot "
            "read, until you sign out or close the browser.</p>"
            f"{problem}<form class=\"signin\" method=\"post\" action=\"/ui/signin\">"
            "<label for=\"token\">Token</label> "
            "<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required "
            "placeholder=\"sct_…\" autofocus> <button type=\"submit\">Sign in</button></form>")
    return page("Sign in", main)


def message_page(title: str, message: str, owner: str | None) -> str:
    """A page saying one thing (a batch that is not the user's, a training API that is missing)."""
    return page(title, f"<p><a href=\"/\">← Overview</a></p><h1>{esc(title)}</h1><p>{esc(message)}</p>", owner)


def _progress(view: dict[str, Any]) -> str:
    # no value attribute: an indeterminate bar (a training under way whose limits are unknown)
    value = "" if view["done"] is None else f" value=\"{int(view['done'])}\""
    return (f"<progress data-progress max=\"{max(int(view['count']), 1)}\"{value}></progress> "
            f"<span class=\"progress-text\" data-text=\"progress\">{esc(view['progress'])}</span>")


def _state(view: dict[str, Any]) -> str:
    return f"<span class=\"state\" data-state data-value=\"{esc(view['state'])}\" data-text=\"state\">" \
           f"{esc(view['state'])}</span>"


def batch_row(view: dict[str, Any]) -> str:
    """One row of the overview's batch table (also the script's template, with empty values)."""
    return (f"<tr data-key=\"{esc(view['id'])}\">"
            f"<td><a data-href=\"url\" data-text=\"name\" href=\"{esc(view['url'])}\">{esc(view['name'])}</a>"
            f"<div class=\"id\" data-text=\"id\">{esc(view['id'])}</div></td>"
            f"<td>{_state(view)}</td><td class=\"progress\">{_progress(view)}</td>"
            f"<td data-text=\"backend\">{esc(view['backend'])}</td>"
            f"<td data-text=\"created\">{esc(view['created'])}</td>"
            f"<td class=\"error\" data-text=\"error\">{esc(view['error'])}</td></tr>")


_EMPTY_BATCH = {"id": "", "url": "/", "name": "", "state": "", "backend": "", "done": 0, "count": 1, "progress": "",
                "created": "", "error": ""}


def training_row(view: dict[str, Any]) -> str:
    """One row of the overview's training table (also the script's template, with empty values)."""
    return (f"<tr data-key=\"{esc(view['id'])}\">"
            f"<td><a data-href=\"url\" data-text=\"name\" href=\"{esc(view['url'])}\">{esc(view['name'])}</a>"
            f"<div class=\"id\" data-text=\"id\">{esc(view['id'])}</div></td>"
            f"<td>{_state(view)}</td><td class=\"progress\">{_progress(view)}"
            f"<div class=\"scores\" data-text=\"scores\">{esc(view['scores'])}</div></td>"
            f"<td data-text=\"summary\">{esc(view['summary'])}</td>"
            f"<td data-text=\"backend\">{esc(view['backend'])}</td>"
            f"<td data-text=\"created\">{esc(view['created'])}</td>"
            f"<td class=\"error\" data-text=\"error\">{esc(view['error'])}</td></tr>")


_EMPTY_TRAINING = {"id": "", "url": "/", "name": "", "state": "", "summary": "", "backend": "", "created": "",
                   "error": "", "done": 0, "count": 1, "progress": "", "scores": ""}


def _table(body_id: str, header: Iterable[str], rows: str, template_id: str, template_row: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return (f"<table class=\"list\"><thead><tr>{head}</tr></thead><tbody id=\"{body_id}\">{rows}</tbody></table>"
            f"<template id=\"{template_id}\">{template_row}</template>")


def overview_page(owner: str, batches: list[dict[str, Any]], trainings: list[dict[str, Any]] | None) -> str:
    """Batches (and trainings, where the service has them) with state and progress, newest first."""
    main = ["<h1>Batches</h1>",
            f"<p class=\"empty\" id=\"batches-empty\"{'' if not batches else ' hidden'}>No batches yet: submit one "
            "with <code>semcoat submit</code> or the Blender add-on's <em>Render on cluster</em>.</p>",
            _table("batch-rows", ("Batch", "State", "Images", "Backend", "Created", "Error"),
                   "".join(batch_row(b) for b in batches), "batch-row", batch_row(_EMPTY_BATCH))]
    if trainings is not None:
        main += ["<h1>Trainings</h1>",
                 f"<p class=\"empty\" id=\"trainings-empty\"{'' if not trainings else ' hidden'}>No trainings "
                 "yet.</p>",
                 _table("training-rows", ("Training", "State", "Progress", "Config, data, resources", "Backend",
                                          "Created", "Error"),
                        "".join(training_row(t) for t in trainings), "training-row",
                        training_row(_EMPTY_TRAINING))]
    return page("Overview", "".join(main), owner, source="/ui/data/overview", kind="overview")


def _swatch(rgb: tuple[int, int, int]) -> str:
    # An SVG's fill attribute is not a style, so the strict policy (no inline styles) allows it.
    red, green, blue = rgb
    return (f"<svg class=\"swatch\" width=\"14\" height=\"14\" viewBox=\"0 0 14 14\" aria-hidden=\"true\">"
            f"<rect width=\"14\" height=\"14\" fill=\"rgb({int(red)},{int(green)},{int(blue)})\"/></svg>")


def legend_html(classes: list[dict[str, Any]]) -> str:
    """The overlay's legend: a colour swatch and label per class."""
    items = "".join(f"<li>{_swatch(c['rgb'])} {esc(c['label'])}</li>" for c in classes)
    return f"<ul class=\"legend\" aria-label=\"Mask colours\">{items}</ul>"


def sample_figure(view: dict[str, Any]) -> str:
    """One thumbnail (the overlay; the page's "Masks" switch shows the plain image instead)."""
    return (f"<figure data-key=\"{esc(view['id'])}\" data-image=\"{esc(view['image'])}\" "
            f"data-overlay=\"{esc(view['overlay'])}\"><img src=\"{esc(view['overlay'])}\" "
            f"alt=\"image {esc(view['id'])} with its mask\" loading=\"lazy\">"
            f"<figcaption data-text=\"id\">{esc(view['id'])}</figcaption></figure>")


def truth_row(view: dict[str, Any]) -> str:
    """One row of the ground-truth table: the sample id, then one cell per measurement."""
    cells = "".join(f"<td data-cell=\"{i}\">{esc(c)}</td>" for i, c in enumerate(view["cells"]))
    return f"<tr data-key=\"{esc(view['id'])}\"><td data-text=\"id\">{esc(view['id'])}</td>{cells}</tr>"


_EMPTY_SAMPLE = {"id": "", "image": "", "overlay": "", "cells": [""] * len(TRUTH_COLUMNS)}


def samples_text(window: dict[str, Any]) -> str:
    """``"Images 1–24 of 40 complete"``, or that none is complete yet."""
    total, start, shown = window["total"], window["start"], len(window["samples"])
    if shown == 0:
        return "No image is complete yet." if total == 0 else f"No images here: {total} complete in all."
    return f"Images {start + 1}–{start + shown} of {total} complete."


def _pager(batch_id: str, window: dict[str, Any]) -> str:
    start, per_page, total = window["start"], window["per_page"], window["total"]
    links = []
    if start > 0:
        links.append(f"<a href=\"/ui/batches/{esc(batch_id)}?start={max(0, start - per_page)}\">← previous</a>")
    if start + per_page < total:
        links.append(f"<a href=\"/ui/batches/{esc(batch_id)}?start={start + per_page}\">next →</a>")
    return f"<nav class=\"pager\">{' '.join(links)}</nav>"


def batch_page(owner: str, view: dict[str, Any], window: dict[str, Any], classes: list[dict[str, Any]]) -> str:
    """A batch: state, progress, tasks, error, thumbnails with mask overlays and a legend, per-image truth."""
    facts = "".join(f"<dt>{esc(label)}</dt><dd data-text=\"{field}\">{esc(view[field])}</dd>"
                    for label, field in (("Id", "id"), ("Backend", "backend"), ("Tasks", "tasks"),
                                         ("Created", "created"), ("Started", "started"), ("Finished", "finished")))
    head = "".join(f"<th>{esc(label)}</th>" for _, label in TRUTH_COLUMNS)
    main = (f"<p><a href=\"/\">← Overview</a></p><section id=\"batch\" data-key=\"{esc(view['id'])}\">"
            f"<h1 data-text=\"name\">{esc(view['name'])}</h1>"
            f"<p class=\"headline\">{_state(view)} {_progress(view)}</p>"
            f"<p class=\"error\" role=\"alert\" data-text=\"error\">{esc(view['error'])}</p>"
            f"<dl class=\"facts\">{facts}</dl></section>"
            "<h2>Images</h2><div class=\"toolbar\">"
            "<label><input type=\"checkbox\" id=\"show-masks\" checked> Masks "
            f"(classes at {OVERLAY_PERCENT} % over the image)</label>{legend_html(classes)}</div>"
            f"<p class=\"muted\" id=\"samples-text\">{esc(samples_text(window))}</p>"
            f"<div class=\"thumbs\" id=\"samples\" data-start=\"{int(window['start'])}\" "
            f"data-per-page=\"{int(window['per_page'])}\">"
            f"{''.join(sample_figure(s) for s in window['samples'])}</div>{_pager(view['id'], window)}"
            f"<template id=\"sample-figure\">{sample_figure(_EMPTY_SAMPLE)}</template>"
            "<h2>Ground truth</h2><p class=\"muted\">Measured on each exact mask by the renderer "
            "(<code>meta/&lt;id&gt;.json</code>, <code>truth</code>).</p>"
            f"<div class=\"scroll\"><table class=\"truth\"><thead><tr><th>Image</th>{head}</tr></thead>"
            f"<tbody id=\"truth-rows\">{''.join(truth_row(s) for s in window['samples'])}</tbody></table></div>"
            f"<template id=\"truth-row\">{truth_row(_EMPTY_SAMPLE)}</template>")
    source = f"/ui/data/batches/{view['id']}?start={int(window['start'])}"
    return page(view["name"] or view["id"], main, owner, source=source, kind="batch")


def _series_legend(series: list[Series]) -> str:
    items = "".join(f"<li>{_swatch(s.rgb)} {esc(s.label)}</li>" for s in series)
    return f"<ul class=\"series-legend\">{items}</ul>"


def curves_html(loss: list[Series], dice: list[Series]) -> str:
    """The curves' block: a loss chart and a validation Dice chart with their legends, or a sentence saying when
    they come. The page's script swaps a fresh one in whole while the training runs."""
    if not (loss or dice):
        return ("<p class=\"muted\">The curves appear once the training has logged its first steps (every "
                "<code>trainer.log_every_n_steps</code>; on a cluster, within <code>SEMCOAT_SLURM_PROGRESS_S</code> "
                "of that).</p>")
    charts = ["<div class=\"charts\" id=\"curves\">"]
    if loss:
        charts.append(f"<figure>{chart_svg(loss, 'Loss', 'loss')}{_series_legend(loss)}</figure>")
    if dice:
        charts.append(f"<figure>{chart_svg(dice, 'Validation Dice', 'Dice', (0.0, 1.0))}"
                      f"{_series_legend(dice)}</figure>")
    charts.append("</div>")
    return "".join(charts)


def training_page(owner: str, view: dict[str, Any], loss: list[Series], dice: list[Series],
                  curves_version: str) -> str:
    """A training: state, progress (bar, step and epoch against the limits, loss and Dice, the latest validation
    per class), what it trains on and with, error, and its loss and Dice curves (live while it runs: the page's
    script fetches them again when ``curves_version`` changes)."""
    facts = "".join(f"<dt>{esc(label)}</dt><dd data-text=\"{field}\">{esc(view[field])}</dd>"
                    for label, field in (("Scores", "scores"), ("Dice per class", "classes"), ("Id", "id"),
                                         ("Config", "config"), ("Backend", "backend"), ("Resources", "resources"),
                                         ("Datasets", "datasets"), ("Weights from", "weights_from"),
                                         ("Job", "job"), ("Created", "created"),
                                         ("Started", "started"), ("Finished", "finished")))
    main = (f"<p><a href=\"/\">← Overview</a></p><section id=\"training\" data-key=\"{esc(view['id'])}\">"
            f"<h1 data-text=\"name\">{esc(view['name'])}</h1>"
            f"<p class=\"headline\">{_state(view)} {_progress(view)}</p>"
            f"<p class=\"warning\" role=\"status\" data-text=\"warning\">{esc(view['warning'])}</p>"
            f"<p class=\"error\" role=\"alert\" data-text=\"error\">{esc(view['error'])}</p>"
            f"<dl class=\"facts\">{facts}</dl></section><h2>Curves</h2>"
            f"<div id=\"curves-box\" data-version=\"{esc(curves_version)}\">{curves_html(loss, dice)}</div>")
    return page(view["name"] or view["id"], main, owner, source=f"/ui/data/trainings/{view['id']}", kind="training")
