"""Posting notices to a generic webhook: the JSON Feed item, signed.

Headers of every request:

    X-Noticeboard-Event      notice.created (version 1), notice.updated or notice.withdrawn
    X-Noticeboard-Delivery   the ledger's idempotency key; repeats of a delivery reuse it, so a
                             receiver drops a request whose delivery id it has already seen
    X-Noticeboard-Timestamp  Unix seconds when the request was signed
    X-Noticeboard-Signature  sha256=HEX, HMAC-SHA256 with the shared secret over
                             "<timestamp>.<body bytes>"; receivers reject old timestamps
                             to stop replays

`verify_signature` is the receiver's side of that contract.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

import requests

from noticeboard.errors import ConfigError
from noticeboard.settings import Settings
from publishers import _http
from publishers.channel import Outgoing
from publishers.ledger import Claim

logger = logging.getLogger(__name__)

NAME = "webhook"
EVENT_HEADER = "X-Noticeboard-Event"
DELIVERY_HEADER = "X-Noticeboard-Delivery"
TIMESTAMP_HEADER = "X-Noticeboard-Timestamp"
SIGNATURE_HEADER = "X-Noticeboard-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header value of a body sent at `timestamp`."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Check a received request: the signature matches and the timestamp is recent."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), signature)


class WebhookChannel:
    """A receiver URL that each notice version is POSTed to."""

    name = NAME

    def __init__(
        self,
        settings: Settings,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.webhook_url or not settings.webhook_secret:
            raise ConfigError(
                "the webhook publisher needs NOTICEBOARD_WEBHOOK_URL and NOTICEBOARD_WEBHOOK_SECRET "
                "(requests are always signed); set both or remove webhook from NOTICEBOARD_PUBLISHERS"
            )
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        self.session = session or _http.new_session(settings)
        self.clock = clock
        self.pause_seconds: float | None = None

    def deliver(self, message: Outgoing, claim: Claim) -> str:
        """POST the item; a repeat after a crash reuses the delivery id for the receiver to drop."""
        event = "notice.created" if claim.version == 1 else "notice.updated"
        return self._post(message, claim, event)

    def withdraw(self, message: Outgoing, claim: Claim, remote_id: str | None) -> str:
        """POST the item of a notice that the authority withdrew, as event `notice.withdrawn`."""
        return self._post(message, claim, "notice.withdrawn")

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def _post(self, message: Outgoing, claim: Claim, event: str) -> str:
        body = json.dumps(message.item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event,
            DELIVERY_HEADER: claim.idempotency_key,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
        }
        response = _http.send(
            self.session,
            "POST",
            self.url,
            channel=NAME,
            timeout=self.timeout,
            data=body,
            headers=headers,
        )
        self.pause_seconds = _http.parse_rate_limit_wait(response.headers)
        logger.info(
            "webhook_delivered notice=%s version=%d event=%s delivery=%s status=%d",
            message.notice_id,
            message.version,
            event,
            claim.idempotency_key,
            response.status_code,
        )
        return claim.idempotency_key
