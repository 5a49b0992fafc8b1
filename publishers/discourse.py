"""Posting notices as Discourse topics (Discourse REST API).

A notice becomes one topic in the category mapped from its region, tagged with its topics and
carrying `external_id`, so the topic can be looked up by notice (`GET /t/external_id/:id.json`)
before any create. A new version edits the topic's first post and its title. A withdrawal edits
them too, with a note before the post and `[Withdrawn]` before the title.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re

import requests

from noticeboard.errors import ConfigError, DeliveryError
from noticeboard.settings import Settings
from publishers import _http
from publishers.channel import WITHDRAWN_LABEL, WITHDRAWN_NOTE, Outgoing
from publishers.ledger import Claim

logger = logging.getLogger(__name__)

NAME = "discourse"
# Discourse limits external_id to 50 characters.
EXTERNAL_ID_CHARS = 50
TAG_PATTERN = re.compile(r"[^a-z0-9_-]+")


def parse_categories(value: str) -> dict[str, int]:
    """Parse `FI=5,SE=6` into a region-to-category-id map."""
    categories: dict[str, int] = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        region, separator, category = part.partition("=")
        if not separator or not category.strip().isdigit():
            raise ConfigError(
                f"NOTICEBOARD_DISCOURSE_CATEGORIES entry {part!r} is invalid; "
                "use REGION=CATEGORY_ID pairs separated by commas, e.g. FI=5,SE=6"
            )
        categories[region.strip()] = int(category)
    return categories


def external_id(notice_id: str) -> str:
    """Return the topic's external id: the notice id, hashed when too long for Discourse."""
    candidate = f"nb-{notice_id}"
    if len(candidate) <= EXTERNAL_ID_CHARS:
        return candidate
    return "nb-" + hashlib.sha256(notice_id.encode()).hexdigest()[:40]


def category_for(regions: tuple[str, ...], categories: dict[str, int]) -> int | None:
    """Return the category of the first region mapped, trying `FI-18` before its country `FI`."""
    for region in regions:
        if region in categories:
            return categories[region]
    for region in regions:
        country = region.split("-", 1)[0]
        if country in categories:
            return categories[country]
    return None


def compose_raw(message: Outgoing) -> str:
    """Return the first post: the sanitised body (or summary), the link and the authority.

    Discourse renders `raw` as Markdown with inline HTML, so plain text is HTML-escaped here.
    The link is already safe to embed (`publishers.jsonfeed.public_url`).
    """
    body = message.body_html or html.escape(message.summary_text or message.title)
    return f"{body}\n\n{message.link}\n\n— {html.escape(message.authority)}"


def topic_tags(topics: tuple[str, ...]) -> list[str]:
    """Return Discourse tag names (lower case, letters, digits, `_` and `-`) of the topic slugs."""
    tags = [TAG_PATTERN.sub("-", topic.lower()).strip("-") for topic in topics]
    return [tag for tag in dict.fromkeys(tags) if tag]


class DiscourseChannel:
    """A Discourse forum that topics are created on."""

    name = NAME

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        if not settings.discourse_url or not settings.discourse_api_key:
            raise ConfigError(
                "the discourse publisher needs NOTICEBOARD_DISCOURSE_URL and NOTICEBOARD_DISCOURSE_API_KEY; "
                "set both or remove discourse from NOTICEBOARD_PUBLISHERS"
            )
        self.base_url = settings.discourse_url.rstrip("/")
        self.categories = parse_categories(settings.discourse_categories)
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        self.session = session or _http.new_session(settings)
        self.session.headers["Api-Key"] = settings.discourse_api_key
        self.session.headers["Api-Username"] = settings.discourse_username
        self.pause_seconds: float | None = None

    def deliver(self, message: Outgoing, claim: Claim) -> str:
        """Create or edit the topic of a notice and return `topic_id/post_id`."""
        if claim.previous_remote_id:
            return self._edit(claim.previous_remote_id, message)

        existing = self._find_topic(message)
        if existing is not None:
            logger.info(
                "discourse_reconciled notice=%s version=%d topic=%s",
                message.notice_id,
                message.version,
                existing,
            )
            if claim.earlier_version_pending or claim.version > 1:
                return self._edit(existing, message)
            return existing

        return self._create(message)

    def withdraw(self, message: Outgoing, claim: Claim, remote_id: str | None) -> str:
        """Edit the first post and title of the notice's topic to say the authority withdrew it."""
        if remote_id is None:
            raise DeliveryError(
                f"{NAME}: no topic id recorded for notice {message.notice_id}; "
                "nothing to mark withdrawn",
                permanent=True,
            )
        note = f"<p><strong>{WITHDRAWN_LABEL}.</strong> {html.escape(WITHDRAWN_NOTE)}</p>"
        self._edit(
            remote_id,
            message,
            raw=f"{note}\n\n{compose_raw(message)}",
            title=f"[{WITHDRAWN_LABEL}] {message.title}",
            reason="withdrawn by the authority",
        )
        return remote_id

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def _find_topic(self, message: Outgoing) -> str | None:
        response = self._send(
            "GET", f"/t/external_id/{external_id(message.notice_id)}.json", accept=(404,)
        )
        if response.status_code == 404:
            return None
        topic = response.json()
        first_post = topic["post_stream"]["posts"][0]["id"]
        return f"{topic['id']}/{first_post}"

    def _create(self, message: Outgoing) -> str:
        payload: dict[str, object] = {
            "title": message.title,
            "raw": compose_raw(message),
            "external_id": external_id(message.notice_id),
            "tags": topic_tags(message.topics),
        }
        category = category_for(message.regions, self.categories)
        if category is not None:
            payload["category"] = category
        post = self._send("POST", "/posts.json", json=payload).json()
        remote_id = f"{post['topic_id']}/{post['id']}"
        logger.info(
            "discourse_posted notice=%s version=%d topic=%s",
            message.notice_id,
            message.version,
            remote_id,
        )
        return remote_id

    def _edit(
        self,
        remote_id: str,
        message: Outgoing,
        *,
        raw: str | None = None,
        title: str | None = None,
        reason: str = "new version from the authority",
    ) -> str:
        topic_id, _, post_id = remote_id.partition("/")
        self._send(
            "PUT",
            f"/posts/{post_id}.json",
            json={"post": {"raw": raw or compose_raw(message), "edit_reason": reason}},
        )
        self._send("PUT", f"/t/-/{topic_id}.json", json={"title": title or message.title})
        logger.info(
            "discourse_edited notice=%s version=%d topic=%s reason=%r",
            message.notice_id,
            message.version,
            remote_id,
            reason,
        )
        return remote_id

    def _send(self, method: str, path: str, **kwargs: object) -> requests.Response:
        response = _http.send(
            self.session, method, self.base_url + path, channel=NAME, timeout=self.timeout, **kwargs
        )
        self.pause_seconds = _http.parse_rate_limit_wait(response.headers)
        return response
