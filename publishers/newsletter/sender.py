"""Sending messages over SMTP, or writing them to a folder for a dry run.

`SmtpSender` opens one connection per batch of messages (plain, STARTTLS or implicit TLS, with
login when `smtp_username` is set), retries transient failures with exponential backoff and
raises `SendError` with `permanent=True` for 5xx replies. `recipient_rejected` marks a 5xx
reply to RCPT TO, which means the address itself bounces.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from noticeboard.errors import ConfigError, DeliveryError
from noticeboard.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 50
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BACKOFF_SECONDS = 2.0
DEFAULT_TIMEOUT_SECONDS = 30.0
SECURITY_MODES = ("none", "starttls", "tls")
_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")


class SendError(DeliveryError):
    """The SMTP server did not accept a message.

    `recipient_level` marks a reply about this recipient only (such as greylisting), which says
    nothing about other messages. `recipient_rejected` means the address bounced permanently.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        recipient_rejected: bool = False,
        recipient_level: bool = False,
    ) -> None:
        super().__init__(message, permanent=permanent)
        self.recipient_rejected = recipient_rejected
        self.recipient_level = recipient_level


class SmtpSender:
    """Sends messages through the SMTP server named in the settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if settings.smtp_security not in SECURITY_MODES:
            raise ConfigError(
                f"NOTICEBOARD_SMTP_SECURITY={settings.smtp_security!r} is invalid; "
                f"use one of {', '.join(SECURITY_MODES)}"
            )
        self.settings = settings
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.timeout = timeout
        self.sleep = sleep
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._connection: smtplib.SMTP | None = None
        self._sent_on_connection = 0

    def send(self, message: EmailMessage) -> None:
        """Send one message, retrying transient failures; raise `SendError` when it fails."""
        last_error: SendError | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._send_once(message)
                return
            except SendError as error:
                if error.permanent:
                    raise
                last_error = error
            self.close()
            if attempt < self.max_attempts:
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                logger.warning(
                    "smtp retry attempt=%d delay=%.1f error=%s", attempt, delay, last_error
                )
                self.sleep(delay)
        assert last_error is not None
        raise last_error

    def close(self) -> None:
        """Quit the open connection, if any."""
        if self._connection is None:
            return
        try:
            self._connection.quit()
        except (smtplib.SMTPException, OSError):
            self._connection.close()
        self._connection = None
        self._sent_on_connection = 0

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send_once(self, message: EmailMessage) -> None:
        try:
            connection = self._connect()
            connection.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            raise _recipients_error(error) from error
        except smtplib.SMTPNotSupportedError as error:
            raise SendError(
                f"the SMTP server cannot take this message: {error}", permanent=True
            ) from error
        except smtplib.SMTPAuthenticationError as error:
            raise SendError(
                f"SMTP login failed with {error.smtp_code}; check NOTICEBOARD_SMTP_USERNAME "
                "and NOTICEBOARD_SMTP_PASSWORD",
                permanent=False,
            ) from error
        except smtplib.SMTPResponseException as error:
            raise SendError(
                f"SMTP server replied {error.smtp_code}: {_text(error.smtp_error)}",
                permanent=error.smtp_code >= 500,
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise SendError(
                f"SMTP connection to {self.settings.smtp_host}:{self.settings.smtp_port} failed: "
                f"{type(error).__name__}: {error}",
                permanent=False,
            ) from error

        self._sent_on_connection += 1
        if self._sent_on_connection >= self.batch_size:
            self.close()

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        host, port = self.settings.smtp_host, self.settings.smtp_port
        connection: smtplib.SMTP
        if self.settings.smtp_security == "tls":
            connection = smtplib.SMTP_SSL(
                host, port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            connection = smtplib.SMTP(host, port, timeout=self.timeout)
        try:
            connection.ehlo()
            if self.settings.smtp_security == "starttls":
                connection.starttls(context=self.ssl_context)
                connection.ehlo()
            if self.settings.smtp_username:
                connection.login(self.settings.smtp_username, self.settings.smtp_password)
        except BaseException:
            connection.close()
            raise
        logger.info(
            "smtp connected host=%s port=%s security=%s", host, port, self.settings.smtp_security
        )
        self._connection = connection
        return connection


class DirectorySender:
    """Writes each message as an `.eml` file in a folder instead of sending it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def write(self, message: EmailMessage, name: str) -> Path:
        path = self.folder / f"{name}.eml"
        path.write_bytes(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
        self.written.append(path)
        return path


def _recipients_error(error: smtplib.SMTPRecipientsRefused) -> SendError:
    codes = [code for code, _ in error.recipients.values()]
    permanent = bool(codes) and all(code >= 500 for code in codes)
    reasons = "; ".join(f"{code} {_text(reason)}" for code, reason in error.recipients.values())
    return SendError(
        f"SMTP server rejected the recipient: {reasons}",
        permanent=permanent,
        recipient_rejected=permanent,
        recipient_level=True,
    )


def _text(reply: bytes | str) -> str:
    """Decode a server reply and mask any address in it, because replies end up in logs."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return _ADDRESS.sub("<address>", text)
