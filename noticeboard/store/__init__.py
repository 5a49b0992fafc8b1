"""SQLAlchemy storage: the schema, the engine and the queries the stages share."""

from noticeboard.store.engine import Store, default_database_url, open_store

__all__ = ["Store", "default_database_url", "open_store"]
