"""robots.txt rules per host, fetched once and cached.

Status handling follows RFC 9309 section 2.3.1: a 4xx response (robots.txt missing) allows
everything, while a 5xx response or a network failure means the rules are unknown, and the crawler
must not fetch anything from the host. That case raises `FetchError`, which is transient, so the
source is retried later instead of failing for good. Rules are kept for `ROBOTS_TTL_SECONDS`, the
24 hours that RFC 9309 section 2.4 names as the longest a cached copy should be used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from noticeboard.errors import BlockedError, FetchError

logger = logging.getLogger(__name__)

ROBOTS_TTL_SECONDS = 24 * 3600.0
# RFC 9309 section 2.5 requires a parsing limit of at least 500 KiB. A longer file is cut there
# (the fetcher reads no further) and the rules before the cut apply.
ROBOTS_MAX_BYTES = 512 * 1024
ROBOTS_AGENT_TOKEN = "Noticeboard"

# Fetches robots.txt: takes its URL and the source id, returns (status, body), and raises
# FetchError when the host is unreachable.
RobotsLoader = Callable[[str, str], tuple[int, bytes]]


@dataclass
class _Entry:
    parser: RobotFileParser
    loaded_at: float


class RobotsCache:
    """robots.txt parsers by scheme and host, loaded on first use through `loader`."""

    def __init__(
        self, loader: RobotsLoader, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._loader = loader
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def check(self, url: str, *, source_id: str) -> None:
        """Raise `BlockedError` when robots.txt of the URL's host disallows it."""
        parser = self._parser_for(url, source_id)
        if not parser.can_fetch(ROBOTS_AGENT_TOKEN, url):
            logger.warning("robots_disallowed source=%s url=%s", source_id, url)
            raise BlockedError(
                source_id,
                url,
                "robots.txt of the host disallows this path for Noticeboard; "
                "ask the authority for access or use another URL",
            )

    def _parser_for(self, url: str, source_id: str) -> RobotFileParser:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        entry = self._entries.get(origin)
        if entry is not None and self._clock() - entry.loaded_at < ROBOTS_TTL_SECONDS:
            return entry.parser

        robots_url = origin + "/robots.txt"
        try:
            status, body = self._loader(robots_url, source_id)
        except FetchError as error:
            raise FetchError(
                source_id,
                url,
                f"robots.txt at {robots_url} could not be fetched ({error.cause}), "
                "so its rules are unknown",
            ) from error
        parser = RobotFileParser(robots_url)
        if 200 <= status < 300:
            parser.parse(_complete_lines(body).decode("utf-8", errors="replace").splitlines())
        elif 400 <= status < 500:
            parser.parse([])
        else:
            raise FetchError(
                source_id,
                url,
                f"robots.txt at {robots_url} answered HTTP {status}, so its rules are unknown; "
                "the host is not fetched until it answers",
            )
        logger.debug("robots_loaded source=%s url=%s status=%s", source_id, robots_url, status)
        self._entries[origin] = _Entry(parser, self._clock())
        return parser


def _complete_lines(body: bytes) -> bytes:
    """Drop a line cut off at the size limit, so that no shortened path becomes a rule."""
    if len(body) < ROBOTS_MAX_BYTES:
        return body
    body = body[:ROBOTS_MAX_BYTES]
    return body[: body.rfind(b"\n") + 1]
