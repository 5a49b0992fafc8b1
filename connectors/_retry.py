"""When to retry a request and how long to wait first.

Connection errors, timeouts, HTTP 429 and 5xx are transient. The wait before retry number n
(counted from 0) is `backoff_base * 2**n`, with jitter that keeps it between half and all of that
value, so that many workers hitting the same host do not retry in step. A `Retry-After` header
(RFC 9110 section 10.2.3: delay seconds or an HTTP date) replaces the computed wait. When it requests
more than `retry_after_ceiling` seconds the request is not retried in this run, and the error
carries the delay so the source's next fetch can be scheduled after it.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from noticeboard.errors import FetchError

RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))


class RateLimitedError(FetchError):
    """The server asked to wait longer than the configured ceiling (`retry_after` seconds)."""

    def __init__(self, source_id: str, url: str, cause: str, *, retry_after: float) -> None:
        super().__init__(source_id, url, cause)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the delay in seconds of a Retry-After header value, or None if it is invalid."""
    if value is None or not value.strip():
        return None
    value = value.strip()

    if value.isdigit():
        return float(value)

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        # RFC 9110 HTTP dates are always GMT, and parsedate_to_datetime returns naive for "-0000".
        moment = moment.replace(tzinfo=UTC)

    now = now or datetime.now(UTC)
    return max(0.0, (moment - now).total_seconds())


def backoff_delay(attempt: int, base: float, rng: random.Random | None = None) -> float:
    """Return the wait before retry number `attempt` (from 0): exponential with jitter."""
    full = base * (2**attempt)
    jitter = (rng or random).random()
    return full * (0.5 + jitter / 2)
