"""The HTTP fetcher that every connector uses.

`HttpFetcher.fetch` sends one conditional GET and returns a `FetchedDocument`. Around that one call
it keeps the rules that make Noticeboard a polite client:

- a User-Agent that names Noticeboard and the operator's contact URL;
- robots.txt per host (cached, see `_robots`) and a per-host minimum interval between requests
  (the budget, see `budget`), for robots.txt requests and retries too;
- connect and read timeouts, a body size limit checked while streaming, and at most
  `MAX_REDIRECTS` redirects, each only to http or https;
- a deadline for each response of `RESPONSE_DEADLINE_FACTOR` times the read timeout, counted from
  the request and checked while the body is read. The read timeout applies to each socket read,
  so without the deadline a server that trickles a byte every few seconds holds the fetch until
  the size limit;
- retries with exponential backoff and jitter on connection errors, timeouts, 429 and 5xx,
  honouring Retry-After (see `_retry`);
- gzip and deflate bodies, and the document's charset chosen as `_charset` describes.

Every request goes through the `requests.Session` given to the fetcher, so a transport adapter
mounted on it (the replay of recorded responses) serves robots.txt requests as well.

Errors are `SourceError` subclasses that name the source, the URL and the cause: `FetchError`
(transient: network, 429, 5xx), `BlockedError` (robots.txt, a redirect not allowed) and
`ResponseError` (another 4xx, a body over the limit, a body that cannot be decompressed). A
robots.txt over `ROBOTS_MAX_BYTES` is cut at that size and the part received is parsed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from urllib3.exceptions import MaxRetryError, NameResolutionError
from urllib3.response import HTTPResponse

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
# With the default read timeout of 30 s a response may take 2 minutes in all: about 80 KiB/s for
# the default 10 MiB body limit.
RESPONSE_DEADLINE_FACTOR = 4.0
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
        truncate_at: int | None = None,
    ) -> _Reply:
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            _check_scheme(current, source_id, url)
            if check_robots:
                self._robots.check(current, source_id=source_id)

            reply = self._send(current, source_id, headers, truncate_at=truncate_at)
            location = reply.response.headers.get("location")
            if reply.response.status_code not in REDIRECT_STATUSES or not location:
                return reply

            try:
                target = urljoin(current, location.strip())
                scheme = urlsplit(target).scheme.lower()
            except ValueError as error:
                raise BlockedError(
                    source_id, url, f"{current} redirects to an invalid URL {location!r}: {error}"
                ) from error
            if scheme not in ALLOWED_SCHEMES:
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
        self, url: str, source_id: str, headers: dict[str, str], *, truncate_at: int | None
    ) -> _Reply:
        settings = self.settings
        attempts = settings.max_retries + 1
        cause = ""
        for attempt in range(attempts):
            self._wait_for_slot(url)
            retry_after: float | None = None
            deadline = time.monotonic() + settings.read_timeout * RESPONSE_DEADLINE_FACTOR
            try:
                response = self._open(url, source_id, headers)
                if response.status_code not in RETRY_STATUSES:
                    body = self._read_body(
                        response, url, source_id, deadline=deadline, truncate_at=truncate_at
                    )
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
                    raise FetchError(
                        source_id, url, f"{unresolvable}; the next run tries again"
                    ) from error

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

    def _open(self, url: str, source_id: str, headers: dict[str, str]) -> requests.Response:
        """Send the GET and return the response with its body still unread."""
        settings = self.settings
        try:
            return self.session.get(
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
        except ValueError as error:
            # requests.InvalidURL, urllib3's LocationValueError and urllib.parse all raise
            # ValueError subclasses for a URL they cannot parse.
            raise BlockedError(
                source_id,
                url,
                f"not a valid URL ({_short(error)}); check the catalog entry "
                "or the redirect that led here",
            ) from error

    def _read_body(
        self,
        response: requests.Response,
        url: str,
        source_id: str,
        *,
        deadline: float,
        truncate_at: int | None,
    ) -> bytes:
        """Read the body within the size limit and the deadline.

        With `truncate_at` a longer body is cut at that many bytes instead of failing the fetch.
        """
        if response.status_code in REDIRECT_STATUSES or response.status_code == 304:
            response.close()
            return b""

        limit = truncate_at if truncate_at is not None else self.settings.max_body_bytes
        declared = response.headers.get("content-length", "")
        if truncate_at is None and declared.isdigit() and int(declared) > limit:
            response.close()
            raise ResponseError(
                source_id, url, f"body of {declared} bytes exceeds the limit of {limit} bytes"
            )

        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in _iter_body(response):
                if time.monotonic() > deadline:
                    seconds = self.settings.read_timeout * RESPONSE_DEADLINE_FACTOR
                    raise FetchError(
                        source_id,
                        url,
                        f"response not complete within {seconds:.0f}s ({size} bytes received); "
                        "the server is too slow, the next run tries again",
                    )
                size += len(chunk)
                if size > limit and truncate_at is not None:
                    chunks.append(chunk[: len(chunk) - (size - limit)])
                    logger.warning(
                        "body_truncated source=%s url=%s bytes=%d", source_id, url, limit
                    )
                    break
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
            robots_url, source_id, {}, check_robots=False, truncate_at=ROBOTS_MAX_BYTES
        )
        return reply.response.status_code, reply.body


def _iter_body(response: requests.Response) -> Iterator[bytes]:
    """Yield the decoded body in pieces as they arrive.

    `read1` returns after one read from the socket, so the caller checks its deadline at least once
    per read timeout. `iter_content` would block until a whole chunk has arrived. urllib3 errors are
    raised as the requests errors that `iter_content` raises for them.
    """
    raw = response.raw
    if not isinstance(raw, HTTPResponse):
        # The replay adapter serves bytes from memory, so its reads wait on no network.
        yield from response.iter_content(CHUNK_BYTES)
        return

    try:
        while True:
            chunk = raw.read1(CHUNK_BYTES, decode_content=True)
            if not chunk:
                return
            yield chunk
    except urllib3.exceptions.DecodeError as error:
        raise requests.exceptions.ContentDecodingError(error) from error
    except urllib3.exceptions.ReadTimeoutError as error:
        raise requests.exceptions.ReadTimeout(error) from error
    except urllib3.exceptions.SSLError as error:
        raise requests.exceptions.SSLError(error) from error
    except urllib3.exceptions.ProtocolError as error:
        raise requests.exceptions.ChunkedEncodingError(error) from error


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
        reason = (
            reason.args[0] if reason.args and isinstance(reason.args[0], BaseException) else None
        )
    return None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
