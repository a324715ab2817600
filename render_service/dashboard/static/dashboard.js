// The dashboard's only script: polls the page's JSON (body[data-source]) every data-poll-ms and copies the values
// into the page as text (textContent, never HTML), adding rows and figures from <template>s as they appear.
// The server formats every value (render_service/dashboard/views.py); nothing here builds markup from data.
// One block is taken whole from the server: a training's curves, SVG charts drawn by render_service/dashboard/
// curves.py (every text escaped there), sent only when they changed, parsed inertly (DOMParser: nothing in it
// runs, and the Content-Security-Policy allows no inline script or style anyway) and swapped in.
"use strict";

(function () {
  const body = document.body;
  const source = body.dataset.source;
  const pollMs = Number(body.dataset.pollMs) || 2000;
  const statusLine = document.getElementById("status");

  function say(text) {
    if (statusLine) statusLine.textContent = text;
  }

  // Set every [data-text] inside `root` (and root itself) from `values`; links, progress bars and states too.
  function fill(root, values) {
    const nodes = [root, ...root.querySelectorAll("[data-text], [data-href], [data-progress], [data-state]")];
    for (const node of nodes) {
      const field = node.dataset.text;
      if (field !== undefined && field in values) node.textContent = String(values[field]);
      const link = node.dataset.href;
      if (link !== undefined && typeof values[link] === "string" && values[link].startsWith("/ui/")) {
        node.setAttribute("href", values[link]);
      }
      if (node.hasAttribute("data-progress") && "count" in values) {
        node.max = Math.max(Number(values.count) || 0, 1);
        if (values.done === null) node.removeAttribute("value");  // under way, how far unknown
        else node.value = Number(values.done) || 0;
      }
      if (node.hasAttribute("data-state") && /^[a-z]+$/.test(values.state || "")) node.dataset.value = values.state;
    }
  }

  // Make `tbody`'s keyed children follow `items` (in order), cloning `templateId` for new keys.
  function syncRows(container, templateId, items, update) {
    const template = document.getElementById(templateId);
    if (!container || !template) return;
    const existing = new Map();
    for (const child of container.querySelectorAll(":scope > [data-key]")) existing.set(child.dataset.key, child);
    for (const item of items) {
      let node = existing.get(item.id);
      if (!node) {
        node = template.content.firstElementChild.cloneNode(true);
        node.dataset.key = item.id;
      }
      update(node, item);
      container.appendChild(node);  // moves an existing node into its place in the order
      existing.delete(item.id);
    }
    for (const stale of existing.values()) stale.remove();
  }

  function showEmpty(id, items) {
    const note = document.getElementById(id);
    if (note) note.hidden = items.length > 0;
  }

  function overview(data) {
    syncRows(document.getElementById("batch-rows"), "batch-row", data.batches, fill);
    showEmpty("batches-empty", data.batches);
    if (Array.isArray(data.trainings)) {
      syncRows(document.getElementById("training-rows"), "training-row", data.trainings, fill);
      showEmpty("trainings-empty", data.trainings);
    }
    return false;
  }

  function masksShown() {
    const box = document.getElementById("show-masks");
    return !box || box.checked;
  }

  function fillFigure(figure, sample) {
    figure.dataset.image = sample.image;
    figure.dataset.overlay = sample.overlay;
    const img = figure.querySelector("img");
    const wanted = masksShown() ? sample.overlay : sample.image;
    if (img.getAttribute("src") !== wanted) img.setAttribute("src", wanted);
    img.alt = "image " + sample.id + (masksShown() ? " with its mask" : "");
    fill(figure, sample);
  }

  function fillTruth(row, sample) {
    fill(row, sample);
    for (const cell of row.querySelectorAll("[data-cell]")) {
      const value = sample.cells[Number(cell.dataset.cell)];
      cell.textContent = value === undefined ? "" : String(value);
    }
  }

  function batch(data) {
    const section = document.getElementById("batch");
    if (section) fill(section, data.batch);
    const samples = data.window.samples;
    syncRows(document.getElementById("samples"), "sample-figure", samples, fillFigure);
    syncRows(document.getElementById("truth-rows"), "truth-row", samples, fillTruth);
    const text = document.getElementById("samples-text");
    if (text) text.textContent = data.window.text;
    // Done once the batch has ended and the page shows every image of its window.
    const expected = Math.max(0, Math.min(data.window.per_page, data.window.total - data.window.start));
    return data.batch.final && samples.length === expected;
  }

  function training(data) {
    const section = document.getElementById("training");
    if (section) fill(section, data.training);
    const box = document.getElementById("curves-box");
    if (box && typeof data.curves_html === "string") {
      const parsed = new DOMParser().parseFromString(data.curves_html, "text/html");
      box.replaceChildren(...Array.from(parsed.body.childNodes, (node) => document.importNode(node, true)));
      box.dataset.version = String(data.curves_version);
    }
    // Done once it has ended and the page shows its collected log's curves (sent with the final state).
    return data.training.final && (!box || box.dataset.version === String(data.curves_version));
  }

  // The training page tells which curves it shows, so they are drawn and sent only when they changed.
  function pollUrl() {
    const box = document.getElementById("curves-box");
    if (body.dataset.page !== "training" || !box) return source;
    return source + (source.includes("?") ? "&" : "?") + "curves=" + encodeURIComponent(box.dataset.version || "");
  }

  const handlers = {overview: overview, batch: batch, training: training};

  function wireMaskSwitch() {
    const box = document.getElementById("show-masks");
    if (!box) return;
    box.addEventListener("change", function () {
      for (const figure of document.querySelectorAll("#samples > figure[data-key]")) {
        const img = figure.querySelector("img");
        img.setAttribute("src", box.checked ? figure.dataset.overlay : figure.dataset.image);
        img.alt = "image " + figure.dataset.key + (box.checked ? " with its mask" : "");
      }
    });
  }

  async function poll() {
    const handle = handlers[body.dataset.page];
    if (!source || !handle) return;
    if (document.hidden) {  // a tab in the background asks nothing; it catches up when shown
      window.setTimeout(poll, pollMs);
      return;
    }
    let finished = false;
    try {
      const response = await fetch(pollUrl(), {credentials: "same-origin", cache: "no-store",
                                            headers: {"Accept": "application/json"}});
      if (response.status === 401) {
        window.location.assign("/");  // signed out elsewhere, or the token was revoked
        return;
      }
      if (!response.ok) {
        say("The service answered " + response.status + "; trying again.");
      } else {
        finished = handle(await response.json());
        say("Updated " + new Date().toLocaleTimeString() + (finished ? "; finished." : "."));
      }
    } catch (error) {
      say("The service cannot be reached; trying again.");
    }
    if (!finished) window.setTimeout(poll, pollMs);
  }

  wireMaskSwitch();
  if (source) window.setTimeout(poll, pollMs);
})();
