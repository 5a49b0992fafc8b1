"""Noticeboard settings from Airflow connections and variables, read inside tasks only.

Secrets never appear in DAG code. A task calls `noticeboard_environment()`, which reads the
connections below (from the metadata database, a secrets backend or `AIRFLOW_CONN_*` variables),
plus the JSON variable `noticeboard_settings`, and sets the matching `NOTICEBOARD_*` environment
variables for the duration of the `with` block. Values found in Airflow override the process
environment, and whatever Airflow lacks keeps its `NOTICEBOARD_*` value or the default.

| connection             | fields used                                                            |
|------------------------|------------------------------------------------------------------------|
| `noticeboard_db`       | type postgres or sqlite, host, port, schema (database), login, password |
| `noticeboard_smtp`     | host, port, login, password; extra `security`, `mail_from`             |
| `noticeboard_translator` | host (API URL), password (API key); extra `provider`                 |
| `noticeboard_mastodon` | host (instance URL), password (access token)                           |
| `noticeboard_discourse`| host (forum URL), login (user name), password (API key)                |
| `noticeboard_webhook`  | host (URL), password (signing secret)                                  |
| `noticeboard_alerts`   | host (webhook URL for operator alerts); extra `email`                  |
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

SETTINGS_VARIABLE = "noticeboard_settings"


def database_url(connection: Any) -> str:
    """Build a SQLAlchemy URL from the `noticeboard_db` connection."""
    from sqlalchemy.engine import URL

    extra = connection.extra_dejson or {}
    if extra.get("url"):
        return str(extra["url"])

    kind = (connection.conn_type or "").lower()
    if kind == "sqlite":
        return f"sqlite:///{connection.host or connection.schema}"
    if kind not in ("postgres", "postgresql"):
        raise ValueError(
            f"connection noticeboard_db has type {kind!r}; use postgres or sqlite, "
            "or put a full SQLAlchemy URL in its extra field `url`"
        )
    url = URL.create(
        "postgresql+psycopg",
        username=connection.login or None,
        password=connection.password or None,
        host=connection.host or None,
        port=connection.port or None,
        database=connection.schema or None,
    )
    return url.render_as_string(hide_password=False)


def _smtp(connection: Any) -> dict[str, str]:
    extra = connection.extra_dejson or {}
    values = {
        "SMTP_HOST": connection.host,
        "SMTP_PORT": connection.port,
        "SMTP_USERNAME": connection.login,
        "SMTP_PASSWORD": connection.password,
        "SMTP_SECURITY": extra.get("security"),
        "MAIL_FROM": extra.get("mail_from"),
    }
    return _present(values)


def _translator(connection: Any) -> dict[str, str]:
    extra = connection.extra_dejson or {}
    return _present(
        {
            "TRANSLATOR_URL": connection.host,
            "TRANSLATOR_API_KEY": connection.password,
            "TRANSLATOR_PROVIDER": extra.get("provider"),
        }
    )


def _mastodon(connection: Any) -> dict[str, str]:
    return _present({"MASTODON_URL": connection.host, "MASTODON_TOKEN": connection.password})


def _discourse(connection: Any) -> dict[str, str]:
    return _present(
        {
            "DISCOURSE_URL": connection.host,
            "DISCOURSE_USERNAME": connection.login,
            "DISCOURSE_API_KEY": connection.password,
        }
    )


def _webhook(connection: Any) -> dict[str, str]:
    return _present({"WEBHOOK_URL": connection.host, "WEBHOOK_SECRET": connection.password})


def _alerts(connection: Any) -> dict[str, str]:
    extra = connection.extra_dejson or {}
    return _present({"ALERT_WEBHOOK_URL": connection.host, "ALERT_EMAIL": extra.get("email")})


def _database(connection: Any) -> dict[str, str]:
    return {"DATABASE_URL": database_url(connection)}


CONNECTION_MAPPERS: dict[str, Callable[[Any], dict[str, str]]] = {
    "noticeboard_db": _database,
    "noticeboard_smtp": _smtp,
    "noticeboard_translator": _translator,
    "noticeboard_mastodon": _mastodon,
    "noticeboard_discourse": _discourse,
    "noticeboard_webhook": _webhook,
    "noticeboard_alerts": _alerts,
}


def _present(values: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in values.items() if value not in (None, "")}


def airflow_settings() -> dict[str, str]:
    """Collect `NOTICEBOARD_*` values from the Airflow connections and the settings variable."""
    from airflow.sdk import Connection, Variable
    from airflow.sdk.exceptions import AirflowNotFoundException

    values: dict[str, str] = {}
    raw = Variable.get(SETTINGS_VARIABLE, default=None)
    if raw:
        values.update(_settings_variable(raw))

    for conn_id, mapper in CONNECTION_MAPPERS.items():
        try:
            connection = Connection.get(conn_id)
        except AirflowNotFoundException:
            logger.debug("connection_absent conn_id=%s", conn_id)
            continue
        values.update(mapper(connection))

    return {"NOTICEBOARD_" + name: value for name, value in values.items()}


def _settings_variable(raw: str) -> dict[str, str]:
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"Airflow variable {SETTINGS_VARIABLE} is not valid JSON: {error}; "
            'set it to an object such as {"publishers": "mastodon"}'
        ) from error
    if not isinstance(document, dict):
        raise ValueError(f"Airflow variable {SETTINGS_VARIABLE} must be a JSON object of settings")

    values = {}
    for key, value in document.items():
        if isinstance(value, list):
            value = ",".join(str(item) for item in value)
        values[str(key).upper()] = str(value)
    return values


@contextmanager
def noticeboard_environment() -> Iterator[dict[str, str]]:
    """Set the `NOTICEBOARD_*` variables from Airflow for the block, then restore the old ones.

    Restoring matters because `dag.test()` runs tasks in the caller's process.
    """
    values = airflow_settings()
    logger.info("settings_from_airflow names=%s", ",".join(sorted(values)) or "-")

    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for name, old in previous.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
