"""The choices a subscriber has: interface languages, frequencies, regions and topics.

Region codes and topic slugs come from the tagger's vocabularies. When the vocabulary files cannot
be read, the four countries and the tagger's fixed list of topic slugs are offered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from noticeboard.catalog import COUNTRIES
from transforms._topics import TOPIC_SLUGS as FALLBACK_TOPICS

logger = logging.getLogger(__name__)

LANGUAGES = ("en", "fi", "sv", "et", "lv", "ru")
DEFAULT_LANGUAGE = "en"
FREQUENCIES = ("immediate", "daily", "weekly")


@dataclass(frozen=True)
class Region:
    """A country, subdivision or municipality, with names by language where known."""

    code: str
    names: dict[str, str]
    kind: str = "country"

    @property
    def country(self) -> str:
        return self.code.split("-", 1)[0]


class PreferenceError(ValueError):
    """A language, frequency, region or topic is not one of the offered choices."""


@lru_cache(maxsize=1)
def regions() -> tuple[Region, ...]:
    """Return the countries and their subdivisions, countries first."""
    loaded: list[Region] = []
    try:
        from transforms.tagging import load_regions

        vocabulary = load_regions()
        entries = getattr(vocabulary, "regions", vocabulary)
        loaded = [_region_from(item, key) for key, item in _items(entries)]
    except (ImportError, OSError, ValueError, TypeError, AttributeError, KeyError) as error:
        logger.warning("regions unavailable error=%s fallback=countries", error)
    codes = {region.code for region in loaded}
    countries = [Region(code, {}) for code in COUNTRIES if code not in codes]
    merged = countries + loaded
    return tuple(
        sorted(
            merged,
            key=lambda region: (
                COUNTRIES.index(region.country) if region.country in COUNTRIES else 99,
                "-" in region.code,
                region.code,
            ),
        )
    )


@lru_cache(maxsize=1)
def topics() -> tuple[str, ...]:
    """Return the topic slugs in the tagger's order."""
    try:
        from transforms.tagging import load_topics

        slugs = [_code_of(item, key) for key, item in _items(load_topics())]
    except (ImportError, OSError, ValueError, TypeError, AttributeError, KeyError) as error:
        logger.warning("topics unavailable error=%s fallback=builtin", error)
        return FALLBACK_TOPICS
    return tuple(slugs) or FALLBACK_TOPICS


def region_codes() -> frozenset[str]:
    return frozenset(region.code for region in regions())


def offered_regions() -> tuple[Region, ...]:
    """Return the countries and subdivisions that the preferences form lists.

    Municipalities are left out to keep the form short. The tagger also tags a notice with the
    subdivision and country that enclose a municipality, so those choices cover it.
    """
    return tuple(region for region in regions() if region.kind in ("country", "subdivision"))


def check_language(language: str) -> str:
    """Return `language` if it is an interface language, else raise `PreferenceError`."""
    if language not in LANGUAGES:
        raise PreferenceError(
            f"language {language!r} is not offered; use one of {', '.join(LANGUAGES)}"
        )
    return language


def check_frequency(frequency: str) -> str:
    """Return `frequency` if it is offered, else raise `PreferenceError`."""
    if frequency not in FREQUENCIES:
        raise PreferenceError(
            f"frequency {frequency!r} is not offered; use one of {', '.join(FREQUENCIES)}"
        )
    return frequency


def check_regions(values: Iterable[str]) -> list[str]:
    """Return the region codes upper-cased, de-duplicated and sorted; raise on an unknown one."""
    known = {code.upper(): code for code in region_codes()}
    requested = {value.strip().upper() for value in values if value.strip()}
    unknown = sorted(code for code in requested if code not in known)
    if unknown:
        raise PreferenceError(
            f"unknown region code(s) {', '.join(unknown)}; use ISO 3166 codes such as FI or FI-18"
        )
    return sorted(known[code] for code in requested)


def check_topics(values: Iterable[str]) -> list[str]:
    """Return the topic slugs de-duplicated and sorted; raise on an unknown one."""
    known = set(topics())
    chosen = sorted({value.strip().lower() for value in values if value.strip()})
    unknown = [slug for slug in chosen if slug not in known]
    if unknown:
        raise PreferenceError(f"unknown topic(s) {', '.join(unknown)}; use slugs such as housing")
    return chosen


def best_language(accept_language: str | None) -> str:
    """Pick the first interface language named in an Accept-Language header, else English."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower().split("-")[0]
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag in LANGUAGES and quality > 0:
            weighted.append((-quality, position, tag))
    return min(weighted)[2] if weighted else DEFAULT_LANGUAGE


def _items(loaded: Any) -> list[tuple[str | None, Any]]:
    if isinstance(loaded, dict):
        return list(loaded.items())
    return [(None, item) for item in loaded]


def _code_of(item: Any, key: str | None) -> str:
    if isinstance(item, str):
        return item
    for attribute in ("code", "slug", "id"):
        value = item.get(attribute) if isinstance(item, dict) else getattr(item, attribute, None)
        if value:
            return str(value)
    if key is not None:
        return str(key)
    raise ValueError(f"cannot find a code in {item!r}")


def _region_from(item: Any, key: str | None) -> Region:
    code = _code_of(item, key)
    names = item.get("names") if isinstance(item, dict) else getattr(item, "names", None)
    if not isinstance(names, dict):
        name = item.get("name") if isinstance(item, dict) else getattr(item, "name", None)
        names = {"en": str(name)} if name else {}
    kind = item.get("kind") if isinstance(item, dict) else getattr(item, "kind", None)
    first_names = {str(language): _first(text) for language, text in names.items() if _first(text)}
    return Region(code, first_names, str(kind or ("subdivision" if "-" in code else "country")))


def _first(names: Any) -> str:
    if isinstance(names, (list, tuple)):
        return str(names[0]) if names else ""
    return str(names or "")
