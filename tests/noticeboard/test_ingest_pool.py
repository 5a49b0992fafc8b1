"""Ingest in worker processes stores what one process stores."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from noticeboard import ingest_pool
from noticeboard.catalog import load_catalog
from noticeboard.errors import WorkerError
from noticeboard.pipeline import Runner
from noticeboard.settings import Settings
from noticeboard.store.tables import Notice, RawItem

ROOT = Path(__file__).resolve().parents[2]
REPLAY_CATALOG = ROOT / "examples" / "replay-catalog.yaml"
REPLAY_MANIFEST = ROOT / "examples" / "replay" / "manifest.json"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _run(
    folder: Path, workers: int
) -> tuple[list[tuple[str, str, int]], list[tuple[str, str]], int]:
    settings = Settings(
        database_url=f"sqlite:///{folder / f'workers-{workers}.db'}",
        output_dir=folder / f"public-{workers}",
        workers=workers,
    )
    runner = Runner.from_env(REPLAY_CATALOG, replay=REPLAY_MANIFEST, settings=settings)
    try:
        reports = runner.ingest(now=NOW)
        runner.process(now=NOW, translate=False)
        with runner.store.session() as session:
            notices = sorted(
                (row.id, row.content_hash)
                for row in session.execute(select(Notice.id, Notice.content_hash))
            )
            raw_items = len(session.scalars(select(RawItem.id)).all())
    finally:
        runner.close()
    outcomes = [(report.source_id, report.status, report.new_items) for report in reports]
    return outcomes, notices, raw_items


def test_two_workers_match_one(tmp_path: Path) -> None:
    one_outcomes, one_notices, one_raw = _run(tmp_path, 1)
    two_outcomes, two_notices, two_raw = _run(tmp_path, 2)

    assert two_outcomes == one_outcomes
    assert two_notices == one_notices
    assert two_raw == one_raw
    assert len(one_notices) > 0


def test_workers_keep_catalog_order(tmp_path: Path) -> None:
    outcomes, _, _ = _run(tmp_path, 3)

    catalog_order = list(load_catalog(REPLAY_CATALOG).sources)
    assert [source_id for source_id, _, _ in outcomes] == catalog_order


def _full_run(folder: Path, workers: int) -> tuple[dict[str, tuple[str, int, int]], list[str]]:
    settings = Settings(
        database_url=f"sqlite:///{folder / f'run-{workers}.db'}",
        output_dir=folder / f"run-public-{workers}",
        workers=workers,
    )
    runner = Runner.from_env(REPLAY_CATALOG, replay=REPLAY_MANIFEST, settings=settings)
    try:
        report = runner.run(now=NOW)
        with runner.store.session() as session:
            stages = sorted(session.scalars(select(Notice.stage)))
    finally:
        runner.close()
    rows = {row.source_id: (row.status, row.fetched, row.new) for row in report.sources.values()}
    return rows, stages


def test_run_with_workers_counts_early_processing(tmp_path: Path) -> None:
    one_rows, one_stages = _full_run(tmp_path, 1)
    two_rows, two_stages = _full_run(tmp_path, 2)

    assert two_rows == one_rows
    assert sum(new for _, _, new in two_rows.values()) == len(two_stages)
    assert set(two_stages) == {"ready"}
    assert two_stages == one_stages


def _die(source_id: str, now: datetime, force: bool) -> None:
    os._exit(9)  # a worker killed from outside ends the same way


def test_dead_worker_raises_worker_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_pool, "_ingest", _die)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'dead.db'}", workers=2)
    runner = Runner.from_env(REPLAY_CATALOG, replay=REPLAY_MANIFEST, settings=settings)
    try:
        with pytest.raises(WorkerError, match="ended abruptly"):
            runner.ingest(now=NOW)
    finally:
        runner.close()
