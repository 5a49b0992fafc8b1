"""Region and topic tags for a notice, each with the rule that produced it.

Region rules, by precedence when several give the same region:
    source-default   a region the catalog lists for the source (detail: source id)
    place-name       a place named in the title or text (detail: the words as written)
    implied-parent   the county or country that encloses a tagged region (detail: child code)

Topic rules:
    keyword          a strong keyword of the topic matched (detail: the matched words)
    source-hint      a topic the source leans to, given when a weak keyword of that topic agrees
                     or when no keyword of any topic matched (detail: why)
    fallback         `other`, when no topic was given by the rules above

The vocabularies are data/regions.yaml and data/topics.yaml, documented in docs/regions.md and
docs/topics.md.
"""

from __future__ import annotations

import logging

from noticeboard.catalog import Source
from noticeboard.models import Tag
from transforms._places import find_places, load_regions, region_parents, validate_region_codes
from transforms._text import Token, tokenise
from transforms._topics import FALLBACK_TOPIC, find_topics, load_topics

__all__ = ["load_regions", "load_topics", "region_parents", "tag_notice", "validate_region_codes"]

logger = logging.getLogger(__name__)

REGION_RULE_ORDER = ("source-default", "place-name", "implied-parent")
MAX_DETAIL_WORDS = 5


def tag_notice(title: str, text: str, language: str | None, source: Source) -> list[Tag]:
    """Tag a notice with regions and topics, sorted by kind and value."""
    language = _effective_language(language, source)
    tokens = tokenise(f"{title}\n{text}")

    tags = _region_tags(tokens, language, source) + _topic_tags(tokens, language, source)
    tags.sort(key=lambda tag: (tag.kind, tag.value))

    # The check skips joining the tag list when debug logging is off.
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "tagged source=%s language=%s tags=%s",
            source.id,
            language,
            ",".join(f"{tag.kind}:{tag.value}" for tag in tags),
        )
    return tags


def _effective_language(language: str | None, source: Source) -> str | None:
    if language:
        return language.lower()
    if len(source.languages) == 1:
        return source.languages[0]
    return None


def _region_tags(tokens: list[Token], language: str | None, source: Source) -> list[Tag]:
    regions = load_regions().regions
    found: dict[str, Tag] = {}

    def add(tag: Tag) -> None:
        current = found.get(tag.value)
        if current is None or REGION_RULE_ORDER.index(tag.rule) < REGION_RULE_ORDER.index(
            current.rule
        ):
            found[tag.value] = tag

    for code in source.regions or (source.country,):
        add(Tag(kind="region", value=code, rule="source-default", detail=source.id))

    for match in find_places(tokens, language):
        add(Tag(kind="region", value=match.code, rule="place-name", detail=match.words))

    for child in sorted(found):
        if child not in regions:
            logger.warning("unknown region source=%s code=%s", source.id, child)
            continue
        for parent in region_parents(child):
            add(Tag(kind="region", value=parent, rule="implied-parent", detail=child))

    return list(found.values())


def _topic_tags(tokens: list[Token], language: str | None, source: Source) -> list[Tag]:
    evidence = find_topics(tokens, language)
    known = load_topics()
    tags = [
        Tag(kind="topic", value=slug, rule="keyword", detail=_join(found.strong))
        for slug, found in evidence.items()
        if found.strong
    ]
    matched = {tag.value for tag in tags}
    keyword_matched = bool(tags)

    for hint in source.topic_hints:
        if hint not in known:
            logger.warning("unknown topic hint source=%s topic=%s", source.id, hint)
            continue
        if hint in matched:
            continue

        weak = evidence[hint].weak if hint in evidence else ()
        if weak:
            detail = f"source hint agrees with weak keyword {_join(weak)}"
        elif not keyword_matched:
            detail = "source hint; no topic keyword matched"
        else:
            continue
        tags.append(Tag(kind="topic", value=hint, rule="source-hint", detail=detail))
        matched.add(hint)

    if not tags:
        tags.append(
            Tag(
                kind="topic",
                value=FALLBACK_TOPIC,
                rule="fallback",
                detail="no topic keyword matched",
            )
        )
    return tags


def _join(words: tuple[str, ...]) -> str:
    joined = ", ".join(words[:MAX_DETAIL_WORDS])
    if len(words) > MAX_DETAIL_WORDS:
        joined += f" (+{len(words) - MAX_DETAIL_WORDS} more)"
    return joined
