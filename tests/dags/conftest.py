"""Airflow set-up for the DAG tests: a private AIRFLOW_HOME, set before anything imports Airflow.

Airflow reads its configuration once, at import, and without AIRFLOW_HOME it creates ~/airflow.
Pytest imports this conftest before the test modules of this folder, so the variables below are in
place when those modules import Airflow. The DAG folder goes on `sys.path` as the DAG processor's
bundle loader puts it there, so the DAG files can import their `_`-helper modules.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
DAGS_DIR = PROJECT_DIR / "dags"
REPLAY_CATALOG = PROJECT_DIR / "examples" / "replay-catalog.yaml"
REPLAY_MANIFEST = PROJECT_DIR / "examples" / "replay" / "manifest.json"

AIRFLOW_INSTALLED = importlib.util.find_spec("airflow") is not None
AIRFLOW_IMPORTED_TOO_EARLY = "airflow" in sys.modules
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="noticeboard-airflow-home-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
    }
)
if str(DAGS_DIR) not in sys.path:
    sys.path.append(str(DAGS_DIR))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the temporary AIRFLOW_HOME."""
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def require_airflow() -> None:
    """Skip with the reason when Airflow is missing or was configured before this conftest ran."""
    if not AIRFLOW_INSTALLED:
        pytest.skip("Apache Airflow is not installed; install it with `uv sync --extra airflow`")
    if AIRFLOW_IMPORTED_TOO_EARLY:
        pytest.skip("airflow was imported before tests/dags/conftest.py set AIRFLOW_HOME")


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """A migrated SQLite metadata database in the temporary AIRFLOW_HOME."""
    if not AIRFLOW_INSTALLED or AIRFLOW_IMPORTED_TOO_EARLY:
        pytest.skip("Apache Airflow is unavailable for a metadata database")
    from airflow.utils import db

    db.resetdb()
    yield AIRFLOW_HOME / "airflow.db"


def replay_settings(folder: Path) -> dict[str, str]:
    """Settings that point the DAG tasks at the example replay set, a fresh store and `folder`."""
    if not REPLAY_MANIFEST.is_file() or not REPLAY_CATALOG.is_file():
        pytest.skip(f"example replay set not found at {REPLAY_MANIFEST}")
    return {
        "NOTICEBOARD_CATALOG_PATH": str(REPLAY_CATALOG),
        "NOTICEBOARD_REPLAY": str(REPLAY_MANIFEST),
        "NOTICEBOARD_DATABASE_URL": f"sqlite:///{folder / 'noticeboard.db'}",
        "NOTICEBOARD_OUTPUT_DIR": str(folder / "public"),
        "NOTICEBOARD_PUBLISHERS": "",
        "NOTICEBOARD_SECRET_KEY": "test-signing-key-for-dag-runs-0123456789",
        # No translation targets, and a provider URL on the discard port in case a row is queued.
        "NOTICEBOARD_TRANSLATION_TARGETS": "",
        "NOTICEBOARD_TRANSLATOR_PROVIDER": "libre",
        "NOTICEBOARD_TRANSLATOR_URL": "http://127.0.0.1:9",
    }


def load_dagbag() -> object:
    """Parse the DAG folder with the current environment and return the DagBag."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))
