"""Sending messages over SMTP, or writing them to a folder for a dry run.

`SmtpSender` opens one connection per batch of messages (plain, STARTTLS or implicit TLS, with
login when `smtp_username` is set), retries transient failures with exponential backoff and
raises `SendError` with `permanent=True` for 5xx replies. `recipient_rejected` marks a 5xx
reply to RCPT TO, which means the address itself bounces.

`SmtpSender.send` splits the SMTP transaction at its point of no return, so that the caller can
record it. A server processes a message only when it receives the line "." that ends the
message data (RFC 5321, section 4.1.1.4), and a client that loses the connection before then
treats the transaction as failed (section 3.8). So `send` writes MAIL FROM, RCPT TO, DATA and the
dot-stuffed message, calls the caller's `checkpoint`, and only then writes the end line and reads
the reply. A connection failure after the end line raises `OutcomeUnknownError`, which is never
retried, because the server may have accepted the message.
"""

from __future__ import annotations

import copy
import email.generator
import email.utils
import io
import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
END_OF_DATA = b".\r\n"
_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)

Checkpoint = Callable[[], None]


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


class OutcomeUnknownError(SendError):
    """The connection failed after the end of the message data, before a usable reply.

    The server may have accepted the message, so the caller must not send it again.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=False)


@dataclass(frozen=True)
class _Envelope:
    """The envelope addresses, MAIL FROM options and data of one SMTP transaction."""

    sender: str
    recipients: list[str]
    mail_options: tuple[str, ...]
    data: bytes


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
        self._in_data = False

    def send(
        self,
        message: EmailMessage,
        *,
        checkpoint: Checkpoint | None = None,
        rejected: Callable[[SendError], None] | None = None,
    ) -> None:
        """Send one message, retrying transient failures; raise `SendError` when it fails.

        Each attempt calls `checkpoint` after writing the message data and before writing the
        line that ends it. An exception from `checkpoint` closes the connection, so the server
        discards the transaction, and propagates unchanged. When the server replies to the end
        line with 4xx or 5xx, `rejected` gets the error before any retry, because the server has
        not accepted the message. A connection failure after the end line raises
        `OutcomeUnknownError` at once, without a retry.
        """
        last_error: SendError | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._send_once(message, checkpoint or _ignore, rejected or _ignore)
                return
            except OutcomeUnknownError:
                raise
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
        """Quit the open connection, if any; in the middle of message data, drop it instead."""
        if self._connection is None:
            return
        if self._in_data:
            # QUIT would become a line of the message data. Closing the socket makes the server
            # discard the unfinished transaction.
            self._connection.close()
        else:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                self._connection.close()
        self._connection = None
        self._sent_on_connection = 0
        self._in_data = False

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send_once(
        self,
        message: EmailMessage,
        checkpoint: Checkpoint,
        rejected: Callable[[SendError], None],
    ) -> None:
        with self._mapped_errors():
            connection = self._connect()
            self._write_data(connection, message)
        try:
            checkpoint()
        except BaseException:
            self.close()
            raise
        rejection = self._end_data(connection)
        if rejection is not None:
            rejected(rejection)
            raise rejection

        self._sent_on_connection += 1
        if self._sent_on_connection >= self.batch_size:
            self.close()

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """Turn the smtplib and socket errors raised before the end of the data into `SendError`."""
        try:
            yield
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
                f"SMTP connection to {self._server()} failed: {type(error).__name__}: {error}",
                permanent=False,
            ) from error

    def _write_data(self, connection: smtplib.SMTP, message: EmailMessage) -> None:
        """Run MAIL FROM, RCPT TO and DATA, then write the message data without its end line.

        The replies are checked as `smtplib.SMTP.sendmail` checks them, and the same exceptions
        are raised. A rejected recipient among several is skipped, as sendmail does.
        """
        envelope = _envelope(message, smtputf8=connection.has_extn("smtputf8"))
        options: list[str] = []
        if connection.does_esmtp:
            if connection.has_extn("size"):
                options.append(f"size={len(envelope.data)}")
            options.extend(envelope.mail_options)

        code, reply = connection.mail(envelope.sender, options)
        if code != 250:
            self._abandon(connection, code)
            raise smtplib.SMTPSenderRefused(code, reply, envelope.sender)

        rejections: dict[str, tuple[int, bytes]] = {}
        for recipient in envelope.recipients:
            code, reply = connection.rcpt(recipient)
            if code not in (250, 251):
                rejections[recipient] = (code, reply)
            if code == 421:
                self.close()
                raise smtplib.SMTPRecipientsRefused(rejections)
        if len(rejections) == len(envelope.recipients):
            self._abandon(connection, 0)
            raise smtplib.SMTPRecipientsRefused(rejections)

        code, reply = connection.docmd("data")
        if code != 354:
            self._abandon(connection, code)
            raise smtplib.SMTPDataError(code, reply)
        self._in_data = True
        connection.send(dot_stuffed(envelope.data))

    def _end_data(self, connection: smtplib.SMTP) -> SendError | None:
        """Write the end line and read the reply: the point after which the server may deliver.

        Return the error for a 4xx or 5xx reply, and None when the server accepted the message.
        """
        try:
            connection.send(END_OF_DATA)
            code, reply = connection.getreply()
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise OutcomeUnknownError(
                f"SMTP connection to {self._server()} failed after the end of the message data "
                f"and before the reply: {type(error).__name__}: {error}; the server may have "
                "accepted the message"
            ) from error
        self._in_data = False
        if code == 250:
            return None
        if 400 <= code < 600:
            self._abandon(connection, code)
            return SendError(f"SMTP server replied {code}: {_text(reply)}", permanent=code >= 500)
        self.close()
        raise OutcomeUnknownError(
            f"SMTP server {self._server()} sent the invalid reply {code} {_text(reply)!r} to the "
            "end of the message data; the server may have accepted the message"
        )

    def _abandon(self, connection: smtplib.SMTP, code: int) -> None:
        """Leave a rejected transaction: RSET, or close after 421 (the server is closing)."""
        if code == 421:
            self.close()
            return
        try:
            connection.rset()
        except smtplib.SMTPServerDisconnected:
            # The next command reconnects, and the caller needs only the rejection itself.
            self.close()

    def _server(self) -> str:
        return f"{self.settings.smtp_host}:{self.settings.smtp_port}"

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


def dot_stuffed(data: bytes) -> bytes:
    """Prepare message data for DATA: CRLF line ends, a final CRLF and leading dots doubled.

    The result lacks the end line `END_OF_DATA`. Lone CR and LF become CRLF as
    `smtplib.quotedata` does for text, because SMTP servers must not read a bare LF as a line end
    (RFC 5321, section 4.1.1.4).
    """
    normalised = _LINE_END.sub(b"\r\n", data)
    if not normalised.endswith(b"\r\n"):
        normalised += b"\r\n"
    return _LEADING_DOT.sub(b"..", normalised)


def _envelope(message: EmailMessage, *, smtputf8: bool) -> _Envelope:
    """Derive the envelope and the data of `message` as `smtplib.SMTP.send_message` does.

    The sender is `Sender` or `From`, the recipients are `To`, `Bcc` and `Cc`, and `Bcc` is not
    sent. A non-ASCII address needs the server's SMTPUTF8 extension and is sent with SMTPUTF8 and
    BODY=8BITMIME. `Resent-*` headers are not read, because newsletter mails never carry them.
    """
    sender_field = message["Sender"] if "Sender" in message else message["From"]
    if sender_field is None:
        raise ValueError("the message has neither a Sender nor a From header; set From")
    sender = email.utils.getaddresses([str(sender_field)])[0][1]
    fields = [
        str(value) for value in (message["To"], message["Bcc"], message["Cc"]) if value is not None
    ]
    recipients = [address for _, address in email.utils.getaddresses(fields)]

    international = not "".join([sender, *recipients]).isascii()
    if international and not smtputf8:
        raise smtplib.SMTPNotSupportedError(
            "One or more source or delivery addresses require internationalized email support, "
            "but the server does not advertise the required SMTPUTF8 capability"
        )
    unsent = copy.copy(message)
    del unsent["Bcc"]
    del unsent["Resent-Bcc"]
    # `utf8` is a setting of EmailPolicy, the policy of every EmailMessage.
    policy = message.policy.clone(utf8=True) if international else None  # type: ignore[call-arg]
    with io.BytesIO() as buffer:
        email.generator.BytesGenerator(buffer, policy=policy).flatten(unsent, linesep="\r\n")
        data = buffer.getvalue()
    options = ("SMTPUTF8", "BODY=8BITMIME") if international else ()
    return _Envelope(sender, recipients, options, data)


def _ignore(*_args: object) -> None:
    return None


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
