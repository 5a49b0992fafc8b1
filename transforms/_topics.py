"""The topic vocabulary and the matching of topic keywords in a text.

The vocabulary lives in data/topics.yaml and is documented in docs/topics.md. A keyword is a
sequence of word patterns; each pattern is a stem that a word starts with, equals or contains.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from noticeboard.errors import ConfigError
from transforms._text import Token, exact_form, fold, split_words

# libyaml's loader is about 30 times faster than the pure-Python one; both are safe loaders.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

logger = logging.getLogger(__name__)

TOPICS_PATH = Path(__file__).parent / "data" / "topics.yaml"
TOPIC_SLUGS = (
    "residence-permits",
    "citizenship",
    "asylum",
    "registration-id",
    "taxation",
    "social-security",
    "employment",
    "housing",
    "healthcare",
    "education",
    "childcare",
    "language-learning",
    "transport",
    "public-safety",
    "service-disruption",
    "civic-participation",
    "culture-leisure",
    "business",
    "other",
)
FALLBACK_TOPIC = "other"
KEYWORD_LANGUAGES = ("fi", "sv", "et", "lv", "en", "ru")
# Roles of a keyword within its topic, as positions in the span lists of `_keyword_matches`.
STRONG, WEAK, EXCLUDE = 0, 1, 2
# Words whose matching patterns are remembered, because notices repeat their words. When full,
# this cache and the token cache of transforms/_text.py hold about 10 MB together (measured with
# tracemalloc on 16,384 random words of 4 to 14 letters).
WORD_CACHE_SIZE = 16_384
NO_PATTERNS: frozenset[int] = frozenset()


@dataclass(frozen=True)
class WordPattern:
    """One word of a keyword: `mode` is prefix, exact or infix."""

    stem: str
    mode: str
    keep_diacritics: bool

    def matches(self, token: Token) -> bool:
        word = token.exact if self.keep_diacritics else token.folded
        if self.mode == "exact":
            return word == self.stem
        if self.mode == "infix":
            return self.stem in word
        return word.startswith(self.stem)


@dataclass(frozen=True)
class Keyword:
    """A keyword as written in the vocabulary and the word patterns it compiles to."""

    source: str
    language: str
    patterns: tuple[WordPattern, ...]


@dataclass(frozen=True)
class Topic:
    """One topic with its strong, weak and excluded keywords."""

    slug: str
    label: str
    keywords: tuple[Keyword, ...]
    weak: tuple[Keyword, ...]
    exclude: tuple[Keyword, ...]


@dataclass(frozen=True)
class TopicEvidence:
    """The words of a text that matched a topic's strong and weak keywords."""

    strong: tuple[str, ...]
    weak: tuple[str, ...]


@dataclass(frozen=True)
class IndexEntry:
    """A keyword filed under its first word pattern: its topic, role and remaining pattern ids."""

    topic: int
    role: int
    rest: tuple[int, ...]


@dataclass(frozen=True)
class FormTable:
    """The word patterns that test one form of a word (folded, or exact with diacritics).

    `prefix_lengths` lists the stem lengths in `prefix`, ascending, so that a word is looked up
    once per length instead of once per stem. `infix_pattern` finds whether any stem of `infix`
    occurs in a word at all; only then is each of them tested.
    """

    exact: dict[str, int]
    prefix: dict[str, int]
    prefix_lengths: tuple[int, ...]
    infix: tuple[tuple[str, int], ...]
    infix_pattern: re.Pattern[str] | None

    def pattern_ids(self, word: str) -> list[int]:
        """Return the ids of the patterns that match `word`, as `WordPattern.matches` defines."""
        found = []

        exact_id = self.exact.get(word)
        if exact_id is not None:
            found.append(exact_id)

        for length in self.prefix_lengths:
            if length > len(word):
                break
            prefix_id = self.prefix.get(word[:length])
            if prefix_id is not None:
                found.append(prefix_id)

        if self.infix_pattern is not None and self.infix_pattern.search(word):
            found.extend(infix_id for stem, infix_id in self.infix if stem in word)
        return found


@dataclass(frozen=True)
class KeywordIndex:
    """The keywords of one language, or of all when `language` is None, by their first pattern.

    A text is matched by looking up the patterns of each of its words once, instead of testing
    every keyword at every position.
    """

    language: str | None
    slugs: tuple[str, ...]
    folded: FormTable
    exact: FormTable
    by_first_pattern: dict[int, tuple[IndexEntry, ...]]


@functools.lru_cache(maxsize=4)
def load_topics(path: Path | None = None) -> dict[str, Topic]:
    """Read and check the topic vocabulary (data/topics.yaml unless a path is given)."""
    path = path or TOPICS_PATH
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read topic vocabulary {path}: {error}") from error

    if not isinstance(document, dict) or not isinstance(document.get("topics"), list):
        raise ConfigError(
            f"topic vocabulary {path} has no `topics:` list; see docs/topics.md for the format"
        )

    topics: dict[str, Topic] = {}
    for entry in document["topics"]:
        topic = _parse_topic(entry, path)
        topics[topic.slug] = topic

    if tuple(topics) != TOPIC_SLUGS:
        raise ConfigError(
            f"topic vocabulary {path} lists {', '.join(topics)}; expected exactly "
            f"{', '.join(TOPIC_SLUGS)} in that order"
        )

    logger.debug("loaded topics path=%s topics=%d", path, len(topics))
    return topics


def find_topics(tokens: list[Token], language: str | None) -> dict[str, TopicEvidence]:
    """Collect, per topic, the words that matched its keywords in the text's language."""
    index = _keyword_index(_language_key(language))
    matches = _keyword_matches(tokens, index)

    evidence: dict[str, TopicEvidence] = {}
    for position in sorted(matches):
        found = matches[position]
        vetoed = {
            offset for start, length in found[EXCLUDE] for offset in range(start, start + length)
        }
        strong = _matched_words(tokens, found[STRONG], vetoed)
        weak = _matched_words(tokens, found[WEAK], vetoed)
        if strong or weak:
            evidence[index.slugs[position]] = TopicEvidence(strong=strong, weak=weak)
    return evidence


def _language_key(language: str | None) -> str | None:
    # A text in another language, or in none, is matched against the keywords of every language.
    return language if language in KEYWORD_LANGUAGES else None


def _keyword_matches(
    tokens: list[Token], index: KeywordIndex
) -> dict[int, tuple[list[tuple[int, int]], ...]]:
    """Find every keyword match: per topic position, (start, length) spans per keyword role."""
    pattern_sets = [
        _word_pattern_ids(index.language, token.folded, token.exact) for token in tokens
    ]
    matches: dict[int, tuple[list[tuple[int, int]], ...]] = {}

    for start, pattern_ids in enumerate(pattern_sets):
        for pattern_id in pattern_ids:
            for entry in index.by_first_pattern.get(pattern_id, ()):
                end = start + 1 + len(entry.rest)
                if end > len(tokens):
                    continue
                if entry.rest and not all(
                    rest_id in pattern_sets[start + 1 + offset]
                    for offset, rest_id in enumerate(entry.rest)
                ):
                    continue
                spans = matches.setdefault(entry.topic, ([], [], []))
                spans[entry.role].append((start, end - start))

    return matches


def _matched_words(
    tokens: list[Token], spans: list[tuple[int, int]], vetoed: set[int]
) -> tuple[str, ...]:
    words: set[str] = set()
    for start, length in spans:
        if vetoed and not vetoed.isdisjoint(range(start, start + length)):
            continue
        words.add(" ".join(token.text for token in tokens[start : start + length]).casefold())
    return tuple(sorted(words))


@functools.lru_cache(maxsize=len(KEYWORD_LANGUAGES) + 1)
def _keyword_index(language: str | None) -> KeywordIndex:
    topics = list(load_topics().values())
    pattern_ids: dict[WordPattern, int] = {}
    entries: dict[int, list[IndexEntry]] = {}

    for position, topic in enumerate(topics):
        for role, keywords in (
            (STRONG, topic.keywords),
            (WEAK, topic.weak),
            (EXCLUDE, topic.exclude),
        ):
            for keyword in keywords:
                if language is not None and keyword.language != language:
                    continue
                ids = [
                    pattern_ids.setdefault(pattern, len(pattern_ids))
                    for pattern in keyword.patterns
                ]
                entries.setdefault(ids[0], []).append(
                    IndexEntry(topic=position, role=role, rest=tuple(ids[1:]))
                )

    index = KeywordIndex(
        language=language,
        slugs=tuple(topic.slug for topic in topics),
        folded=_form_table(pattern_ids, keep_diacritics=False),
        exact=_form_table(pattern_ids, keep_diacritics=True),
        by_first_pattern={first: tuple(found) for first, found in entries.items()},
    )
    logger.debug("indexed topic keywords language=%s patterns=%d", language, len(pattern_ids))
    return index


def _form_table(pattern_ids: dict[WordPattern, int], keep_diacritics: bool) -> FormTable:
    patterns = [
        (pattern, pattern_id)
        for pattern, pattern_id in pattern_ids.items()
        if pattern.keep_diacritics == keep_diacritics
    ]
    prefix = {
        pattern.stem: pattern_id for pattern, pattern_id in patterns if pattern.mode == "prefix"
    }
    infix = tuple(
        (pattern.stem, pattern_id) for pattern, pattern_id in patterns if pattern.mode == "infix"
    )
    infix_pattern = None
    if infix:
        infix_pattern = re.compile("|".join(re.escape(stem) for stem, _ in infix))

    return FormTable(
        exact={
            pattern.stem: pattern_id for pattern, pattern_id in patterns if pattern.mode == "exact"
        },
        prefix=prefix,
        prefix_lengths=tuple(sorted({len(stem) for stem in prefix})),
        infix=infix,
        infix_pattern=infix_pattern,
    )


@functools.lru_cache(maxsize=WORD_CACHE_SIZE)
def _word_pattern_ids(language: str | None, folded: str, exact: str) -> frozenset[int]:
    index = _keyword_index(language)
    found = index.folded.pattern_ids(folded) + index.exact.pattern_ids(exact)
    return frozenset(found) if found else NO_PATTERNS


def compile_keyword(text: str, language: str) -> Keyword:
    """Compile a vocabulary keyword such as "*oleskelulu" or "kielen kurs" into word patterns."""
    patterns = []
    for part in text.split():
        markers = ""
        while part and part[0] in "=*!":
            markers += part[0]
            part = part[1:]

        words = split_words(part)
        if len(words) != 1:
            raise ConfigError(
                f"topic keyword {text!r} ({language}): {part!r} must be one word; "
                "write a multi-word keyword with spaces"
            )

        keep_diacritics = "!" in markers
        mode = "prefix"
        if "=" in markers:
            mode = "exact"
        elif "*" in markers:
            mode = "infix"
        stem = exact_form(words[0]) if keep_diacritics else fold(words[0])
        patterns.append(WordPattern(stem=stem, mode=mode, keep_diacritics=keep_diacritics))

    if not patterns:
        raise ConfigError(f"topic keyword in {language} is empty")
    return Keyword(source=text, language=language, patterns=tuple(patterns))


def _parse_topic(entry: Any, path: Path) -> Topic:
    if not isinstance(entry, dict) or not isinstance(entry.get("slug"), str):
        raise ConfigError(f"topic vocabulary {path}: entry {entry!r} has no slug")

    slug = entry["slug"]

    def keywords_of(field_name: str) -> tuple[Keyword, ...]:
        value = entry.get(field_name) or {}
        if not isinstance(value, dict):
            raise ConfigError(
                f"topic vocabulary {path}: {slug}.{field_name} must map languages to lists"
            )

        compiled = []
        for language, items in value.items():
            if language not in KEYWORD_LANGUAGES:
                raise ConfigError(
                    f"topic vocabulary {path}: {slug}.{field_name} has language {language!r}; "
                    f"expected one of {', '.join(KEYWORD_LANGUAGES)}"
                )
            for item in items or ():
                compiled.append(compile_keyword(str(item), language))
        return tuple(compiled)

    topic = Topic(
        slug=slug,
        label=str(entry.get("label", slug)),
        keywords=keywords_of("keywords"),
        weak=keywords_of("weak"),
        exclude=keywords_of("exclude"),
    )

    missing = [
        language
        for language in KEYWORD_LANGUAGES
        if slug != FALLBACK_TOPIC and not any(k.language == language for k in topic.keywords)
    ]
    if missing:
        raise ConfigError(
            f"topic vocabulary {path}: {slug} has no keywords in {', '.join(missing)}"
        )
    return topic
