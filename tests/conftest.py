"""Fixtures shared by every test package.

PostgreSQL tests use the server named by NOTICEBOARD_TEST_POSTGRES_URL (default: the local server
at 127.0.0.1:5432, database `test`). Each test session creates its own database there and drops it
at the end. When the server is absent the tests skip with the reason; `.ci/run` turns such skips
into a failure, because CI has the server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from noticeboard.store import Store, open_store

DEFAULT_POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
SHARED_DIR = Path(os.environ.get("NOTICEBOARD_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
CORPUS_DIR = SHARED_DIR / "corpus"
CASES_DIR = SHARED_DIR / "cases"

SECRET_VARIABLES = (
    "NOTICEBOARD_DATABASE_URL",
    "NOTICEBOARD_TRANSLATOR_API_KEY",
    "NOTICEBOARD_SMTP_PASSWORD",
    "NOTICEBOARD_MASTODON_TOKEN",
    "NOTICEBOARD_DISCOURSE_API_KEY",
    "NOTICEBOARD_WEBHOOK_SECRET",
    "NOTICEBOARD_SECRET_KEY",
    "NOTICEBOARD_OUTPUT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the caller's database, proxies and credentials out of every test."""
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a new SQLite file in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'noticeboard.db'}"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    """A migrated SQLite store in a temporary file."""
    opened = open_store(sqlite_url)
    yield opened
    opened.dispose()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a database created for this test session on the PostgreSQL server."""
    admin_url = make_url(os.environ.get("NOTICEBOARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    if admin_url.drivername in ("postgresql", "postgres"):
        admin_url = admin_url.set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as error:  # noqa: BLE001 (any failure to reach the server means skip)
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {admin_url.render_as_string(hide_password=True)}: {error}")

    name = f"noticeboard_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'create database "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """URL of an empty PostgreSQL database for one test (tables dropped afterwards)."""
    yield postgres_server_url
    engine = create_engine(postgres_server_url)
    with engine.begin() as connection:
        connection.execute(text("drop schema public cascade"))
        connection.execute(text("create schema public"))
    engine.dispose()


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[Store]:
    """A migrated store on PostgreSQL."""
    opened = open_store(postgres_url)
    yield opened
    opened.dispose()


@pytest.fixture
def corpus_dir() -> Path:
    """The recorded corpus of real feeds; skips with the reason when it is absent."""
    if not (CORPUS_DIR / "manifest.json").is_file():
        pytest.skip(f"recorded corpus not found at {CORPUS_DIR} (it sits beside the project in CI)")
    return CORPUS_DIR


@pytest.fixture
def cases_dir() -> Path:
    """The field cases folder; skips with the reason when it is absent."""
    if not (CASES_DIR / "README.md").is_file():
        pytest.skip(f"field cases not found at {CASES_DIR} (they sit beside the project in CI)")
    return CASES_DIR


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test skipped and NOTICEBOARD_FAIL_ON_SKIP is set (as in CI)."""
    if os.environ.get("NOTICEBOARD_FAIL_ON_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        reporter.write_line(
            f"NOTICEBOARD_FAIL_ON_SKIP=1: {len(skipped)} test(s) skipped; CI must run every test",
            red=True,
        )
        session.exitstatus = 1
