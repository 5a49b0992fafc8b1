"""Alembic environment: runs migrations on the connection that `open_store` passes in."""

from __future__ import annotations

from alembic import context

import noticeboard.store.all_tables  # noqa: F401  (registers every table on Base.metadata)
from noticeboard.store.tables import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through noticeboard.store.open_store, which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
