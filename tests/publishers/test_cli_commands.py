"""The `feed` and `deliveries` commands through click's runner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from click.testing import CliRunner

from noticeboard.context import AppContext
from noticeboard.errors import DeliveryError
from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers import ledger
from publishers.cli_commands import deliveries, feed

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def _invoke(command: click.Command, settings: Settings, store_url: str, *args: str) -> str:
    app = AppContext(
        settings=settings.replace(database_url=store_url), catalog_path=Path("/nonexistent.yaml")
    )
    result = CliRunner().invoke(command, list(args), obj=app, catch_exceptions=False)
    app.close()
    assert result.exit_code == 0, result.output
    return result.output


def test_feed_writes_folder(
    store: Store,
    settings: Settings,
    sqlite_url: str,
    tmp_path: Path,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    output = _invoke(feed, settings, sqlite_url, "--output", str(tmp_path / "out"))

    assert (tmp_path / "out" / "feed.json").is_file()
    assert "1 notices" in output


def test_deliveries_shows_permanent(store: Store, settings: Settings, sqlite_url: str) -> None:
    delivery_claim = ledger.claim(store, "discourse", "n1", 1, worker="w", now=NOW)
    assert delivery_claim is not None
    ledger.record_failure(
        store,
        delivery_claim,
        DeliveryError("HTTP 422: Title is too short", permanent=True),
        now=NOW,
    )
    sent = ledger.claim(store, "mastodon", "n1", 1, worker="w", now=NOW)
    assert sent is not None
    ledger.record_sent(store, sent, "1001", now=NOW)

    output = _invoke(deliveries, settings, sqlite_url, "--status", "permanent")

    assert "discourse/permanent=1" in output
    assert "Title is too short" in output
    assert "mastodon" not in output
