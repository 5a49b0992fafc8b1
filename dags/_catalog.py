"""The source catalog as the DAG files see it at parse time, and the per-host pools it implies.

The DAG processor imports every DAG file again on each parse, so this module only reads a local
YAML file: no network, no database and no import of the pipeline. The catalog named by
`NOTICEBOARD_CATALOG_PATH` is used when that variable is set, otherwise the catalog bundled with the
`noticeboard` package. A catalog that cannot be read raises `CatalogError`, which Airflow shows
as an import error of the DAG file in the UI.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from noticeboard.catalog import Catalog, Source

CATALOG_PATH_VARIABLE = "NOTICEBOARD_CATALOG_PATH"
POOL_PREFIX = "noticeboard-host-"
# One fetch at a time per host: the fetcher spaces requests to one host by
# `host_min_interval`, so a second concurrent task for the same host would only wait.
HOST_POOL_SLOTS = 1


def catalog_path() -> Path:
    """Return the catalog file the DAGs are generated from."""
    configured = os.environ.get(CATALOG_PATH_VARIABLE, "").strip()
    if configured:
        return Path(configured)

    # find_spec locates the package without executing its modules.
    spec = importlib.util.find_spec("noticeboard")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the noticeboard package is not installed in the Airflow environment; "
            "install it (uv sync --extra airflow) or set NOTICEBOARD_CATALOG_PATH"
        )
    return Path(spec.origin).parent / "data" / "sources.yaml"


def load_dag_catalog() -> Catalog:
    """Load the catalog, cached per path and modification time within one process."""
    path = catalog_path()
    try:
        modified = path.stat().st_mtime_ns
    except OSError:
        modified = 0  # load_catalog raises the error that names the path.
    return _load_cached(str(path), modified)


@lru_cache(maxsize=4)
def _load_cached(path: str, modified: int) -> Catalog:
    from noticeboard.catalog import load_catalog

    return load_catalog(path)


def pool_name(host: str) -> str:
    """Return the Airflow pool name of one host."""
    return POOL_PREFIX + host


def source_pool(source: Source) -> str:
    """Return the pool of a source's first host.

    NOTE: a task can use only one pool, so a source whose URLs span several hosts is limited
    by the pool of its first URL's host.
    """
    return pool_name(source.hosts[0])


def host_pools(catalog: Catalog) -> dict[str, dict[str, object]]:
    """Build the `airflow pools import` document: one pool per host of an enabled source."""
    sources_by_host: dict[str, list[str]] = {}
    for source in catalog.sources.values():
        if source.enabled:
            sources_by_host.setdefault(source.hosts[0], []).append(source.id)

    pools: dict[str, dict[str, object]] = {}
    for host, source_ids in sorted(sources_by_host.items()):
        pools[pool_name(host)] = {
            "slots": HOST_POOL_SLOTS,
            "description": f"Noticeboard fetches from {host} (sources: {', '.join(source_ids)})",
            "include_deferred": False,
        }
    return pools
