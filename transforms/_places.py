"""The region vocabulary and the matching of place names in a text.

The vocabulary lives in data/regions.yaml and is documented in docs/regions.md. Each name and
inflection stem becomes one or more word sequences. A text matches the longest sequence at each
position, and guards reject matches of names that are also common words.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from noticeboard.errors import ConfigError
from transforms._text import Token, exact_form, fold, split_words

# libyaml's loader is about 30 times faster than the pure-Python one; both are safe loaders.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

logger = logging.getLogger(__name__)

REGIONS_PATH = Path(__file__).parent / "data" / "regions.yaml"
REGION_KINDS = ("country", "subdivision", "municipality")
GUARDS = ("capitalised",)


@dataclass(frozen=True)
class Region:
    """One entry of the region vocabulary."""

    code: str
    kind: str
    parent: str | None
    names: dict[str, tuple[str, ...]]
    stems: dict[str, tuple[str, ...]] = field(default_factory=dict)
    iso: str | None = None
    guard: str | None = None
    homonym_in: tuple[str, ...] = ()
    unless_next: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlaceForm:
    """A word sequence that names a region; `language` is None when any text may use it."""

    region: Region
    words: tuple[str, ...]
    exact_words: tuple[str, ...]
    language: str | None


@dataclass(frozen=True)
class PlaceMatch:
    """A region named in a text, with the words as the text wrote them."""

    code: str
    words: str


@dataclass(frozen=True)
class RegionVocabulary:
    """All regions by code, and an index from folded word sequences to their forms.

    `lengths_by_first` maps the first folded word of each indexed sequence to the lengths of the
    sequences that start with it, longest first, so that most words need one lookup.
    """

    regions: dict[str, Region]
    index: dict[tuple[str, ...], tuple[PlaceForm, ...]]
    max_words: int
    lengths_by_first: dict[str, tuple[int, ...]]


@functools.lru_cache(maxsize=4)
def load_regions(path: Path | None = None) -> RegionVocabulary:
    """Read and check the region vocabulary (data/regions.yaml unless a path is given)."""
    path = path or REGIONS_PATH
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read region vocabulary {path}: {error}") from error

    if (
        not isinstance(document, dict)
        or not isinstance(document.get("endings"), dict)
        or not isinstance(document.get("regions"), list)
    ):
        raise ConfigError(
            f"region vocabulary {path} needs an `endings:` mapping and a `regions:` list; "
            "see docs/regions.md for the format"
        )

    endings = {language: tuple(values) for language, values in document["endings"].items()}
    regions: dict[str, Region] = {}
    for entry in document["regions"]:
        region = _parse_region(entry, path)
        if region.code in regions:
            raise ConfigError(f"region vocabulary {path}: code {region.code} is used twice")
        regions[region.code] = region

    for region in regions.values():
        if region.parent is not None and region.parent not in regions:
            raise ConfigError(
                f"region vocabulary {path}: {region.code} has unknown parent {region.parent}"
            )

    index: dict[tuple[str, ...], list[PlaceForm]] = {}
    for region in regions.values():
        for form in _forms_of(region, endings):
            index.setdefault(form.words, []).append(form)

    lengths_by_first: dict[str, set[int]] = {}
    for words in index:
        if words:
            lengths_by_first.setdefault(words[0], set()).add(len(words))

    logger.debug("loaded regions path=%s regions=%d forms=%d", path, len(regions), len(index))
    return RegionVocabulary(
        regions=regions,
        index={words: tuple(forms) for words, forms in index.items()},
        max_words=max(len(words) for words in index),
        lengths_by_first={
            word: tuple(sorted(lengths, reverse=True)) for word, lengths in lengths_by_first.items()
        },
    )


def region_parents(code: str) -> list[str]:
    """Return the codes enclosing a region, nearest first: [county, country] for a municipality."""
    regions = load_regions().regions
    if code not in regions:
        raise KeyError(f"unknown region code {code!r}; see transforms/data/regions.yaml")

    parents: list[str] = []
    parent = regions[code].parent
    while parent is not None:
        parents.append(parent)
        parent = regions[parent].parent
    return parents


def validate_region_codes(codes: Iterable[str]) -> None:
    """Raise ValueError naming every code that the region vocabulary does not define."""
    regions = load_regions().regions
    unknown = sorted({code for code in codes if code not in regions})
    if unknown:
        raise ValueError(
            f"unknown region code {', '.join(unknown)}; use a code from "
            "transforms/data/regions.yaml (listed in docs/regions.md)"
        )


def find_places(tokens: list[Token], language: str | None) -> list[PlaceMatch]:
    """Find the regions named in a token list, taking the longest name at each position."""
    vocabulary = load_regions()
    folded = [token.folded for token in tokens]
    matches: list[PlaceMatch] = []
    # The first position that is not inside an earlier match.
    free_from = 0

    # Most words start no name, so only the positions whose word starts one are visited.
    first_words = vocabulary.lengths_by_first
    starts = [position for position, word in enumerate(folded) if word in first_words]
    for position in starts:
        if position < free_from:
            continue
        for length in first_words[folded[position]]:
            end = position + length
            if end > len(tokens):
                continue
            forms = vocabulary.index.get(tuple(folded[position:end]), ())
            window = tokens[position:end]
            next_token = tokens[end] if end < len(tokens) else None
            accepted = [form for form in forms if _accepts(form, window, next_token, language)]
            if accepted:
                text = " ".join(token.text for token in window)
                for code in sorted({form.region.code for form in accepted}):
                    matches.append(PlaceMatch(code=code, words=text))
                free_from = end
                break

    return matches


def _accepts(
    form: PlaceForm, window: list[Token], next_token: Token | None, language: str | None
) -> bool:
    region = form.region
    if form.language is not None and language is not None and form.language != language:
        return False

    if next_token is not None and any(
        next_token.folded.startswith(veto) for veto in region.unless_next
    ):
        return False

    if region.guard == "capitalised":
        first = window[0]
        if not first.capitalised:
            return False
        # A word written with diacritics must carry the name's own ones: "lūdza" (asked) is not
        # the town of Ludza, "tāls" (far) is not Talsi.
        if any(token.has_diacritics for token in window) and form.exact_words != tuple(
            token.exact for token in window
        ):
            return False
        if (language is None or language in region.homonym_in) and region.homonym_in:
            if first.sentence_start:
                return False

    return True


def _forms_of(region: Region, endings: dict[str, tuple[str, ...]]) -> Iterable[PlaceForm]:
    for language, names in region.names.items():
        for name in names:
            yield _form(region, name, "", None)
            for ending in endings.get(language, ("",)):
                if ending:
                    yield _form(region, name, ending, language)

    for language, stems in region.stems.items():
        for stem in stems:
            for ending in endings.get(language, ("",)):
                if ending:
                    yield _form(region, stem, ending, language)


def _form(region: Region, name: str, ending: str, language: str | None) -> PlaceForm:
    words = split_words(name + ending)
    return PlaceForm(
        region=region,
        words=tuple(fold(word) for word in words),
        exact_words=tuple(exact_form(word) for word in words),
        language=language,
    )


def _parse_region(entry: Any, path: Path) -> Region:
    if not isinstance(entry, dict) or not isinstance(entry.get("code"), str):
        raise ConfigError(f"region vocabulary {path}: entry {entry!r} has no code")

    code = entry["code"]
    kind = entry.get("kind")
    if kind not in REGION_KINDS:
        raise ConfigError(
            f"region vocabulary {path}: {code} has kind {kind!r}; expected one of "
            f"{', '.join(REGION_KINDS)}"
        )
    if (kind == "country") != (entry.get("parent") is None):
        raise ConfigError(f"region vocabulary {path}: {code} needs a parent unless it is a country")

    guard = entry.get("guard")
    if guard is not None and guard not in GUARDS:
        raise ConfigError(
            f"region vocabulary {path}: {code} has guard {guard!r}; expected {', '.join(GUARDS)}"
        )

    names = _language_lists(entry.get("names"), f"{code} names", path)
    if not names:
        raise ConfigError(f"region vocabulary {path}: {code} has no names")

    return Region(
        code=code,
        kind=kind,
        parent=entry.get("parent"),
        names=names,
        stems=_language_lists(entry.get("stems"), f"{code} stems", path),
        iso=entry.get("iso"),
        guard=guard,
        homonym_in=tuple(entry.get("homonym_in", ())),
        unless_next=tuple(fold(word) for word in entry.get("unless_next", ())),
    )


def _language_lists(value: Any, label: str, path: Path) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"region vocabulary {path}: {label} must map languages to lists")

    lists: dict[str, tuple[str, ...]] = {}
    for language, items in value.items():
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ConfigError(
                f"region vocabulary {path}: {label}.{language} must be a list of text"
            )
        lists[language] = tuple(items)
    return lists
