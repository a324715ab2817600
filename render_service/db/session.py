"""Engine and sessions: one engine per process, the schema migrated to the newest Alembic revision at start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets its folder created, WAL journaling and a busy timeout, because the API and
    the workers (separate processes) write the same file."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # No cap on connections: a request of the API holds its session's connection between the thread-pool hops
        # of its dependencies, so with a capped pool 100 concurrent polls left every pool thread waiting for a
        # connection that only a waiting request could give back (a deadlock; QueuePool TimeoutError after 30 s).
        # SQLite connections are local file handles; connections above pool_size are closed when returned.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10,
                               max_overflow=-1)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``; ``revision``: an older one, for
    tests of a migration); safe to call at every start."""
    from alembic import command
    from alembic.config import Config

    if url.startswith("sqlite:///"):  # a fresh data folder: SQLite creates the file, not its folder
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)


class Database:
    """The engine and session factory of one process."""

    def __init__(self, url: str, migrate_schema: bool = True) -> None:
        if migrate_schema:
            migrate(url)
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back when it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
