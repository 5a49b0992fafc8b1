"""Exceptions of Noticeboard.

Every error is either transient (the same call may succeed later: a timeout, HTTP 429 or 5xx, a
dropped database connection) or terminal (retrying cannot help: an invalid catalog entry, a
document that cannot be parsed, a rejected credential). Airflow tasks retry the first kind and fail
fast on the second.

    NoticeboardError
    ├── CatalogError            (terminal) the catalog file or one of its entries is invalid
    ├── ConfigError             (terminal) a setting or environment variable is invalid
    ├── StoreError              the database cannot be opened, migrated or written
    │   └── StoreUnavailableError  (transient) the database did not answer
    ├── ReplayError             (terminal) a replay manifest or one of its files is unusable
    ├── OutputError             (terminal) the feed folder cannot be written
    ├── WorkerError             (transient) an ingest worker process ended abruptly
    ├── SourceError             a source failed; carries the source id and URL
    │   ├── FetchError          (transient) connection error, timeout, 429 or 5xx
    │   ├── BlockedError        (terminal) robots.txt forbids the URL, or a redirect is not allowed
    │   ├── ResponseError       (terminal) a 4xx answer other than 429, or a body over the size limit
    │   └── ParseError          (terminal) the whole document is unreadable
    ├── TranslationError        (transient unless marked) the translation provider failed
    └── DeliveryError           a publisher could not deliver; `permanent` marks 4xx answers
"""

from __future__ import annotations


class NoticeboardError(Exception):
    """Root of all errors that Noticeboard raises on purpose."""

    transient: bool = False


class CatalogError(NoticeboardError, ValueError):
    """The catalog file or one of its entries is invalid."""


class ConfigError(NoticeboardError, ValueError):
    """A setting or environment variable is invalid."""


class StoreError(NoticeboardError):
    """The database cannot be opened, migrated or written."""


class StoreUnavailableError(StoreError):
    """The database did not respond; the next run may succeed."""

    transient = True


class ReplayError(NoticeboardError):
    """A replay manifest or one of the files it names is unusable."""


class OutputError(NoticeboardError):
    """The output folder for feeds cannot be created or written."""


class WorkerError(NoticeboardError):
    """An ingest worker process ended abruptly (killed, or out of memory)."""

    transient = True


class SourceError(NoticeboardError):
    """A source failed; the message names the source, the URL and the cause."""

    def __init__(self, source_id: str, url: str, cause: str) -> None:
        super().__init__(f"source {source_id}: {url}: {cause}")
        self.source_id = source_id
        self.url = url
        self.cause = cause


class FetchError(SourceError):
    """A connection error, a timeout, HTTP 429 or 5xx."""

    transient = True


class BlockedError(SourceError):
    """robots.txt forbids the URL, or a redirect leads somewhere not allowed."""


class ResponseError(SourceError):
    """The server responded with a 4xx status other than 429, or sent too large a body."""


class ParseError(SourceError):
    """The whole document could not be read as a feed or page."""


class TranslationError(NoticeboardError):
    """The translation provider failed; `retry_after` is the provider's Retry-After in seconds, if sent."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, transient: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.transient = transient


class DeliveryError(NoticeboardError):
    """A publisher could not deliver; `permanent` errors are recorded and not retried."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.transient = not permanent
        self.retry_after = retry_after
