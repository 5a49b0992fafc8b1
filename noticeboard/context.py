"""The context every CLI command shares: settings, the catalog path and a lazily opened store."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from noticeboard.catalog import Catalog, load_catalog
from noticeboard.settings import Settings
from noticeboard.store import Store, default_database_url, open_store

PACKAGED_CATALOG = Path(__file__).resolve().parent / "data" / "sources.yaml"


@dataclass
class AppContext:
    """Settings and resources of one CLI invocation, passed to commands as `ctx.obj`."""

    settings: Settings
    catalog_path: Path | None = None
    _store: Store | None = field(default=None, repr=False)
    _catalog: Catalog | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, catalog_path: Path | None = None) -> AppContext:
        """Build the context from `NOTICEBOARD_*` variables and the `--catalog` option."""
        settings = Settings.from_env()
        if "NOTICEBOARD_OUTPUT_DIR" not in os.environ:
            settings = settings.replace(output_dir=Path.cwd() / "public")
        return cls(settings=settings, catalog_path=catalog_path)

    @property
    def database_url(self) -> str:
        """The configured database URL, or the default SQLite file in the working folder."""
        return self.settings.database_url or default_database_url()

    def open_store(self) -> Store:
        """Open (once) and migrate the store."""
        if self._store is None:
            self._store = open_store(self.database_url)
        return self._store

    def catalog(self) -> Catalog:
        """Load (once) the catalog named by `--catalog`, or the packaged catalog."""
        if self._catalog is None:
            self._catalog = load_catalog(self.catalog_path or self.settings.catalog_path or PACKAGED_CATALOG)
        return self._catalog

    def close(self) -> None:
        """Release the store's connections."""
        if self._store is not None:
            self._store.dispose()
            self._store = None
