"""The source catalog: a YAML file of the authorities' feeds and pages that operators edit.

The format is documented in docs/catalog.md. `load_catalog` validates every entry and raises
`CatalogError` naming the entry, the field and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import soupsieve
import yaml

from noticeboard.errors import CatalogError

# libyaml's loader is about 30 times faster than the pure-Python one; both are safe loaders.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SOURCE_KINDS = ("rss", "atom", "html")
COUNTRIES = ("FI", "SE", "EE", "LV")
DEFAULT_SCHEDULE = "@hourly"
SOURCE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2}$")
CRON_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly")
SELECTOR_FIELDS = ("item", "title", "link", "date", "summary", "body", "next_page")
REQUIRED_SELECTORS = ("item", "title", "link")


@dataclass(frozen=True)
class Selectors:
    """CSS selectors that find the notices on an HTML listing page."""

    item: str
    title: str
    link: str
    date: str | None = None
    summary: str | None = None
    body: str | None = None
    next_page: str | None = None


@dataclass(frozen=True)
class Source:
    """One catalog entry: where to fetch, how to read it and how to tag what it yields."""

    id: str
    authority: str
    country: str
    regions: tuple[str, ...]
    languages: tuple[str, ...]
    timezone: str
    kind: str
    urls: tuple[str, ...]
    schedule: str = DEFAULT_SCHEDULE
    selectors: Selectors | None = None
    topic_hints: tuple[str, ...] = ()
    max_pages: int = 1
    fetch_articles: bool = False
    lists_all_current: bool = False
    enabled: bool = True

    @property
    def hosts(self) -> tuple[str, ...]:
        """Hosts of the source's URLs, lower-cased, in catalog order without repeats."""
        seen: dict[str, None] = {}
        for url in self.urls:
            seen[(urlsplit(url).hostname or "").lower()] = None
        return tuple(seen)


@dataclass(frozen=True)
class Catalog:
    """All sources of a catalog file, by id, in file order."""

    path: Path
    sources: dict[str, Source] = field(default_factory=dict)

    def select(self, source_ids: list[str] | tuple[str, ...] | None) -> list[Source]:
        """Return the named sources, or every enabled source when no ids are given."""
        if not source_ids:
            return [source for source in self.sources.values() if source.enabled]

        unknown = [source_id for source_id in source_ids if source_id not in self.sources]
        if unknown:
            raise CatalogError(
                f"unknown source id {', '.join(unknown)} in {self.path}; "
                "run `noticeboard sources` to list the ids"
            )
        return [self.sources[source_id] for source_id in source_ids]


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalog file."""
    path = Path(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except OSError as error:
        raise CatalogError(f"cannot read catalog {path}: {error.strerror}; check the path") from error
    except yaml.YAMLError as error:
        raise CatalogError(f"catalog {path} is not valid YAML: {error}") from error

    if not isinstance(document, dict) or not isinstance(document.get("sources"), list):
        raise CatalogError(f"catalog {path} must be a mapping with a `sources` list")

    sources: dict[str, Source] = {}
    for index, entry in enumerate(document["sources"]):
        source = _parse_source(entry, index, path)
        if source.id in sources:
            raise CatalogError(f"catalog {path}: source {source.id!r}: id is used twice")
        sources[source.id] = source

    if not sources:
        raise CatalogError(f"catalog {path} lists no sources")
    return Catalog(path=path, sources=sources)


def _parse_source(entry: Any, index: int, path: Path) -> Source:
    if not isinstance(entry, dict):
        raise CatalogError(f"catalog {path}: entry #{index + 1} must be a mapping")

    source_id = entry.get("id")
    label = repr(source_id) if source_id else f"#{index + 1}"

    def fail(field_name: str, problem: str) -> CatalogError:
        return CatalogError(f"catalog {path}: source {label}: field `{field_name}` {problem}")

    if not isinstance(source_id, str) or not SOURCE_ID_PATTERN.match(source_id):
        raise fail("id", "must be 2-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit")

    known = {
        "id", "authority", "country", "regions", "languages", "timezone", "kind", "urls",
        "schedule", "selectors", "topic_hints", "max_pages", "fetch_articles",
        "lists_all_current", "enabled", "notes",
    }
    for key in entry:
        if key not in known:
            raise fail(str(key), f"is not a known field; known fields are {', '.join(sorted(known))}")

    authority = _required_text(entry, "authority", fail)
    country = _required_text(entry, "country", fail)
    if country not in COUNTRIES:
        raise fail("country", f"is {country!r}; expected one of {', '.join(COUNTRIES)}")

    kind = _required_text(entry, "kind", fail)
    if kind not in SOURCE_KINDS:
        raise fail("kind", f"is {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")

    timezone = _required_text(entry, "timezone", fail)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise fail("timezone", f"is {timezone!r}, not an IANA time zone such as Europe/Helsinki") from error

    urls = _text_list(entry, "urls", fail, required=True)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise fail("urls", f"has {url!r}; each URL must be absolute http(s)")

    languages = _text_list(entry, "languages", fail, required=True)
    for language in languages:
        if not LANGUAGE_PATTERN.match(language):
            raise fail("languages", f"has {language!r}; use ISO 639-1 codes such as fi, sv, et, lv")

    regions = _text_list(entry, "regions", fail, required=False) or [country]
    _check_region_codes(regions, fail)
    schedule = entry.get("schedule", DEFAULT_SCHEDULE)
    if not isinstance(schedule, str) or not (
        schedule in CRON_PRESETS or len(schedule.split()) == 5
    ):
        raise fail("schedule", f"is {schedule!r}; use a 5-field cron expression or one of {', '.join(CRON_PRESETS)}")

    selectors = _parse_selectors(entry.get("selectors"), kind, fail)
    max_pages = entry.get("max_pages", 1)
    if not isinstance(max_pages, int) or isinstance(max_pages, bool) or not 1 <= max_pages <= 50:
        raise fail("max_pages", f"is {max_pages!r}; expected a whole number from 1 to 50")

    flags = {}
    for flag in ("fetch_articles", "lists_all_current", "enabled"):
        value = entry.get(flag, flag == "enabled")
        if not isinstance(value, bool):
            raise fail(flag, f"is {value!r}; expected true or false")
        flags[flag] = value

    return Source(
        id=source_id,
        authority=authority,
        country=country,
        regions=tuple(regions),
        languages=tuple(languages),
        timezone=timezone,
        kind=kind,
        urls=tuple(urls),
        schedule=schedule,
        selectors=selectors,
        topic_hints=tuple(_text_list(entry, "topic_hints", fail, required=False)),
        max_pages=max_pages,
        **flags,
    )


def _check_region_codes(regions: list[str], fail: Any) -> None:
    from transforms.tagging import validate_region_codes

    try:
        validate_region_codes(regions)
    except ValueError as error:
        raise fail("regions", f"is invalid: {error}; docs/regions.md lists the codes") from error


def _required_text(entry: dict[str, Any], name: str, fail: Any) -> str:
    value = entry.get(name)
    if value is not None and not isinstance(value, str):
        raise fail(name, f"is {value!r}, not text; quote it (YAML reads NO, ON and YES as booleans)")
    if value is None or not value.strip():
        raise fail(name, "is missing or empty")
    return value.strip()


def _text_list(entry: dict[str, Any], name: str, fail: Any, *, required: bool) -> list[str]:
    value = entry.get(name)
    if value is None:
        if required:
            raise fail(name, "is missing; give a list")
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise fail(name, "must be a list of non-empty strings")
    if required and not value:
        raise fail(name, "is empty; give at least one value")
    return [item.strip() for item in value]


def _parse_selectors(value: Any, kind: str, fail: Any) -> Selectors | None:
    if kind != "html":
        if value is not None:
            raise fail("selectors", f"is only for kind html, not {kind}")
        return None

    if not isinstance(value, dict):
        raise fail("selectors", "is missing; an html source needs item, title and link selectors")
    for key, selector in value.items():
        if key not in SELECTOR_FIELDS:
            raise fail(f"selectors.{key}", f"is not a known selector; known: {', '.join(SELECTOR_FIELDS)}")
        if not isinstance(selector, str) or not selector.strip():
            raise fail(f"selectors.{key}", "must be a non-empty CSS selector")
        try:
            soupsieve.compile(selector)
        except soupsieve.SelectorSyntaxError as error:
            raise fail(f"selectors.{key}", f"is {selector!r}, not valid CSS: {str(error).splitlines()[0]}") from error
    for key in REQUIRED_SELECTORS:
        if key not in value:
            raise fail(f"selectors.{key}", "is missing")
    return Selectors(**{key: selector.strip() for key, selector in value.items()})
