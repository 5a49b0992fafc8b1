"""Operator commands: subscribers list, add, remove, export, counts; newsletter send."""

from __future__ import annotations

import csv
import io
import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from noticeboard.context import AppContext
from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter.cli import newsletter_group, subscribers_group
from tests.publishers.newsletter.conftest import RecordingHandler, add_notice, add_subscriber


@pytest.fixture
def app(store: Store, settings: Settings, sqlite_url: str) -> AppContext:
    return AppContext(settings=settings.replace(database_url=sqlite_url))


def _invoke(group, app: AppContext, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(group, list(args), obj=app, catch_exceptions=False)


def test_add_sends_confirmation(app: AppContext, smtp: RecordingHandler) -> None:
    result = _invoke(
        subscribers_group, app, "add", "aino@example.fi", "--language", "fi", "--region", "FI-18"
    )

    assert result.exit_code == 0
    assert smtp.messages_to("aino@example.fi")[0]["Subject"] == "Vahvista Noticeboard-tilauksesi"


def test_add_rejects_unknown_region(app: AppContext, smtp: RecordingHandler) -> None:
    result = CliRunner().invoke(
        subscribers_group, ["add", "aino@example.fi", "--region", "XX-99"], obj=app
    )

    assert result.exit_code == 2
    assert "XX-99" in result.output


def test_list_and_remove(app: AppContext, store: Store, smtp: RecordingHandler) -> None:
    add_subscriber(store, "anna@example.org")

    listed = _invoke(subscribers_group, app, "list")
    removed = _invoke(subscribers_group, app, "remove", "Anna@example.org")
    after = _invoke(subscribers_group, app, "list")

    assert "anna@example.org" in listed.output
    assert removed.exit_code == 0
    assert after.stdout == ""
    assert after.stderr.strip() == "no subscribers"


def test_remove_legacy_address(app: AppContext, store: Store) -> None:
    from publishers.newsletter.tables import Subscriber

    with store.session() as session:
        session.add(
            Subscriber(
                key="0" * 32,
                email="äijä@example.fi",
                language="fi",
                regions=[],
                topics=[],
                frequency="daily",
                status="pending",
                created_at=datetime(2026, 3, 1, tzinfo=UTC),
            )
        )

    removed = _invoke(subscribers_group, app, "remove", "Äijä@example.fi")
    after = _invoke(subscribers_group, app, "list")

    assert removed.exit_code == 0
    assert after.stdout == ""


def test_export_csv(app: AppContext, store: Store, tmp_path: Path) -> None:
    add_subscriber(store, "anna@example.org", regions=["FI-18", "EE"], topics=["housing"])
    output = tmp_path / "subscribers.csv"

    _invoke(subscribers_group, app, "export", "--output", str(output))

    rows = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8"))))
    assert rows[0]["email"] == "anna@example.org"
    assert rows[0]["regions"] == "EE FI-18"
    assert rows[0]["status"] == "active"


def test_counts(app: AppContext, store: Store) -> None:
    add_subscriber(store, "a@example.org", regions=["FI-18"], topics=["housing"])
    add_subscriber(store, "b@example.org", regions=["FI-18"])

    result = _invoke(subscribers_group, app, "counts")

    assert "region\tFI-18\t2" in result.output
    assert "topic\thousing\t1" in result.output
    assert "topic\t*\t1" in result.output


def test_no_address_in_logs(
    app: AppContext, store: Store, smtp: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    CliRunner().invoke(subscribers_group, ["add", "secret.person@example.org"], obj=app)
    smtp.rcpt_replies["secret.person@example.org"] = "550 5.1.1 <secret.person@example.org> unknown"
    CliRunner().invoke(subscribers_group, ["add", "secret.person@example.org"], obj=app)
    _invoke(subscribers_group, app, "remove", "secret.person@example.org")

    ours = [
        record.getMessage() for record in caplog.records if not record.name.startswith("mail.log")
    ]
    assert ours
    assert not [message for message in ours if "secret.person" in message]


def test_send_dry_run(
    app: AppContext, store: Store, smtp: RecordingHandler, tmp_path: Path
) -> None:
    add_subscriber(store, "anna@example.org", frequency="immediate")
    add_notice(
        store, "n1", "Tietyö päättyy", first_seen_at=datetime.now(UTC) - timedelta(minutes=5)
    )

    result = _invoke(
        newsletter_group,
        app,
        "send",
        "--frequency",
        "immediate",
        "--dry-run",
        str(tmp_path / "out"),
    )

    assert "files=1" in result.output
    assert len(list((tmp_path / "out").glob("*.eml"))) == 1
    assert smtp.received == []


def test_send_exits_1_when_smtp_refuses(app: AppContext, store: Store) -> None:
    add_subscriber(store, "anna@example.org", frequency="immediate")
    add_notice(
        store, "n1", "Tietyö päättyy", first_seen_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    closed = AppContext(settings=app.settings.replace(smtp_port=_closed_port()))

    result = CliRunner().invoke(newsletter_group, ["send", "--frequency", "immediate"], obj=closed)

    assert result.exit_code == 1
    assert "retry=1" in result.stdout
    assert "mails postponed: 1" in result.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
