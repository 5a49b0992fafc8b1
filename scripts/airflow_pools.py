"""Write the Airflow pools of the source catalog, one per host, as `airflow pools import` JSON.

Usage:
    python scripts/airflow_pools.py --output pools.json [--catalog PATH]
    airflow pools import pools.json

Without `--catalog` it reads the catalog the ingest DAGs read: `NOTICEBOARD_CATALOG_PATH`, or the
catalog bundled with the noticeboard package. Importing again updates the slots and descriptions
of existing pools and leaves other pools alone. The pool of a host removed from the catalog stays
until `airflow pools delete NAME` deletes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DAGS_DIR = Path(__file__).resolve().parent.parent / "dags"


def main(argv: list[str] | None = None) -> int:
    """Write the pools file and print how many pools it lists."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--catalog", type=Path, help="catalog YAML file (default: the DAGs' catalog)"
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)

    if args.catalog is not None:
        os.environ["NOTICEBOARD_CATALOG_PATH"] = str(args.catalog)
    sys.path.insert(0, str(DAGS_DIR))
    from _catalog import catalog_path, host_pools, load_dag_catalog

    from noticeboard.errors import CatalogError

    try:
        pools = host_pools(load_dag_catalog())
    except CatalogError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    args.output.write_text(json.dumps(pools, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(pools)} pools from {catalog_path()} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
