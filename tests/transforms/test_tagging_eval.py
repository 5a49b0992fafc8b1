"""Scores of the tagger on the labelled evaluation set, against the recorded scores."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from transforms._evaluation import Evaluation, evaluate, load_cases

DATA_DIR = Path(__file__).parent / "data"
CASES_PATH = DATA_DIR / "tagging_eval.jsonl"
BASELINE_PATH = DATA_DIR / "tagging_eval_baseline.json"
LANGUAGES = ("fi", "sv", "et", "lv", "en", "ru")
# Scores are rounded to three decimals when recorded.
TOLERANCE = 0.0005


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return evaluate(load_cases(CASES_PATH))


@pytest.fixture(scope="module")
def baseline() -> dict[str, float]:
    return json.loads(BASELINE_PATH.read_text(encoding="utf-8"))


def test_eval_set_size() -> None:
    cases = load_cases(CASES_PATH)
    languages = Counter(case["language"] for case in cases)

    assert len(cases) >= 150
    for language in LANGUAGES:
        assert languages[language] >= 20, f"only {languages[language]} notices in {language}"


def test_eval_set_ids_unique() -> None:
    ids = [case["id"] for case in load_cases(CASES_PATH)]

    assert len(ids) == len(set(ids))


def test_topic_micro_f1_not_below_record(
    evaluation: Evaluation, baseline: dict[str, float]
) -> None:
    measured = evaluation.topics_micro.f1

    assert measured >= baseline["topics_micro_f1"] - TOLERANCE, "\n".join(evaluation.errors)


def test_country_f1_not_below_record(evaluation: Evaluation, baseline: dict[str, float]) -> None:
    measured = evaluation.countries.f1

    assert measured >= baseline["countries_f1"] - TOLERANCE, "\n".join(evaluation.errors)


def test_every_topic_in_eval_set(evaluation: Evaluation) -> None:
    missing = [slug for slug, score in evaluation.topics.items() if score.support == 0]

    assert missing == []
