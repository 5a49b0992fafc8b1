"""The topic vocabulary and the matching of topic keywords in a text.

The vocabulary lives in data/topics.yaml and is documented in docs/topics.md. A keyword is a
sequence of word patterns; each pattern is a stem that a word starts with, equals or contains.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
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
    evidence: dict[str, TopicEvidence] = {}
    for topic in load_topics().values():
        vetoed = _matched_positions(tokens, _in_language(topic.exclude, language))
        strong = _matched_words(tokens, _in_language(topic.keywords, language), vetoed)
        weak = _matched_words(tokens, _in_language(topic.weak, language), vetoed)
        if strong or weak:
            evidence[topic.slug] = TopicEvidence(strong=strong, weak=weak)
    return evidence


def _in_language(keywords: tuple[Keyword, ...], language: str | None) -> Iterable[Keyword]:
    if language not in KEYWORD_LANGUAGES:
        return keywords
    return (keyword for keyword in keywords if keyword.language == language)


def _matched_words(
    tokens: list[Token], keywords: Iterable[Keyword], vetoed: set[int]
) -> tuple[str, ...]:
    words: set[str] = set()
    for keyword in keywords:
        for start in _keyword_starts(tokens, keyword):
            span = range(start, start + len(keyword.patterns))
            if vetoed.intersection(span):
                continue
            words.add(" ".join(tokens[index].text for index in span).casefold())
    return tuple(sorted(words))


def _matched_positions(tokens: list[Token], keywords: Iterable[Keyword]) -> set[int]:
    positions: set[int] = set()
    for keyword in keywords:
        for start in _keyword_starts(tokens, keyword):
            positions.update(range(start, start + len(keyword.patterns)))
    return positions


def _keyword_starts(tokens: list[Token], keyword: Keyword) -> Iterable[int]:
    length = len(keyword.patterns)
    for start in range(len(tokens) - length + 1):
        if all(
            pattern.matches(tokens[start + offset])
            for offset, pattern in enumerate(keyword.patterns)
        ):
            yield start


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
        mode = "exact" if "=" in markers else "infix" if "*" in markers else "prefix"
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
