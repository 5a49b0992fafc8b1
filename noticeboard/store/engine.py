"""Opening the database: engine, sessions and migrations.

The database URL comes from `NOTICEBOARD_DATABASE_URL`; without it Noticeboard uses the SQLite file
`noticeboard.db` in the working folder, created on first use. `open_store` applies the Alembic
migrations itself, so operators never run Alembic by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from noticeboard.errors import StoreError, StoreUnavailableError

logger = logging.getLogger(__name__)

DEFAULT_SQLITE_FILE = "noticeboard.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_SECONDS = 30
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SUPPORTED_DRIVERS = ("sqlite", "postgresql+psycopg")


@dataclass
class Store:
    """An open database: its engine and a session factory."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def url(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session that commits on success and rolls back on any error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def default_database_url(working_dir: Path | None = None) -> str:
    """Return the SQLite URL of `noticeboard.db` in the working folder."""
    folder = (working_dir or Path.cwd()).resolve()
    return f"sqlite:///{folder / DEFAULT_SQLITE_FILE}"


def create_store_engine(url: str) -> Engine:
    """Create an engine for `url`, with SQLite set up for several processes at once."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(
            f"database URL {url!r} is invalid: {error}; "
            "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        ) from error

    if parsed.drivername == "postgresql" or parsed.drivername == "postgres":
        parsed = parsed.set(drivername="postgresql+psycopg")

    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(
            f"database URL {parsed.render_as_string(hide_password=True)} names {backend}, which Noticeboard "
            "does not support; use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise StoreError(
            f"database driver {parsed.drivername} is not installed; use "
            f"{' or '.join(SUPPORTED_DRIVERS)} in NOTICEBOARD_DATABASE_URL"
        )

    if backend == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        event.listen(engine, "connect", _configure_sqlite)
        return engine

    return create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def _configure_sqlite(connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open the database at `url` (or the default SQLite file) and bring its schema up to date."""
    url = url or default_database_url()
    engine = create_store_engine(url)
    shown = engine.url.render_as_string(hide_password=True)

    try:
        with engine.connect():
            pass
    except OperationalError as error:
        engine.dispose()
        raise StoreUnavailableError(
            f"cannot connect to the database {shown}: {_first_line(error)}; "
            "check NOTICEBOARD_DATABASE_URL and that the server is running"
        ) from error

    if migrate:
        migrate_database(engine)
    return Store(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))


def migrate_database(engine: Engine) -> None:
    """Apply every Alembic migration that the database lacks."""
    shown = engine.url.render_as_string(hide_password=True)
    tables = set(inspect(engine).get_table_names())
    if tables and "alembic_version" not in tables:
        raise StoreError(
            f"the database {shown} already has {len(tables)} tables that are not Noticeboard's; "
            "Noticeboard creates its schema only in an empty database, so name an empty or "
            "Noticeboard database in NOTICEBOARD_DATABASE_URL"
        )
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as error:
        raise StoreUnavailableError(f"cannot migrate the database {shown}: {_first_line(error)}") from error
    except SQLAlchemyError as error:
        raise StoreError(
            f"migrating the database {shown} failed: {_first_line(error)}; "
            "the database may belong to another program or a newer Noticeboard"
        ) from error
    logger.debug("migrated database=%s tables=%d", shown, len(inspect(engine).get_table_names()))


def alembic_config() -> Config:
    """Return an Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
