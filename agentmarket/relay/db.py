"""Database engines and migrations: SQLite (a file, WAL journal) by default, PostgreSQL by URL.

``open_db(url)`` returns an engine whose schema is at the newest alembic revision. ``postgresql://`` URLs
use the psycopg 3 driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

from ..errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_DB = "sqlite:///agentmarket-relay.db"


def normalise_url(url: str) -> str:
    """A SQLAlchemy URL: a bare path becomes a SQLite file; ``postgresql://`` selects psycopg 3."""
    if "://" not in url:
        return f"sqlite:///{Path(url).resolve()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite:", "postgresql+psycopg:")):
        return url
    raise ConfigError(
        f"unsupported database URL {url.split('://')[0]}:// (fix: use sqlite:/// or postgresql://)"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers do not block the writer. synchronous=FULL: a commit is on disk before the 201 is sent
    # (NORMAL would survive a process kill but not a power cut). busy_timeout: the indexer and the post
    # writer take turns instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create(url: str) -> Engine:
    """An engine for ``url`` (not migrated: see :func:`open_db`)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, pool_size=8)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # no pool_pre_ping: it is a round trip per checkout; Store retries once on a dropped connection
    return create_engine(url, pool_size=10, max_overflow=10, pool_recycle=3600)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with alembic (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def open_db(url: str) -> Engine:
    """An engine for ``url`` with the schema migrated to the newest revision."""
    engine = create(url)
    try:
        migrate(engine)
    except Exception as exc:
        engine.dispose()
        raise ConfigError(f"cannot open or migrate the relay database: {type(exc).__name__}: {exc}") from None
    return engine
