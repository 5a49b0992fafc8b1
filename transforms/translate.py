"""Machine translation of notice text through deep-translator.

`Translator` translates plain text and sanitised HTML for one provider (Google, DeepL,
LibreTranslate, MyMemory or Microsoft, chosen by `settings.translator_provider`). For each text it

1. replaces glossary terms by tokens, so names such as Kela or Skatteverket survive;
2. splits text longer than the provider accepts at paragraph and sentence boundaries;
3. looks every piece up in the translation memory, and sends only the misses;
4. waits for the provider's rate limit, and retries 429 and 5xx responses with capped exponential
   backoff that honours `Retry-After`;
5. joins the pieces and puts the glossary terms back.

Errors:

    TranslationError            one text could not be translated (for example HTTP 400); others may
    └── TranslationDeferred     the provider cannot be used now (unreachable, timed out, 429, 5xx
                                after retries, quota spent, key rejected); callers stop calling it
                                for the rest of the batch and retry after `retry_after` seconds
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import requests
from sqlalchemy.orm import Session

from noticeboard.errors import ConfigError, TranslationError
from noticeboard.settings import Settings
from noticeboard.store.tables import TranslationMemory
from transforms import _providers
from transforms._chunking import join_chunks, split_text
from transforms._glossary import Glossary, load_glossary
from transforms._markup import has_letters, translate_text_nodes

logger = logging.getLogger(__name__)

# HTTP statuses that mean the account cannot be used now: 401/403 a rejected key, 456 DeepL's
# "quota exceeded". Retrying within the run cannot help, so the batch is deferred.
_ACCOUNT_STATUSES = frozenset({401, 403, 456})
ACCOUNT_RETRY_SECONDS = 3600.0
# Smallest request size, in characters, that still fits a sentence. Smaller limits cut text into
# fragments that translate badly.
MIN_CHUNK_CHARS = 100
_SEGMENT_SEPARATOR = "\n\n"
_SEGMENT_SPLIT = re.compile(r"\n[ \t]*\n")
_EDGE_SPACE = re.compile(r"^(\s*)(.*?)(\s*)$", re.DOTALL)


class TranslationDeferred(TranslationError):
    """The provider cannot be used now; nothing more should be sent to it in this batch."""

    def __init__(self, message: str, *, provider: str, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after, transient=True)
        self.provider = provider


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one provider request: count, backoff in seconds, and the request timeout.

    A wait longer than `max_inline_wait` (for example `Retry-After: 120`) is not slept through;
    the request is deferred to a later run instead.
    """

    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_inline_wait: float = 30.0
    timeout: tuple[float, float] = (10.0, 30.0)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """Take the retry count, backoff base and timeouts from the fetching settings."""
        return cls(
            max_retries=settings.max_retries,
            backoff_base=settings.backoff_base,
            timeout=(settings.connect_timeout, settings.read_timeout),
        )

    def backoff(self, attempt: int) -> float:
        """Return the wait before retry number `attempt + 1`, in seconds."""
        return min(self.backoff_cap, self.backoff_base * 2**attempt)


class Memory(Protocol):
    """Storage of earlier provider output, keyed by `memory_key`."""

    def get(self, key: str) -> str | None: ...

    def put(
        self, key: str, *, provider: str, source: str, target: str, translated: str
    ) -> None: ...


class SqlTranslationMemory:
    """Translation memory in the `translation_memory` table of the open session."""

    def __init__(self, session: Session | None, now: datetime) -> None:
        self.session = session
        self.now = now

    def get(self, key: str) -> str | None:
        if self.session is None:
            return None
        row = self.session.get(TranslationMemory, key)
        return row.translated if row is not None else None

    def put(self, key: str, *, provider: str, source: str, target: str, translated: str) -> None:
        if self.session is None:
            return
        row = TranslationMemory(
            key=key,
            provider=provider,
            source_language=source,
            target_language=target,
            translated=translated,
            created_at=self.now,
        )
        self.session.merge(row)


class NoMemory:
    """A memory that stores nothing, for one-off translations."""

    def get(self, key: str) -> str | None:
        return None

    def put(self, key: str, *, provider: str, source: str, target: str, translated: str) -> None:
        return None


def memory_key(text: str, source: str, target: str, provider: str) -> str:
    """Return the SHA-256 hex digest that identifies a text, language pair and provider."""
    material = "\x1f".join((provider, source, target, text))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class RateLimiter:
    """Spaces requests to one provider at least `1 / rate` seconds apart, across threads."""

    def __init__(self, rate_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_second <= 0:
            raise ConfigError(
                f"translation rate {rate_per_second} per second is invalid; "
                "set NOTICEBOARD_TRANSLATION_RATE_PER_SECOND above 0"
            )
        self.interval = 1.0 / rate_per_second
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, sleep: Callable[[float], None]) -> None:
        """Sleep until this caller's turn."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            sleep(start - now)


_limiters: dict[tuple[str, float], RateLimiter] = {}
_limiters_lock = threading.Lock()


def rate_limiter_for(provider: str, rate_per_second: float) -> RateLimiter:
    """Return the process-wide rate limiter of `provider`."""
    with _limiters_lock:
        key = (provider, rate_per_second)
        if key not in _limiters:
            _limiters[key] = RateLimiter(rate_per_second)
        return _limiters[key]


class Translator:
    """Translates text and HTML with one provider, using the glossary and translation memory.

    `calls` counts requests sent to the provider and `memory_hits` the pieces served from memory.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        memory: Memory | None = None,
        glossary: Glossary | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.provider = settings.translator_provider
        if self.provider not in _providers.PROVIDER_MAX_CHARS:
            raise ConfigError(
                f"NOTICEBOARD_TRANSLATOR_PROVIDER={self.provider!r} is unknown; "
                f"use one of {', '.join(_providers.PROVIDER_MAX_CHARS)}"
            )
        self.config = _providers.ProviderSettings(
            provider=self.provider,
            url=settings.translator_url,
            api_key=settings.translator_api_key,
        )
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.memory: Memory = memory or NoMemory()
        self.glossary = glossary or load_glossary(settings.glossary_path)
        self.limiter = rate_limiter_for(self.provider, settings.translation_rate_per_second)
        self.chunk_chars = min(
            settings.translation_chunk_chars, _providers.PROVIDER_MAX_CHARS[self.provider]
        )
        if self.chunk_chars < MIN_CHUNK_CHARS:
            raise ConfigError(
                f"NOTICEBOARD_TRANSLATION_CHUNK_CHARS={settings.translation_chunk_chars} is too "
                f"small; use at least {MIN_CHUNK_CHARS} characters"
            )
        self.sleep = sleep
        self.calls = 0
        self.memory_hits = 0
        # A replayed run passes its replay session, so no request reaches a real provider.
        self._owns_session = session is None
        self._session = session or requests.Session()
        self._clients: dict[tuple[str, str], Any] = {}

    def close(self) -> None:
        """Close the HTTP session, unless the caller passed it in."""
        if self._owns_session:
            self._session.close()

    def translate_text(self, text: str, source: str, target: str) -> str:
        """Translate plain text from `source` to `target` (project codes)."""
        if not has_letters(text):
            return text

        protected = self.glossary.protect(text)
        chunks = split_text(protected.text, self.chunk_chars)
        translated = [self._translate_piece(chunk.text, source, target) for chunk in chunks]
        return self.glossary.restore(join_chunks(translated, chunks), protected, target)

    def translate_html(self, html: str, source: str, target: str) -> str:
        """Translate the text nodes of sanitised `html`; tags and attributes stay as they are."""
        return translate_text_nodes(
            html, lambda texts: self.translate_segments(texts, source, target)
        )

    def translate_segments(self, texts: list[str], source: str, target: str) -> list[str]:
        """Translate short texts, sending several in one request separated by blank lines.

        When the provider does not return as many blank-line separated parts as it was sent,
        that group is translated again one text at a time.
        """
        results: list[str] = []
        for group in self._group_segments(texts):
            results.extend(self._translate_group(group, source, target))
        return results

    def _group_segments(self, texts: list[str]) -> list[list[str]]:
        groups: list[list[str]] = []
        size = 0
        for text in texts:
            joinable = _SEGMENT_SPLIT.search(text) is None
            if (
                groups
                and joinable
                and size + len(text) + len(_SEGMENT_SEPARATOR) < self.chunk_chars
            ):
                groups[-1].append(text)
                size += len(text) + len(_SEGMENT_SEPARATOR)
                continue
            groups.append([text])
            size = len(text) if joinable else self.chunk_chars
        return groups

    def _translate_group(self, group: list[str], source: str, target: str) -> list[str]:
        if len(group) == 1:
            return [
                self._keep_edges(group[0], lambda core: self.translate_text(core, source, target))
            ]

        cores = [_EDGE_SPACE.match(text).group(2) for text in group]  # type: ignore[union-attr]
        joined = self.translate_text(_SEGMENT_SEPARATOR.join(cores), source, target)
        parts = _SEGMENT_SPLIT.split(joined.strip())
        if len(parts) != len(group):
            logger.debug("segments_split_mismatch sent=%d returned=%d", len(group), len(parts))
            return [
                self._keep_edges(text, lambda core: self.translate_text(core, source, target))
                for text in group
            ]

        return [_with_edges(text, part.strip()) for text, part in zip(group, parts, strict=True)]

    def _keep_edges(self, text: str, translate: Callable[[str], str]) -> str:
        match = _EDGE_SPACE.match(text)
        assert match is not None
        if not has_letters(match.group(2)):
            return text
        return match.group(1) + translate(match.group(2)) + match.group(3)

    def _translate_piece(self, text: str, source: str, target: str) -> str:
        match = _EDGE_SPACE.match(text)
        assert match is not None
        leading, core, trailing = match.groups()
        if not has_letters(core):
            return text

        key = memory_key(core, source, target, self.provider)
        remembered = self.memory.get(key)
        if remembered is not None:
            self.memory_hits += 1
            return leading + remembered + trailing

        translated = self._send(core, source, target)
        self.memory.put(
            key, provider=self.provider, source=source, target=target, translated=translated
        )
        return leading + translated + trailing

    def _send(self, text: str, source: str, target: str) -> str:
        client = self._client(source, target)
        for attempt in range(self.policy.max_retries + 1):
            self.limiter.wait(self.sleep)
            outcome = _providers.call_provider(client, text, self._session, self.policy.timeout)
            self.calls += outcome.requests_sent
            if outcome.text is not None:
                return outcome.text

            delay = self._retry_delay(outcome, attempt, source, target)
            logger.info(
                "translation_retry provider=%s attempt=%d status=%s delay=%.1f",
                self.provider,
                attempt + 1,
                outcome.status,
                delay,
            )
            self.sleep(delay)
        raise AssertionError("unreachable: the last attempt raises")

    def _retry_delay(
        self, outcome: _providers.CallOutcome, attempt: int, source: str, target: str
    ) -> float:
        """Return the wait before the next retry, or raise when the request must not be retried."""
        status = outcome.status
        pair = f"{source}->{target}"

        if status in _ACCOUNT_STATUSES:
            raise TranslationDeferred(
                f"translation provider {self.provider} rejected the request ({outcome.error}); "
                "check NOTICEBOARD_TRANSLATOR_API_KEY and the account's quota",
                provider=self.provider,
                retry_after=max(outcome.retry_after or 0.0, ACCOUNT_RETRY_SECONDS),
            )

        retryable = outcome.unreachable or status == 429 or (status is not None and status >= 500)
        if not retryable:
            raise TranslationError(
                f"translation provider {self.provider} failed on a {pair} text: {outcome.error}",
                transient=False,
            )

        delay = max(outcome.retry_after or 0.0, self.policy.backoff(attempt))
        if attempt >= self.policy.max_retries or delay > self.policy.max_inline_wait:
            reason = "is unreachable" if outcome.unreachable else f"responded with HTTP {status}"
            raise TranslationDeferred(
                f"translation provider {self.provider} {reason} after {attempt + 1} attempts "
                f"({outcome.error}); the translation stays pending",
                provider=self.provider,
                retry_after=outcome.retry_after if outcome.retry_after is not None else delay,
            )
        return delay

    def _client(self, source: str, target: str) -> Any:
        pair = (source, target)
        if pair not in self._clients:
            try:
                self._clients[pair] = _providers.build_client(self.config, source, target)
            except requests.RequestException as error:
                # The Microsoft client downloads its language list when it is built.
                raise TranslationDeferred(
                    f"translation provider {self.provider} is unreachable "
                    f"while building its client: {error}",
                    provider=self.provider,
                ) from error
        return self._clients[pair]


def _with_edges(original: str, translated: str) -> str:
    match = _EDGE_SPACE.match(original)
    assert match is not None
    return match.group(1) + translated + match.group(3)
