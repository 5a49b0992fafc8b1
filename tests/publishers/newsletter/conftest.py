"""Fixtures of the newsletter tests: a local SMTP server, settings and stored notices."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, NoticeTag, Translation
from publishers.newsletter.subscribers import Preferences, confirm, sign_up
from publishers.newsletter.tables import Subscriber

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@dataclass
class Received:
    """One message as the SMTP server got it: envelope and the raw bytes of DATA."""

    sender: str
    recipients: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that stores messages and can reply with configured errors."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802, ANN001, ANN201
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 Message accepted"

    def messages_to(self, address: str) -> list[EmailMessage]:
        return [item.message() for item in self.received if address in item.recipients]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[RecordingHandler, int]]:
    """An SMTP server on 127.0.0.1 that records what it receives."""
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@pytest.fixture
def smtp(smtp_server: tuple[RecordingHandler, int]) -> RecordingHandler:
    return smtp_server[0]


@pytest.fixture
def settings(smtp_server: tuple[RecordingHandler, int]) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_server[1],
        secret_key="test-secret-key-0123456789",
        public_base_url="https://news.example.org",
        unsubscribe_mailto="leave@news.example.org",
        mail_from="Tiedotteet – Noticeboard <news@news.example.org>",
        immediate_daily_limit=2,
        newsletter_timezone="Europe/Helsinki",
    )


def add_notice(
    store: Store,
    notice_id: str,
    title: str,
    *,
    regions: Sequence[str] = ("FI-18",),
    topics: Sequence[str] = ("transport",),
    language: str = "fi",
    first_seen_at: datetime = NOW,
    stage: str = "ready",
    translations: dict[str, str] | None = None,
    provider: str | None = "google",
) -> None:
    """Store a notice with tags and finished translations (title by language)."""
    with store.session() as session:
        session.add(
            Notice(
                id=notice_id,
                source_id="fi-example",
                url=f"https://agency.example.fi/tiedotteet/{notice_id}",
                title=title,
                summary_text=f"{title}. Lisätietoja verkkosivuilla.",
                published_at=first_seen_at,
                published_precision="datetime",
                first_seen_at=first_seen_at,
                changed_at=first_seen_at,
                language=language,
                content_hash="0" * 64,
                stage=stage,
            )
        )
        session.flush()
        for region in regions:
            session.add(NoticeTag(notice_id=notice_id, kind="region", value=region, rule="test"))
        for topic in topics:
            session.add(NoticeTag(notice_id=notice_id, kind="topic", value=topic, rule="test"))
        for target, translated in (translations or {}).items():
            session.add(
                Translation(
                    notice_id=notice_id,
                    language=target,
                    version=1,
                    status="done",
                    provider=provider,
                    title=translated,
                    summary_text=f"{translated}.",
                    updated_at=first_seen_at,
                )
            )


def add_subscriber(
    store: Store,
    address: str,
    *,
    language: str = "en",
    regions: Sequence[str] = (),
    topics: Sequence[str] = (),
    frequency: str = "daily",
    confirmed_at: datetime = datetime(2026, 3, 1, tzinfo=UTC),
) -> Subscriber:
    """Store a confirmed subscriber."""
    preferences = Preferences.checked(
        language=language, regions=regions, topics=topics, frequency=frequency
    )
    with store.session() as session:
        subscriber = sign_up(session, address, preferences, now=confirmed_at).subscriber
        confirm(subscriber, now=confirmed_at)
        session.flush()
        session.expunge(subscriber)
    return subscriber
