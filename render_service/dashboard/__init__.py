"""The web dashboard the API serves at ``/``: batches (and trainings) with state and progress, a batch's thumbnails
with mask overlays and per-image truth, a training's curves. Plain server-rendered HTML and one small script; signed
in with the API's own tokens (see :mod:`render_service.dashboard.session`)."""
