"""HTTP calls of the channels: errors classified for the ledger, rate limits read from headers.

Responses map to `DeliveryError` as the ledger needs them: connection errors, timeouts, 429 and 5xx
are transient (429 and 503 carry the platform's Retry-After); any other 4xx is permanent. The
request URL in messages never carries a credential, because channels send tokens in headers.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

import requests

from noticeboard.errors import DeliveryError
from noticeboard.settings import Settings

logger = logging.getLogger(__name__)

USER_AGENT = "Noticeboard/0.1 (+{contact})"
ERROR_BODY_CHARS = 300


def new_session(settings: Settings) -> requests.Session:
    """Return a session with Noticeboard's User-Agent and no proxy taken from the environment."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT.format(contact=settings.user_agent_contact)
    return session


def parse_retry_after(value: str | None, *, clock: Callable[[], float] = time.time) -> float | None:
    """Return the delay in seconds of a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - clock())


def parse_rate_limit_wait(headers: Any, *, clock: Callable[[], float] = time.time) -> float | None:
    """Return the seconds until the platform's rate limit resets, when no request is left.

    `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` as an ISO 8601 time (Mastodon), Unix
    seconds, or seconds from now (both seen on other platforms).
    """
    remaining = headers.get("X-RateLimit-Remaining")
    if remaining is None:
        return None
    try:
        if float(remaining) > 0:
            return None
    except ValueError:
        return None

    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if not reset:
        return 60.0
    try:
        number = float(reset)
    except ValueError:
        try:
            moment = datetime.fromisoformat(reset.replace("Z", "+00:00"))
        except ValueError:
            return 60.0
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max(0.0, moment.timestamp() - clock())
    if number > 1_000_000_000:
        return max(0.0, number - clock())
    return max(0.0, number)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    channel: str,
    timeout: tuple[float, float],
    accept: Collection[int] = (),
    **kwargs: Any,
) -> requests.Response:
    """Send a request and return a 2xx response, or one whose status is in `accept`.

    Raises `DeliveryError` (transient or permanent) for every other outcome.
    """
    try:
        response = session.request(method, url, timeout=timeout, allow_redirects=True, **kwargs)
    except requests.Timeout as error:
        raise DeliveryError(f"{channel}: {method} {url} timed out: {error}") from error
    except requests.RequestException as error:
        raise DeliveryError(f"{channel}: {method} {url} failed: {error}") from error

    status = response.status_code
    if 200 <= status < 300 or status in accept:
        return response

    body = response.text[:ERROR_BODY_CHARS].replace("\n", " ")
    message = f"{channel}: {method} {url} returned HTTP {status}: {body}"
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None and status == 429:
            retry_after = parse_rate_limit_wait(response.headers)
        raise DeliveryError(message, retry_after=retry_after)
    raise DeliveryError(
        message + "; fix the request or the channel settings, it will not be retried",
        permanent=True,
    )
