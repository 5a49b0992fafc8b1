"""Airflow connections and variables become NOTICEBOARD_* settings inside tasks only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("require_airflow")]


@dataclass
class FakeConnection:
    """The fields of an Airflow connection that the mapping reads."""

    conn_type: str = "postgres"
    host: str | None = None
    port: int | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    extra_dejson: dict[str, Any] = field(default_factory=dict)


def test_database_url_postgres() -> None:
    from _config import database_url

    connection = FakeConnection(
        host="postgres", port=5432, schema="noticeboard", login="nb", password="p@ss"
    )
    assert database_url(connection) == "postgresql+psycopg://nb:p%40ss@postgres:5432/noticeboard"


def test_database_url_sqlite() -> None:
    from _config import database_url

    connection = FakeConnection(conn_type="sqlite", host="/data/noticeboard.db")
    assert database_url(connection) == "sqlite:////data/noticeboard.db"


def test_database_url_extra_wins() -> None:
    from _config import database_url

    connection = FakeConnection(host="ignored", extra_dejson={"url": "sqlite:///x.db"})
    assert database_url(connection) == "sqlite:///x.db"


def test_database_url_unknown_type() -> None:
    from _config import database_url

    with pytest.raises(ValueError, match="mysql"):
        database_url(FakeConnection(conn_type="mysql"))


def test_smtp_mapping_skips_empty() -> None:
    from _config import CONNECTION_MAPPERS

    connection = FakeConnection(
        conn_type="smtp", host="mailpit", port=1025, extra_dejson={"security": "none"}
    )
    assert CONNECTION_MAPPERS["noticeboard_smtp"](connection) == {
        "SMTP_HOST": "mailpit",
        "SMTP_PORT": "1025",
        "SMTP_SECURITY": "none",
    }


def test_settings_variable_lists() -> None:
    from _config import _settings_variable

    values = _settings_variable('{"publishers": ["mastodon", "webhook"], "feed_page_size": 50}')
    assert values == {"PUBLISHERS": "mastodon,webhook", "FEED_PAGE_SIZE": "50"}


def test_settings_variable_invalid_json() -> None:
    from _config import _settings_variable

    with pytest.raises(ValueError, match="not valid JSON"):
        _settings_variable("{publishers: mastodon}")


def test_environment_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    import _config

    monkeypatch.setenv("NOTICEBOARD_SMTP_HOST", "before")
    monkeypatch.delenv("NOTICEBOARD_SMTP_PASSWORD", raising=False)
    monkeypatch.setattr(
        _config,
        "airflow_settings",
        lambda: {"NOTICEBOARD_SMTP_HOST": "mailpit", "NOTICEBOARD_SMTP_PASSWORD": "secret"},
    )

    with _config.noticeboard_environment():
        inside = (os.environ["NOTICEBOARD_SMTP_HOST"], os.environ["NOTICEBOARD_SMTP_PASSWORD"])

    assert inside == ("mailpit", "secret")
    assert os.environ["NOTICEBOARD_SMTP_HOST"] == "before"
    assert "NOTICEBOARD_SMTP_PASSWORD" not in os.environ
