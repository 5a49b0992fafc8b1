"""Scoring of the tagger against a labelled set of notices (JSON Lines).

Each line contains a notice (`title`, `text`, `language`), its `source` (`id`, `authority`,
`country`, `regions`, `topic_hints`) and the expected `regions` and `topics`. Expected regions
list the most specific places; their enclosing regions are added before scoring, as the tagger
adds them too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noticeboard.catalog import Source
from transforms._places import load_regions, region_parents
from transforms._topics import TOPIC_SLUGS
from transforms.tagging import tag_notice


@dataclass
class Score:
    """True positives, false positives and false negatives of one label or of all labels."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    @property
    def support(self) -> int:
        return self.true_positives + self.false_negatives

    def add(self, expected: set[str], predicted: set[str], label: str | None = None) -> None:
        """Count one notice, for one label or (with no label) for every label."""
        if label is not None:
            expected = expected & {label}
            predicted = predicted & {label}
        self.true_positives += len(expected & predicted)
        self.false_positives += len(predicted - expected)
        self.false_negatives += len(expected - predicted)


@dataclass
class Evaluation:
    """Scores of a labelled set: topics per slug and overall, countries and all regions."""

    notices: int = 0
    topics: dict[str, Score] = field(
        default_factory=lambda: {slug: Score() for slug in TOPIC_SLUGS}
    )
    topics_micro: Score = field(default_factory=Score)
    countries: Score = field(default_factory=Score)
    regions: Score = field(default_factory=Score)
    languages: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def load_cases(path: Path) -> list[dict[str, Any]]:
    """Read a labelled set, one JSON object a line."""
    cases = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                cases.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: invalid JSON: {error}") from error
    return cases


def source_of(case: dict[str, Any]) -> Source:
    """Build the catalog source that a labelled notice names."""
    source = case["source"]
    return Source(
        id=source["id"],
        authority=source.get("authority", source["id"]),
        country=source["country"],
        regions=tuple(source.get("regions") or (source["country"],)),
        languages=(case["language"],),
        timezone="UTC",
        kind="rss",
        urls=("https://example.org/feed",),
        topic_hints=tuple(source.get("topic_hints", ())),
    )


def evaluate(cases: list[dict[str, Any]]) -> Evaluation:
    """Tag every labelled notice and count hits and misses."""
    evaluation = Evaluation()
    for case in cases:
        tags = tag_notice(case["title"], case.get("text", ""), case["language"], source_of(case))
        predicted_topics = {tag.value for tag in tags if tag.kind == "topic"}
        predicted_regions = {tag.value for tag in tags if tag.kind == "region"}
        expected_topics = set(case["topics"])
        expected_regions = _with_parents(case["regions"])

        evaluation.notices += 1
        evaluation.languages[case["language"]] += 1
        for slug, score in evaluation.topics.items():
            score.add(expected_topics, predicted_topics, slug)
        evaluation.topics_micro.add(expected_topics, predicted_topics)
        evaluation.countries.add(_countries(expected_regions), _countries(predicted_regions))
        evaluation.regions.add(expected_regions, predicted_regions)

        if expected_topics != predicted_topics or expected_regions != predicted_regions:
            missing = sorted(expected_regions - predicted_regions)
            extra = sorted(predicted_regions - expected_regions)
            evaluation.errors.append(
                f"{case['id']}: topics expected {sorted(expected_topics)} got "
                f"{sorted(predicted_topics)}; regions missing {missing} extra {extra}"
            )
    return evaluation


def _with_parents(codes: list[str]) -> set[str]:
    expanded = set(codes)
    for code in codes:
        expanded.update(region_parents(code))
    return expanded


def _countries(codes: set[str]) -> set[str]:
    regions = load_regions().regions
    return {code for code in codes if code in regions and regions[code].kind == "country"}
