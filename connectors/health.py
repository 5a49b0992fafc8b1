"""Source health: the outcome of every fetch, failure backoff, staleness and operator alerts.

Statuses written to `SourceState.last_status`:

- `ok`: the source was fetched and read, and had items;
- `not-modified`: 304, or a body identical to the last one;
- `empty`: the document was read and lists no items;
- `failed`: fetching or reading failed; `last_error` names the URL and the cause;
- `layout-changed`: an HTML page loaded, but the selectors no longer find its notices;
- `stale`: fetched fine, but no new item for `stale_factor` times the source's mean interval
  between new items.

After a failure (`failed` or `layout-changed`) the next fetch waits `FAILURE_BACKOFF_BASE_SECONDS`,
doubled for each further consecutive failure and capped at `failure_backoff_cap`, and at least as
long as a Retry-After the server sent. The first good fetch clears the backoff. Operators are
alerted when the status changes to `failed`, `layout-changed` or `stale`, and once when it
recovers. `alerted_status` stores the status last alerted, so a run that repeats the same status
sends nothing.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import requests

from noticeboard.settings import Settings
from noticeboard.store.tables import SourceState

logger = logging.getLogger(__name__)

OK = "ok"
NOT_MODIFIED = "not-modified"
EMPTY = "empty"
FAILED = "failed"
LAYOUT_CHANGED = "layout-changed"
STALE = "stale"
SKIPPED = "skipped"

HEALTHY = frozenset({OK, NOT_MODIFIED, EMPTY})
FAILURES = frozenset({FAILED, LAYOUT_CHANGED})
ALERT_STATUSES = frozenset({FAILED, LAYOUT_CHANGED, STALE})

FAILURE_BACKOFF_BASE_SECONDS = 15 * 60.0
# Weight of the newest interval in the running mean of intervals between new items.
INTERVAL_WEIGHT = 0.3


@dataclass(frozen=True)
class Outcome:
    """The outcome of one fetch of a source, before staleness is judged."""

    status: str
    error: str | None = None
    warnings: int = 0
    items: int = 0
    new_items: int = 0
    retry_after: float | None = None


def record_outcome(
    state: SourceState, outcome: Outcome, settings: Settings, *, now: datetime
) -> str:
    """Write a fetch outcome into the source's state and return the status recorded."""
    state.last_fetch_at = now

    if outcome.status in FAILURES:
        failures = (state.consecutive_failures or 0) + 1
        delay = failure_backoff(failures, settings)
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        state.consecutive_failures = failures
        state.next_fetch_after = now + timedelta(seconds=delay)
        state.last_error = outcome.error
        state.last_status = outcome.status
        logger.warning(
            "source_unhealthy source=%s status=%s failures=%d retry_in=%.0f error=%s",
            state.source_id,
            outcome.status,
            failures,
            delay,
            outcome.error,
        )
        return outcome.status

    state.consecutive_failures = 0
    state.next_fetch_after = None
    state.last_error = None
    state.last_success_at = now
    if outcome.status != NOT_MODIFIED:
        state.warnings = outcome.warnings
        state.items_last_fetch = outcome.items
    if outcome.new_items:
        _note_new_items(state, now)

    status = STALE if is_stale(state, settings, now=now) else outcome.status
    state.last_status = status
    return status


def failure_backoff(consecutive_failures: int, settings: Settings) -> float:
    """Return the seconds to wait after the given number of consecutive failures."""
    exponent = max(0, consecutive_failures - 1)
    # Limit the exponent so the float stays finite for sources that have failed for months.
    delay = FAILURE_BACKOFF_BASE_SECONDS * (2 ** min(exponent, 32))
    return min(delay, settings.failure_backoff_cap)


def is_stale(state: SourceState, settings: Settings, *, now: datetime) -> bool:
    """Tell whether the source has been silent much longer than its usual interval between items."""
    if state.last_new_item_at is None or not state.mean_interval_seconds:
        return False
    silent = (now - state.last_new_item_at).total_seconds()
    return silent > state.mean_interval_seconds * settings.stale_factor


def alert_on_change(
    state: SourceState, settings: Settings, *, session: requests.Session | None = None
) -> bool:
    """Alert operators when the status changed to or from an alerting one; return whether sent."""
    status = state.last_status
    if status in ALERT_STATUSES and state.alerted_status != status:
        subject = f"Noticeboard: source {state.source_id} is {status}"
        text = f"Source {state.source_id} changed to {status}."
        if state.last_error:
            text += f"\nError: {state.last_error}"
        if status == STALE and state.last_new_item_at is not None:
            text += f"\nLast new item: {state.last_new_item_at.isoformat(timespec='minutes')}"
    elif status in HEALTHY and state.alerted_status:
        subject = f"Noticeboard: source {state.source_id} recovered"
        text = f"Source {state.source_id} is {status} again after being {state.alerted_status}."
    else:
        return False

    details = {
        "source_id": state.source_id,
        "status": status,
        "failures": state.consecutive_failures,
    }
    delivered = alert_operators(
        settings, subject=subject, text=text, details=details, session=session
    )
    if delivered or not _channels(settings):
        state.alerted_status = status if status in ALERT_STATUSES else None
    return bool(delivered)


def alert_operators(
    settings: Settings,
    *,
    subject: str,
    text: str,
    details: dict[str, Any] | None = None,
    session: requests.Session | None = None,
) -> list[str]:
    """Send an alert to the configured webhook and e-mail address; return the channels that took it.

    Failures to deliver are logged and never raised, so an alert cannot break the run it reports on.
    With no channel configured the alert is only logged.
    """
    delivered: list[str] = []
    logger.warning("operator_alert subject=%s", subject)

    if settings.alert_webhook_url:
        try:
            _post_webhook(settings, subject, text, details or {}, session)
            delivered.append("webhook")
        except requests.RequestException as error:
            # The webhook URL is a secret, so only the error type and status are logged.
            status = getattr(error.response, "status_code", None)
            logger.error(
                "alert_failed channel=webhook error=%s status=%s", type(error).__name__, status
            )

    if settings.alert_email:
        try:
            _send_email(settings, subject, text)
            delivered.append("email")
        except (smtplib.SMTPException, OSError) as error:
            # The text of SMTPRecipientsRefused names the address, so only the type and the SMTP
            # reply code are logged.
            logger.error(
                "alert_failed channel=email error=%s smtp_code=%s",
                type(error).__name__,
                getattr(error, "smtp_code", None),
            )

    return delivered


def _channels(settings: Settings) -> list[str]:
    return [
        name
        for name, value in (
            ("webhook", settings.alert_webhook_url),
            ("email", settings.alert_email),
        )
        if value
    ]


def _post_webhook(
    settings: Settings,
    subject: str,
    text: str,
    details: dict[str, Any],
    session: requests.Session | None,
) -> None:
    payload = {"subject": subject, "text": text, **details}
    response = (session or requests).post(
        settings.alert_webhook_url,
        data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=(settings.connect_timeout, settings.read_timeout),
    )
    response.raise_for_status()


def _send_email(settings: Settings, subject: str, text: str) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.mail_from
    message["To"] = settings.alert_email
    message.set_content(text)

    timeout = settings.connect_timeout + settings.read_timeout
    # Without a context smtplib (Python 3.11) checks no certificate. The default context checks
    # the certificate chain and the host name.
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.smtp_security == "tls":
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with smtp:
        if settings.smtp_security == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


def _note_new_items(state: SourceState, now: datetime) -> None:
    # NOTE: the rhythm is learnt from fetch times at which new items appeared, not from the items'
    # published dates, so it is only as fine as the fetch schedule.
    if state.last_new_item_at is not None:
        interval = (now - state.last_new_item_at).total_seconds()
        if interval > 0:
            previous = state.mean_interval_seconds
            state.mean_interval_seconds = (
                interval
                if previous is None
                else (1 - INTERVAL_WEIGHT) * previous + INTERVAL_WEIGHT * interval
            )
    state.last_new_item_at = now
