"""Posting notices as statuses on a Mastodon-compatible server (Mastodon API v1).

A notice becomes one status with its language, a content warning when configured, the link and
hashtags of its regions and topics. A new version edits that status (`PUT /api/v1/statuses/:id`),
and so does a withdrawal, which puts a note before the text.
Each create sends the ledger's key as `Idempotency-Key`; the Mastodon API documentation of
`POST /api/v1/statuses` states that keys are stored for up to 1 hour. For longer gaps a
reconciling claim first searches the account's recent statuses for the notice's link.
"""

from __future__ import annotations

import html
import logging

import requests

from noticeboard.errors import ConfigError, DeliveryError
from noticeboard.settings import Settings
from publishers import _http
from publishers.channel import WITHDRAWN_LABEL, WITHDRAWN_NOTE, Outgoing, hashtag
from publishers.ledger import Claim

logger = logging.getLogger(__name__)

NAME = "mastodon"
STATUS_CHARS = 500
# Mastodon counts every URL as 23 characters, whatever its length.
URL_CHARS = 23
RECENT_STATUSES = 40
VISIBILITIES = ("public", "unlisted", "private", "direct")


def compose_status(message: Outgoing, spoiler_text: str = "", prefix: str = "") -> str:
    """Return the status text: title, summary, link and hashtags within Mastodon's 500 characters.

    The text is plain, because Mastodon escapes the `status` parameter itself. `prefix` starts
    the text (the withdrawal note).
    """
    tags = [tag for tag in (hashtag(v) for v in (*message.regions, *message.topics)) if tag]
    tag_line = " ".join(dict.fromkeys(tags))
    budget = STATUS_CHARS - len(spoiler_text) - URL_CHARS - len(tag_line) - 6

    text = prefix + message.title.strip()
    summary = message.summary_text.strip()
    if summary and summary != text:
        text = f"{text}\n\n{summary}"
    if len(text) > budget:
        text = text[: max(0, budget - 1)].rstrip() + "…"

    parts = [text, message.link]
    if tag_line:
        parts.append(tag_line)
    return "\n\n".join(parts)


class MastodonChannel:
    """A Mastodon account that statuses are posted by."""

    name = NAME

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        if not settings.mastodon_url or not settings.mastodon_token:
            raise ConfigError(
                "the mastodon publisher needs NOTICEBOARD_MASTODON_URL and NOTICEBOARD_MASTODON_TOKEN; "
                "set both or remove mastodon from NOTICEBOARD_PUBLISHERS"
            )
        if settings.mastodon_visibility not in VISIBILITIES:
            raise ConfigError(
                f"NOTICEBOARD_MASTODON_VISIBILITY={settings.mastodon_visibility!r} is invalid; "
                f"use one of {', '.join(VISIBILITIES)}"
            )
        self.base_url = settings.mastodon_url.rstrip("/")
        self.visibility = settings.mastodon_visibility
        self.spoiler_text = settings.mastodon_spoiler_text
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        self.session = session or _http.new_session(settings)
        self.session.headers["Authorization"] = f"Bearer {settings.mastodon_token}"
        self.pause_seconds: float | None = None
        self._account_id: str | None = None

    def deliver(self, message: Outgoing, claim: Claim) -> str:
        """Post or edit the status of a notice and return its status id."""
        if claim.previous_remote_id:
            return self._edit(claim.previous_remote_id, message)

        if claim.reconcile:
            existing = self._find_posted(message)
            if existing is not None:
                logger.info(
                    "mastodon_reconciled notice=%s version=%d status=%s",
                    message.notice_id,
                    message.version,
                    existing,
                )
                if claim.earlier_version_pending:
                    return self._edit(existing, message)
                return existing

        return self._create(message, claim.idempotency_key)

    def withdraw(self, message: Outgoing, claim: Claim, remote_id: str | None) -> str:
        """Edit the notice's status to say first that the authority withdrew it."""
        if remote_id is None:
            raise DeliveryError(
                f"{NAME}: no status id recorded for notice {message.notice_id}; "
                "nothing to mark withdrawn",
                permanent=True,
            )
        self._send(
            "PUT", f"/api/v1/statuses/{remote_id}", json=self._fields(message, withdrawn=True)
        )
        logger.info(
            "mastodon_withdrawn notice=%s version=%d status=%s",
            message.notice_id,
            message.version,
            remote_id,
        )
        return remote_id

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def _fields(self, message: Outgoing, *, withdrawn: bool = False) -> dict[str, str]:
        prefix = f"[{WITHDRAWN_LABEL}] {WITHDRAWN_NOTE}\n\n" if withdrawn else ""
        fields = {"status": compose_status(message, self.spoiler_text, prefix)}
        if message.language:
            fields["language"] = message.language
        if self.spoiler_text:
            fields["spoiler_text"] = self.spoiler_text
        return fields

    def _create(self, message: Outgoing, key: str) -> str:
        payload = {**self._fields(message), "visibility": self.visibility}
        response = self._send(
            "POST", "/api/v1/statuses", json=payload, headers={"Idempotency-Key": key}
        )
        status_id = str(response.json()["id"])
        logger.info(
            "mastodon_posted notice=%s version=%d status=%s",
            message.notice_id,
            message.version,
            status_id,
        )
        return status_id

    def _edit(self, status_id: str, message: Outgoing) -> str:
        self._send("PUT", f"/api/v1/statuses/{status_id}", json=self._fields(message))
        logger.info(
            "mastodon_edited notice=%s version=%d status=%s",
            message.notice_id,
            message.version,
            status_id,
        )
        return status_id

    def _find_posted(self, message: Outgoing) -> str | None:
        # NOTE: only the newest RECENT_STATUSES statuses are searched, so a lost post older than
        # that is found only through the Idempotency-Key, within its hour.
        if self._account_id is None:
            account = self._send("GET", "/api/v1/accounts/verify_credentials").json()
            self._account_id = str(account["id"])
        statuses = self._send(
            "GET",
            f"/api/v1/accounts/{self._account_id}/statuses",
            params={"limit": RECENT_STATUSES},
        ).json()
        marker = html.escape(message.link, quote=True)
        for status in statuses:
            content = status.get("content") or ""
            if marker in content or message.link in content:
                return str(status["id"])
        return None

    def _send(self, method: str, path: str, **kwargs: object) -> requests.Response:
        response = _http.send(
            self.session, method, self.base_url + path, channel=NAME, timeout=self.timeout, **kwargs
        )
        self.pause_seconds = _http.parse_rate_limit_wait(response.headers)
        return response
