"""SMTP over STARTTLS and implicit TLS, with login, against aiosmtpd on 127.0.0.1.

The server certificate is self-signed for 127.0.0.1 and made with the `openssl` command; the
tests skip, saying why, when it is missing.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from noticeboard.settings import Settings
from publishers.newsletter.sender import SendError, SmtpSender
from tests.publishers.newsletter.conftest import RecordingHandler

USERNAME = "mailer"
PASSWORD = "s3cret-password"

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None,
    reason="the openssl command is needed to make a test certificate; install openssl",
)


@dataclass
class TlsFiles:
    certificate: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate))


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    folder = tmp_path_factory.mktemp("tls")
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(files.key), "-out", str(files.certificate),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return files


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]  # noqa: ANN001
    accepted = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    # handled=False lets aiosmtpd send the 535 reply itself.
    return AuthResult(success=accepted, handled=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _serving(handler: RecordingHandler, **parameters: object) -> Iterator[int]:
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=_authenticate,
        **parameters,
    )
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def starttls_port(tls_files: TlsFiles) -> Iterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler()
    context = tls_files.server_context()
    with _serving(handler, tls_context=context, require_starttls=True) as port:
        yield handler, port


@pytest.fixture
def implicit_tls_port(tls_files: TlsFiles) -> Iterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler()
    # aiosmtpd counts only STARTTLS as encryption, so login over implicit TLS needs this.
    with _serving(handler, ssl_context=tls_files.server_context(), auth_require_tls=False) as port:
        yield handler, port


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "news@news.example.org"
    message["To"] = "anna@example.org"
    message["Subject"] = "Tietyö päättyy"
    message.set_content("Hei")
    return message


def _settings(port: int, security: str, password: str = PASSWORD) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security=security,
        smtp_username=USERNAME,
        smtp_password=password,
    )


def test_starttls_with_login(
    starttls_port: tuple[RecordingHandler, int], tls_files: TlsFiles
) -> None:
    handler, port = starttls_port
    sender = SmtpSender(_settings(port, "starttls"), ssl_context=tls_files.client_context())

    sender.send(_message())
    sender.close()

    assert len(handler.received) == 1


def test_implicit_tls_with_login(
    implicit_tls_port: tuple[RecordingHandler, int], tls_files: TlsFiles
) -> None:
    handler, port = implicit_tls_port
    sender = SmtpSender(_settings(port, "tls"), ssl_context=tls_files.client_context())

    sender.send(_message())
    sender.close()

    assert len(handler.received) == 1


def test_wrong_password_names_settings(
    starttls_port: tuple[RecordingHandler, int], tls_files: TlsFiles
) -> None:
    handler, port = starttls_port
    sender = SmtpSender(
        _settings(port, "starttls", password="wrong"),
        ssl_context=tls_files.client_context(),
        max_attempts=1,
    )

    with pytest.raises(SendError) as caught:
        sender.send(_message())

    assert "NOTICEBOARD_SMTP_PASSWORD" in str(caught.value)
    assert "wrong" not in str(caught.value)
    assert handler.received == []


def test_untrusted_certificate_fails(starttls_port: tuple[RecordingHandler, int]) -> None:
    handler, port = starttls_port
    sender = SmtpSender(_settings(port, "starttls"), max_attempts=1)

    with pytest.raises(SendError) as caught:
        sender.send(_message())

    assert "SSLCertVerificationError" in str(caught.value)
    assert handler.received == []
