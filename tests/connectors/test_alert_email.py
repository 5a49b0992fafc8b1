"""Operator alerts by e-mail, against an aiosmtpd server on 127.0.0.1.

The implicit TLS tests make a self-signed certificate for 127.0.0.1 with the `openssl` command and
skip, saying why, when it is missing. The client trusts that certificate only through
`SSL_CERT_FILE`, which OpenSSL reads when the default SSL context loads its certificates.
"""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from connectors import ingest_source
from connectors.http import HttpFetcher
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import SourceState
from tests.connectors.conftest import LocalServer, Reply, make_source

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
OPERATOR = "ops@noticeboard.example.org"


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps each message and can refuse recipients."""

    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    refuse_recipients: bool = False

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse_recipients:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.original_content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(mailbox: Mailbox, **options: Any) -> Iterator[int]:
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port(), **options)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp_port(mailbox: Mailbox) -> Iterator[int]:
    """Port of a plain SMTP server that stores messages in `mailbox`."""
    yield from _serve(mailbox)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate; install openssl")
    folder = tmp_path_factory.mktemp("alert-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_port(mailbox: Mailbox, certificate: tuple[Path, Path]) -> Iterator[int]:
    """Port of an implicit TLS SMTP server that stores messages in `mailbox`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    yield from _serve(mailbox, ssl_context=context)


def _email_settings(settings: Settings, port: int, security: str = "none") -> Settings:
    return settings.replace(
        alert_email=OPERATOR,
        mail_from="Noticeboard <noticeboard@noticeboard.example.org>",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security=security,
    )


def _fail_three_times(server: LocalServer, store: Store, settings: Settings) -> None:
    server.route("/rss.xml", Reply(503))
    source = make_source("alert-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)
    for hours in (0, 1, 2):
        ingest_source(
            store, source, fetcher, settings, now=NOW + timedelta(hours=hours), force=True
        )


def _alerted_status(store: Store) -> str | None:
    with store.session() as session:
        state = session.get(SourceState, "alert-test")
        assert state is not None
        return state.alerted_status


def test_email_alert_sent_once(
    server: LocalServer, settings: Settings, store: Store, mailbox: Mailbox, smtp_port: int
) -> None:
    _fail_three_times(server, store, _email_settings(settings, smtp_port))

    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert message["Subject"] == "Noticeboard: source alert-test is failed"
    assert message["To"] == OPERATOR
    assert mailbox.recipients[0] == [OPERATOR]
    assert "HTTP 503" in message.get_payload()
    assert _alerted_status(store) == "failed"


def test_email_alert_over_tls(
    server: LocalServer,
    settings: Settings,
    store: Store,
    mailbox: Mailbox,
    tls_port: int,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))

    _fail_three_times(server, store, _email_settings(settings, tls_port, "tls"))

    assert len(mailbox.messages) == 1
    assert _alerted_status(store) == "failed"


def test_email_alert_untrusted_certificate(
    server: LocalServer,
    settings: Settings,
    store: Store,
    mailbox: Mailbox,
    tls_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="connectors.health"):
        _fail_three_times(server, store, _email_settings(settings, tls_port, "tls"))

    assert mailbox.messages == []
    assert "SSLCertVerificationError" in caplog.text
    assert _alerted_status(store) is None


def test_refused_recipient_not_logged(
    server: LocalServer,
    settings: Settings,
    store: Store,
    mailbox: Mailbox,
    smtp_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailbox.refuse_recipients = True

    with caplog.at_level(logging.ERROR, logger="connectors.health"):
        _fail_three_times(server, store, _email_settings(settings, smtp_port))

    assert "alert_failed channel=email error=SMTPRecipientsRefused" in caplog.text
    assert OPERATOR not in caplog.text
    assert _alerted_status(store) is None
