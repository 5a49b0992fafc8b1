"""Run-time settings, read from environment variables at the edge of the program.

Every variable is named `NOTICEBOARD_<FIELD>` in upper case (for example
`NOTICEBOARD_DATABASE_URL`). Secrets (API keys, SMTP password, signing key) are read the same way,
or from Airflow connections in `dags/`, and are never logged: `Settings.redacted()` masks them.
docs/configuration.md lists every setting.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from noticeboard.errors import ConfigError

ENV_PREFIX = "NOTICEBOARD_"
SECRET_FIELDS = frozenset(
    {
        "translator_api_key",
        "smtp_password",
        "secret_key",
        "mastodon_token",
        "discourse_api_key",
        "webhook_secret",
        "alert_webhook_url",
    }
)

# Lowest accepted value of each numeric setting; a smaller one is a configuration error.
MINIMUMS: dict[str, float] = {
    "connect_timeout": 0.1,
    "read_timeout": 0.1,
    "max_body_bytes": 1024,
    "max_retries": 0,
    "backoff_base": 0.0,
    "retry_after_ceiling": 0.0,
    "host_min_interval": 0.0,
    "stale_factor": 1.0,
    "failure_backoff_cap": 1.0,
    "translation_chunk_chars": 100,
    "translation_rate_per_second": 0.01,
    "withdraw_after_fetches": 1,
    "summary_chars": 20,
    "feed_page_size": 1,
    "immediate_daily_limit": 0,
    "workers": 1,
}
CHOICES: dict[str, tuple[str, ...]] = {
    "language_detector": ("lingua", "langdetect"),
    "smtp_security": ("none", "starttls", "tls"),
    "mastodon_visibility": ("public", "unlisted", "private", "direct"),
    "translator_provider": ("google", "deepl", "libre", "mymemory", "microsoft"),
}


@dataclass(frozen=True)
class Settings:
    """All settings with their defaults; `from_env` fills them from the environment."""

    database_url: str = ""
    output_dir: Path = Path("public")
    catalog_path: Path | None = None
    public_base_url: str = "http://127.0.0.1:8000"

    # Fetching.
    user_agent_contact: str = "https://github.com/noticeboard/noticeboard"
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_retries: int = 3
    backoff_base: float = 1.0
    retry_after_ceiling: float = 300.0
    host_min_interval: float = 2.0
    respect_robots: bool = True
    workers: int = 1
    stale_factor: float = 4.0
    failure_backoff_cap: float = 24 * 3600.0

    # Language and translation.
    language_detector: str = "lingua"
    translator_provider: str = "google"
    translator_url: str = ""
    translator_api_key: str = ""
    translation_targets: tuple[str, ...] = ("en",)
    translation_chunk_chars: int = 4500
    translation_rate_per_second: float = 2.0
    glossary_path: Path | None = None

    # Normalisation.
    withdraw_after_fetches: int = 3
    summary_chars: int = 300

    # Publishing.
    feed_page_size: int = 100
    publishers: tuple[str, ...] = ()
    mastodon_url: str = ""
    mastodon_token: str = ""
    mastodon_visibility: str = "public"
    mastodon_spoiler_text: str = ""
    discourse_url: str = ""
    discourse_api_key: str = ""
    discourse_username: str = "system"
    discourse_categories: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""

    # Newsletter.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_security: str = "none"
    smtp_username: str = ""
    smtp_password: str = ""
    mail_from: str = "Noticeboard <noticeboard@localhost>"
    unsubscribe_mailto: str = ""
    secret_key: str = ""
    immediate_daily_limit: int = 10
    newsletter_timezone: str = "Europe/Helsinki"

    # Alerts to operators when a source changes health.
    alert_webhook_url: str = ""
    alert_email: str = ""

    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, minimum in MINIMUMS.items():
            value = getattr(self, name)
            if value < minimum:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()}={value} is too small; use at least {minimum}")
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()}={value!r} is invalid; use one of {', '.join(allowed)}")
        if not 1 <= self.smtp_port <= 65535:
            raise ConfigError(f"{ENV_PREFIX}SMTP_PORT={self.smtp_port} is not a TCP port (1 to 65535)")
        try:
            ZoneInfo(self.newsletter_timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ConfigError(
                f"{ENV_PREFIX}NEWSLETTER_TIMEZONE={self.newsletter_timezone!r} is not an IANA time zone "
                "such as Europe/Helsinki"
            ) from error
        if self.glossary_path is not None and not self.glossary_path.is_file():
            raise ConfigError(f"{ENV_PREFIX}GLOSSARY_PATH={self.glossary_path} does not exist; fix the path or unset it")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `NOTICEBOARD_*` variables, then apply keyword overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in fields(cls):
            if setting.name == "extra":
                continue
            name = ENV_PREFIX + setting.name.upper()
            if name in environ:
                values[setting.name] = _convert(setting.name, setting.type, environ[name])
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def redacted(self) -> dict[str, Any]:
        """Return the settings as a dict with every secret masked, for logs and `config` output."""
        shown: dict[str, Any] = {}
        for setting in fields(self):
            value = getattr(self, setting.name)
            if setting.name in SECRET_FIELDS and value:
                value = "***"
            elif setting.name.endswith("_url") and value:
                value = mask_url(value)
            shown[setting.name] = value
        return shown


def mask_url(url: str) -> str:
    """Return `url` with its password and query string masked, for output and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in credentials else f"{user}@{host}"
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _convert(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if kind == "bool":
            return _parse_bool(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("Path"):
            return Path(raw) if raw else None
    except ValueError as error:
        variable = ENV_PREFIX + name.upper()
        shown = "***" if name in SECRET_FIELDS else repr(raw)
        expected = _EXPECTED.get(kind)
        if expected:
            raise ConfigError(f"{variable}={shown} is invalid; set it to {expected}") from error
        raise ConfigError(f"{variable}={shown} is invalid: {error}; expected {kind}") from error
    return raw


# The form that a value of each numeric kind must have, named when a value is invalid.
_EXPECTED = {"int": "a whole number such as 3", "float": "a number such as 2.5"}


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{raw!r} is not a boolean (use true or false)")
