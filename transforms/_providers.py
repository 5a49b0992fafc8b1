"""deep-translator clients for each provider, with a request timeout and a readable outcome.

deep-translator 1.11.4 calls the module-level `requests.get`/`requests.post` with no timeout, so a
provider that accepts the connection and never responds would hang the run. It also turns HTTP
statuses into exceptions that drop the status code and the `Retry-After` header. This module
replaces the `requests` name inside deep-translator's provider modules by `_ProviderRequests`,
which sends every request through the calling thread's session with a timeout and keeps the last
response or transport error, so `call_provider` can classify the outcome itself.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from noticeboard.errors import ConfigError
from transforms import langcodes

logger = logging.getLogger(__name__)

# Maximum characters per request: deep-translator's own check for Google and MyMemory, and for
# the others an estimate below the providers' documented request limits (DeepL 128 KiB per
# request, Microsoft 50,000 characters), since deep-translator checks nothing there.
PROVIDER_MAX_CHARS = {
    "google": 5000,
    "mymemory": 500,
    "deepl": 100_000,
    "microsoft": 50_000,
    "libre": 100_000,
}
_PATCHED_MODULES = ("google", "deepl", "libre", "mymemory", "microsoft")
_QUERY = re.compile(r"\?[^\s'\")]*")


@dataclass
class _Exchange:
    session: requests.Session
    timeout: tuple[float, float]
    response: requests.Response | None = None
    error: requests.RequestException | None = None
    requests_sent: int = 0


_current: contextvars.ContextVar[_Exchange | None] = contextvars.ContextVar(
    "provider_exchange", default=None
)


class _ProviderRequests:
    """Stand-in for the `requests` module inside deep-translator, adding a timeout to each call."""

    def __getattr__(self, name: str) -> Any:
        return getattr(requests, name)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("POST", url, **kwargs)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        exchange = _current.get()
        if exchange is None:
            # A deep-translator call made outside `call_provider` still gets a timeout.
            kwargs.setdefault("timeout", (10.0, 30.0))
            return requests.request(method, url, **kwargs)

        kwargs.setdefault("timeout", exchange.timeout)
        exchange.requests_sent += 1
        try:
            response = exchange.session.request(method, url, **kwargs)
        except requests.RequestException as error:
            exchange.error = error
            raise
        exchange.response = response
        return response


_install_lock = threading.Lock()
_installed = False


def install_timeouts() -> None:
    """Route deep-translator's provider modules through `_ProviderRequests` (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import importlib

        shim = _ProviderRequests()
        for name in _PATCHED_MODULES:
            module = importlib.import_module(f"deep_translator.{name}")
            module.requests = shim  # type: ignore[attr-defined]
        _installed = True


@dataclass(frozen=True)
class ProviderSettings:
    """Provider name, endpoint, API key and request timeout for building a client."""

    provider: str
    url: str = ""
    api_key: str = ""
    timeout: tuple[float, float] = (10.0, 30.0)


@dataclass
class CallOutcome:
    """The result of one provider call: the text, or the HTTP status and error that stopped it."""

    text: str | None = None
    status: int | None = None
    retry_after: float | None = None
    error: str | None = None
    unreachable: bool = False
    requests_sent: int = 0


def build_client(config: ProviderSettings, source: str, target: str) -> Any:
    """Build the deep-translator client of `config.provider` for one language pair.

    Language codes are set through the client's `source`/`target` setters after construction,
    because deep-translator's built-in tables are out of date (its LibreTranslate table lacks
    Finnish, Swedish, Estonian and Latvian) and accept neither `EN-GB` for DeepL nor plain
    codes for MyMemory.
    """
    install_timeouts()
    from deep_translator import (
        DeeplTranslator,
        GoogleTranslator,
        LibreTranslator,
        MicrosoftTranslator,
        MyMemoryTranslator,
    )

    provider = config.provider
    source_code = langcodes.to_provider(source, provider, role="source")
    target_code = langcodes.to_provider(target, provider, role="target")

    if provider == "google":
        client: Any = GoogleTranslator(source="auto", target="en")
    elif provider == "deepl":
        _require_key(config)
        client = DeeplTranslator(
            source="de",
            target="en",
            api_key=config.api_key,
            use_free_api=config.api_key.endswith(":fx"),
        )
    elif provider == "libre":
        if not config.url:
            raise ConfigError(
                "translator provider libre needs NOTICEBOARD_TRANSLATOR_URL (the server's base URL)"
            )
        # deep-translator rejects an empty key although LibreTranslate servers may need none,
        # so the client gets a stand-in key that is removed again before any request.
        client = LibreTranslator(
            api_key=config.api_key or "unused", custom_url=_with_slash(config.url)
        )
        client.api_key = config.api_key or None
    elif provider == "mymemory":
        client = MyMemoryTranslator(source="en-GB", target="de-DE")
    elif provider == "microsoft":
        _require_key(config)
        client = MicrosoftTranslator(api_key=config.api_key, target="en")
    else:
        raise ConfigError(
            f"NOTICEBOARD_TRANSLATOR_PROVIDER={provider!r} is unknown; "
            f"use one of {', '.join(langcodes.PROVIDERS)}"
        )

    client.source = source_code
    client.target = target_code
    return client


def call_provider(
    client: Any, text: str, session: requests.Session, timeout: tuple[float, float]
) -> CallOutcome:
    """Send `text` through `client` once and return what happened, without raising."""
    exchange = _Exchange(session=session, timeout=timeout)
    token = _current.set(exchange)
    try:
        translated = client.translate(text)
    except Exception as error:  # noqa: BLE001 (deep-translator raises many unrelated types)
        return _failed_outcome(exchange, error)
    finally:
        _current.reset(token)

    if not isinstance(translated, str):
        return CallOutcome(
            error=f"provider returned {type(translated).__name__}, not text",
            requests_sent=exchange.requests_sent,
        )
    return CallOutcome(
        text=translated, status=_status(exchange), requests_sent=exchange.requests_sent
    )


def _failed_outcome(exchange: _Exchange, error: Exception) -> CallOutcome:
    if exchange.error is not None:
        return CallOutcome(
            unreachable=True,
            error=redact_query(f"{type(exchange.error).__name__}: {exchange.error}"),
            requests_sent=exchange.requests_sent,
        )

    response = exchange.response
    if response is None:
        return CallOutcome(
            error=redact_query(f"{type(error).__name__}: {error}"),
            requests_sent=exchange.requests_sent,
        )

    return CallOutcome(
        status=response.status_code,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        error=redact_query(f"HTTP {response.status_code} ({type(error).__name__}: {error})"),
        requests_sent=exchange.requests_sent,
    )


def redact_query(message: str) -> str:
    """Remove URL query strings from `message`.

    deep-translator puts the API key (DeepL `auth_key`, LibreTranslate `api_key`) and the text
    itself in the query string, and requests quotes the URL in its exception messages.
    """
    return _QUERY.sub("?...", message)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the wait in seconds that a `Retry-After` value requests (seconds or an HTTP date)."""
    if not value:
        return None
    stripped = value.strip()
    if stripped.isdigit():
        return float(stripped)
    try:
        moment = parsedate_to_datetime(stripped)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (moment - reference).total_seconds())


def _status(exchange: _Exchange) -> int | None:
    return exchange.response.status_code if exchange.response is not None else None


def _require_key(config: ProviderSettings) -> None:
    if not config.api_key:
        raise ConfigError(
            f"translator provider {config.provider} needs an API key; "
            "set NOTICEBOARD_TRANSLATOR_API_KEY"
        )


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
