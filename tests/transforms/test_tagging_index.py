"""The indexed keyword and place matching against a direct scan of every keyword and window.

The direct scans below test each keyword at each token position and each window length at each
position, as the matching rules in docs/topics.md and docs/regions.md describe them. The indexed
matchers must find exactly the same words on every notice of the labelled sets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transforms._places import PlaceMatch, _accepts, find_places, load_regions
from transforms._text import Token, tokenise
from transforms._topics import KEYWORD_LANGUAGES, Keyword, TopicEvidence, find_topics, load_topics

DATA_DIR = Path(__file__).parent / "data"


def load_texts() -> list[tuple[str, str]]:
    """Return (text, language) for every notice of the tagging and language sets."""
    texts = []
    for line in (DATA_DIR / "tagging_eval.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        texts.append((f"{case['title']}\n{case['text']}", case["language"]))
    for line in (DATA_DIR / "language_eval.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        texts.append((case["text"], case["language"]))
    return texts


TEXTS = load_texts()


def keyword_starts(tokens: list[Token], keyword: Keyword) -> list[int]:
    length = len(keyword.patterns)
    return [
        start
        for start in range(len(tokens) - length + 1)
        if all(
            pattern.matches(tokens[start + offset])
            for offset, pattern in enumerate(keyword.patterns)
        )
    ]


def scan_topics(tokens: list[Token], language: str | None) -> dict[str, TopicEvidence]:
    def in_language(keywords: tuple[Keyword, ...]) -> list[Keyword]:
        if language not in KEYWORD_LANGUAGES:
            return list(keywords)
        return [keyword for keyword in keywords if keyword.language == language]

    def matched_words(keywords: list[Keyword], vetoed: set[int]) -> tuple[str, ...]:
        words = set()
        for keyword in keywords:
            for start in keyword_starts(tokens, keyword):
                span = range(start, start + len(keyword.patterns))
                if not vetoed.intersection(span):
                    words.add(" ".join(tokens[index].text for index in span).casefold())
        return tuple(sorted(words))

    evidence = {}
    for topic in load_topics().values():
        vetoed = {
            index
            for keyword in in_language(topic.exclude)
            for start in keyword_starts(tokens, keyword)
            for index in range(start, start + len(keyword.patterns))
        }
        strong = matched_words(in_language(topic.keywords), vetoed)
        weak = matched_words(in_language(topic.weak), vetoed)
        if strong or weak:
            evidence[topic.slug] = TopicEvidence(strong=strong, weak=weak)
    return evidence


def scan_places(tokens: list[Token], language: str | None) -> list[PlaceMatch]:
    vocabulary = load_regions()
    matches = []
    position = 0
    while position < len(tokens):
        matched_length = 0
        for length in range(min(vocabulary.max_words, len(tokens) - position), 0, -1):
            window = tokens[position : position + length]
            forms = vocabulary.index.get(tuple(token.folded for token in window), ())
            end = position + length
            next_token = tokens[end] if end < len(tokens) else None
            accepted = [form for form in forms if _accepts(form, window, next_token, language)]
            if accepted:
                text = " ".join(token.text for token in window)
                codes = sorted({form.region.code for form in accepted})
                matches += [PlaceMatch(code=code, words=text) for code in codes]
                matched_length = length
                break
        position += matched_length or 1
    return matches


def test_index_texts_loaded() -> None:
    assert len(TEXTS) > 400


# "own" is each text's own language; None selects the keywords of every language.
@pytest.mark.parametrize("language", ["own", None])
def test_topic_index_matches_scan(language: str | None) -> None:
    for text, own in TEXTS:
        tokens = tokenise(text)
        chosen = own if language == "own" else language
        assert find_topics(tokens, chosen) == scan_topics(tokens, chosen), text


def test_topic_index_unlisted_language() -> None:
    for text, _ in TEXTS:
        tokens = tokenise(text)
        assert find_topics(tokens, "de") == find_topics(tokens, None), text


@pytest.mark.parametrize("language", ["own", None, "de"])
def test_place_index_matches_scan(language: str | None) -> None:
    for text, own in TEXTS:
        tokens = tokenise(text)
        chosen = own if language == "own" else language
        assert find_places(tokens, chosen) == scan_places(tokens, chosen), text


def test_topic_index_found_evidence() -> None:
    found = sum(bool(find_topics(tokenise(text), language)) for text, language in TEXTS)

    assert found > len(TEXTS) // 2


def test_topic_index_diacritics_and_infix() -> None:
    tokens = tokenise("Üüri toetus ja uuringu tulemused; elamisloa pikendamine")

    evidence = find_topics(tokens, "et")

    assert evidence["housing"].strong == ("üüri",)
    assert evidence["residence-permits"].strong == ("elamisloa",)


def test_address_removed_only_when_present() -> None:
    assert [token.text for token in tokenise("Katso www.espoo.fi tai Suomi.fi")] == ["Katso", "tai"]
    assert [token.text for token in tokenise("Espoo. Fi")] == ["Espoo", "Fi"]
