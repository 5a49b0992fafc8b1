"""The HTTP fetcher that every connector uses.

`HttpFetcher.fetch` sends one conditional GET and returns a `FetchedDocument`. Around that one call
it keeps the rules that make Noticeboard a polite client:

- a User-Agent that names Noticeboard and the operator's contact URL;
- robots.txt per host (cached, see `_robots`) and a per-host minimum interval between requests
  (the budget, see `budget`), for robots.txt requests and retries too;
- connect and read timeouts, a body size limit checked while streaming, and at most
  `MAX_REDIRECTS` redirects, each only to http or https;
- retries with exponential backoff and jitter on connection errors, timeouts, 429 and 5xx,
  honouring Retry-After (see `_retry`);
- gzip and deflate bodies, and the document's charset chosen as `_charset` describes.

Every request goes through the `requests.Session` given to the fetcher, so a transport adapter
mounted on it (the replay of recorded responses) serves robots.txt requests as well.

Errors are `SourceError` subclasses that name the source, the URL and the cause: `FetchError`
(transient: network, 429, 5xx), `BlockedError` (robots.txt, a redirect not allowed) and
`ResponseError` (another 4xx, a body over the limit, a body that cannot be decompressed).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError

from connectors._charset import decode_document
from connectors._retry import RETRY_STATUSES, RateLimitedError, backoff_delay, parse_retry_after
from connectors._robots import ROBOTS_MAX_BYTES, RobotsCache
from connectors.budget import HostBudgetProtocol, InMemoryHostBudget
from noticeboard.errors import BlockedError, FetchError, ResponseError
from noticeboard.settings import Settings

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
ALLOWED_SCHEMES = ("http", "https")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, "
    "text/html;q=0.8, */*;q=0.5"
)


def _package_version() -> str:
    try:
        return version("noticeboard")
    except PackageNotFoundError:
        return "0"


@dataclass(frozen=True)
class FetchedDocument:
    """A fetched document: the final response's status and headers, raw body and decoded text.

    `headers` has lower-case names. For a 304 response `not_modified` is true and body and text are
    empty. `decode_errors` counts the bytes replaced while decoding, and `encoding_warning`
    describes a mismatch between the declared and the actual encoding.
    """

    url: str
    final_url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    text: str = ""
    charset: str | None = None
    decode_errors: int = 0
    not_modified: bool = False
    encoding_warning: str | None = None

    @property
    def content_type(self) -> str:
        """The Content-Type header value, or an empty string."""
        return self.headers.get("content-type", "")

    @property
    def etag(self) -> str | None:
        """The ETag validator to send as If-None-Match next time."""
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        """The Last-Modified validator to send as If-Modified-Since next time."""
        return self.headers.get("last-modified")


@dataclass
class _Reply:
    response: requests.Response
    url: str
    body: bytes


class HttpFetcher:
    """Fetches documents politely; one instance serves many sources and hosts."""

    def __init__(
        self,
        settings: Settings,
        budget: HostBudgetProtocol | None = None,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.budget: HostBudgetProtocol = budget or InMemoryHostBudget()
        self.session = session or requests.Session()
        self.user_agent = f"Noticeboard/{_package_version()} (+{settings.user_agent_contact})"
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._robots = RobotsCache(self._load_robots)

    def fetch(
        self,
        url: str,
        *,
        source_id: str,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchedDocument:
        """GET `url` for `source_id`, conditionally when validators are given."""
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified

        started = time.monotonic()
        reply = self._follow(url, source_id, headers, check_robots=self.settings.respect_robots)
        status = reply.response.status_code
        response_headers = {name.lower(): value for name, value in reply.response.headers.items()}
        elapsed = time.monotonic() - started

        if status == 304:
            logger.info("fetched source=%s url=%s status=304 seconds=%.2f", source_id, url, elapsed)
            return FetchedDocument(url, reply.url, status, response_headers, not_modified=True)

        if not 200 <= status < 300:
            raise ResponseError(
                source_id,
                reply.url,
                f"server answered {_status_cause(reply.response)}; check the URL in the catalog",
            )

        decoded = decode_document(reply.body, response_headers.get("content-type"))
        if decoded.warning:
            logger.warning(
                "charset_mismatch source=%s url=%s charset=%s replaced=%d detail=%s",
                source_id,
                reply.url,
                decoded.charset,
                decoded.decode_errors,
                decoded.warning,
            )
        logger.info(
            "fetched source=%s url=%s status=%s bytes=%d seconds=%.2f",
            source_id,
            reply.url,
            status,
            len(reply.body),
            elapsed,
        )
        return FetchedDocument(
            url=url,
            final_url=reply.url,
            status=status,
            headers=response_headers,
            body=reply.body,
            text=decoded.text,
            charset=decoded.charset,
            decode_errors=decoded.decode_errors,
            encoding_warning=decoded.warning,
        )

    def _follow(
        self,
        url: str,
        source_id: str,
        headers: dict[str, str],
        *,
        check_robots: bool,
        max_bytes: int | None = None,
    ) -> _Reply:
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            _check_scheme(current, source_id, url)
            if check_robots:
                self._robots.check(current, source_id=source_id)

            reply = self._send(current, source_id, headers, max_bytes=max_bytes)
            location = reply.response.headers.get("location")
            if reply.response.status_code not in REDIRECT_STATUSES or not location:
                return reply

            target = urljoin(current, location.strip())
            if urlsplit(target).scheme.lower() not in ALLOWED_SCHEMES:
                raise BlockedError(
                    source_id,
                    url,
                    f"{current} redirects to {target!r}; "
                    "only http and https redirects are followed",
                )
            if hop == MAX_REDIRECTS:
                raise BlockedError(
                    source_id,
                    url,
                    f"more than {MAX_REDIRECTS} redirects (last one to {target}); check the URL",
                )
            logger.debug(
                "redirect source=%s from=%s to=%s status=%s",
                source_id,
                current,
                target,
                reply.response.status_code,
            )
            current = target

        raise AssertionError("unreachable: the redirect loop returns or raises")

    def _send(
        self, url: str, source_id: str, headers: dict[str, str], *, max_bytes: int | None
    ) -> _Reply:
        settings = self.settings
        attempts = settings.max_retries + 1
        cause = ""
        for attempt in range(attempts):
            self._wait_for_slot(url)
            retry_after: float | None = None
            try:
                response = self.session.get(
                    url,
                    headers={
                        "User-Agent": self.user_agent,
                        "Accept": ACCEPT,
                        "Accept-Encoding": "gzip, deflate",
                        **headers,
                    },
                    timeout=(settings.connect_timeout, settings.read_timeout),
                    stream=True,
                    allow_redirects=False,
                )
                if response.status_code not in RETRY_STATUSES:
                    body = self._read_body(response, url, source_id, max_bytes)
                    return _Reply(response, url, body)

                cause = _status_cause(response)
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                response.close()
            except requests.Timeout as error:
                cause = (
                    f"timed out ({type(error).__name__}, connect {settings.connect_timeout}s, "
                    f"read {settings.read_timeout}s)"
                )
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
                cause = f"connection failed: {_short(error)}"
                unresolvable = _unresolvable_host(error)
                if unresolvable:
                    # A host name that does not resolve, or a URL missing from a replay, will not
                    # appear within seconds: waiting and retrying in this run only delays the rest.
                    raise FetchError(source_id, url, f"{unresolvable}; the next run tries again") from error

            if retry_after is not None and retry_after > settings.retry_after_ceiling:
                raise RateLimitedError(
                    source_id,
                    url,
                    f"{cause}; Retry-After asks for {retry_after:.0f}s, more than the "
                    f"{settings.retry_after_ceiling:.0f}s ceiling, "
                    "so the source waits until its next run",
                    retry_after=retry_after,
                )
            if attempt == attempts - 1:
                break

            delay = (
                retry_after
                if retry_after is not None
                else backoff_delay(attempt, settings.backoff_base, self._rng)
            )
            logger.warning(
                "fetch_retry source=%s url=%s attempt=%d delay=%.2f cause=%s",
                source_id,
                url,
                attempt + 1,
                delay,
                cause,
            )
            self._sleep(delay)

        raise FetchError(
            source_id, url, f"{cause}; gave up after {attempts} attempts, the next run tries again"
        )

    def _read_body(
        self, response: requests.Response, url: str, source_id: str, max_bytes: int | None
    ) -> bytes:
        if response.status_code in REDIRECT_STATUSES or response.status_code == 304:
            response.close()
            return b""

        limit = max_bytes if max_bytes is not None else self.settings.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise ResponseError(
                source_id, url, f"body of {declared} bytes exceeds the limit of {limit} bytes"
            )

        # NOTE: the read timeout applies to each read, not to the whole body, so a server that
        # trickles bytes just fast enough can hold a fetch open until the size limit is reached.
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise ResponseError(
                        source_id,
                        url,
                        f"body exceeds the limit of {limit} bytes; "
                        "raise max_body_bytes if it is expected",
                    )
                chunks.append(chunk)
        except requests.exceptions.ContentDecodingError as error:
            raise ResponseError(
                source_id, url, f"compressed body cannot be decoded: {_short(error)}"
            ) from error
        finally:
            response.close()
        return b"".join(chunks)

    def _wait_for_slot(self, url: str) -> None:
        interval = self.settings.host_min_interval
        if interval <= 0:
            return
        host = (urlsplit(url).hostname or "").lower()
        wait = self.budget.reserve(host, interval)
        if wait > 0:
            logger.debug("host_wait host=%s seconds=%.2f", host, wait)
            self._sleep(wait)

    def _load_robots(self, robots_url: str, source_id: str) -> tuple[int, bytes]:
        reply = self._follow(
            robots_url, source_id, {}, check_robots=False, max_bytes=ROBOTS_MAX_BYTES
        )
        return reply.response.status_code, reply.body


def _check_scheme(url: str, source_id: str, requested: str) -> None:
    if urlsplit(url).scheme.lower() not in ALLOWED_SCHEMES:
        raise BlockedError(source_id, requested, f"{url!r} is not an http or https URL")


def _status_cause(response: requests.Response) -> str:
    reason = f" {response.reason}" if response.reason else ""
    return f"HTTP {response.status_code}{reason}"


def _unresolvable_host(error: Exception) -> str | None:
    """Describe a failure that retrying in this run cannot fix, or return None."""
    from noticeboard.replay import ReplayMiss

    if isinstance(error, ReplayMiss):
        return str(error)
    reason: BaseException | None = error
    while reason is not None:
        if isinstance(reason, NameResolutionError):
            return f"cannot resolve host {reason._host} (DNS lookup failed)"
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
            continue
        reason = reason.args[0] if reason.args and isinstance(reason.args[0], BaseException) else None
    return None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
