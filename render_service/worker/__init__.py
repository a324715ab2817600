"""Celery: the app (Redis as broker only), the thin tasks (submit, poll, collect, cancel) and the periodic poll."""
