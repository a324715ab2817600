"""Persistence: SQLAlchemy 2 models (batches, their render tasks, users' tokens), engine/session set-up and Alembic
migrations. SQLite by default; any SQLAlchemy URL works. Redis is only Celery's broker: every state lives here."""
