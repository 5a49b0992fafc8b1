"""The main job over the recorded corpus of real authority feeds.

Runs exactly `noticeboard --catalog examples/corpus-catalog.yaml run --replay
../shared/corpus/manifest.json`, then compares the export with the labels that ship with the
corpus. Skips with the reason when the corpus is absent (a fresh clone); CI has it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.noticeboard.test_cli import ROOT, export, noticeboard

CORPUS_CATALOG = ROOT / "examples" / "corpus-catalog.yaml"

# Notices per capture: every complete item of each recorded document.
EXPECTED_PER_SOURCE = {
    "fi-helsinki-news-2012": 3,
    "fi-migri-bulletins-2013": 1,
    "fi-valtioneuvosto-press": 1,
    "fi-dvv-sv": 1,
    "fi-dvv-fi": 1,
    "fi-helsinki-sttinfo": 3,
    "fi-kela-sttinfo": 1,
    "ee-kriis-ppa": 1,
    "lv-pmlp-media": 1,
    "ee-politsei-passport-ru": 1,
    "se-stockholm-pressroom": 5,
}


def _labels(corpus_dir: Path) -> list[dict[str, object]]:
    lines = (corpus_dir / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _run_corpus(workdir: Path, corpus_dir: Path, database_url: str | None = None) -> list[dict[str, object]]:
    result = noticeboard(
        ["--catalog", str(CORPUS_CATALOG), "run", "--replay", str(corpus_dir / "manifest.json")],
        workdir,
        database_url,
    )
    assert result.returncode == 0, result.stderr
    return export(workdir, database_url, CORPUS_CATALOG)


def _check_export(records: list[dict[str, object]], corpus_dir: Path) -> None:
    assert Counter(record["source"] for record in records) == EXPECTED_PER_SOURCE

    by_title = {record["title"]: record for record in records}
    labelled = [label for label in _labels(corpus_dir) if label.get("published") and "T" in str(label["published"])]
    assert len(labelled) >= 5
    for label in labelled[:5]:
        record = by_title[label["title"]]
        assert record["language"] == label["language"]
        assert record["published"] is not None


@pytest.mark.corpus
def test_corpus_run_sqlite(tmp_path: Path, corpus_dir: Path) -> None:
    records = _run_corpus(tmp_path, corpus_dir)

    _check_export(records, corpus_dir)
    feed = json.loads((tmp_path / "public" / "feed.json").read_text(encoding="utf-8"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert len(feed["items"]) == sum(EXPECTED_PER_SOURCE.values())


@pytest.mark.corpus
def test_corpus_scores(tmp_path: Path, corpus_dir: Path) -> None:
    records = _run_corpus(tmp_path, corpus_dir)
    exported = tmp_path / "export.jsonl"
    exported.write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in records), encoding="utf-8")

    scorer = corpus_dir.parent / "tools" / "score_corpus.py"
    result = subprocess.run(
        [sys.executable, str(scorer), str(corpus_dir / "expected.jsonl"), str(exported), "--json"],
        capture_output=True, text=True, check=True,
    )
    summary = json.loads(result.stdout)["summary"]

    assert summary["found"] == "19/19"
    assert summary["date_exact"] == 1.0
    assert summary["language"] == 1.0
    assert summary["country"] == 1.0


@pytest.mark.corpus
@pytest.mark.postgres
def test_corpus_run_postgres_matches_sqlite(tmp_path: Path, corpus_dir: Path, postgres_url: str) -> None:
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "postgres").mkdir()
    on_sqlite = _run_corpus(tmp_path / "sqlite", corpus_dir)
    on_postgres = _run_corpus(tmp_path / "postgres", corpus_dir, postgres_url)

    def key(record: dict[str, object]) -> tuple[object, ...]:
        return (record["id"], record["title"], record["published"], record["language"], tuple(record["regions"]))

    assert sorted(map(key, on_postgres)) == sorted(map(key, on_sqlite))
