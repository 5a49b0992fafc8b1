"""`dag.test()` runs ingest, processing and publishing over the example replay set.

The runs use the SQLite metadata database of the temporary AIRFLOW_HOME (see conftest.py), a fresh
SQLite store and the recorded responses of examples/replay/, so nothing leaves the machine.
`dag.test()` records asset events but starts no consumer, because that needs a scheduler. So the
test runs the three stages in order itself, and test_scheduler.py covers the triggering.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from tests.dags.conftest import load_dagbag, replay_settings

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.usefixtures("require_airflow")]

REPLAY_SOURCES = (
    "example-fi-tax",
    "example-se-migration",
    "example-ee-city",
    "example-lv-social",
    "example-ee-police-ru",
)


def without_retries(dag: object) -> object:
    """Fail a test run at once instead of waiting out the production retry delays."""
    for task in dag.tasks:
        task.retries = 0
    return dag


def run_pipeline(bag: object) -> dict[str, str]:
    """Run every replay ingest DAG, then processing, then publishing; return the run states."""
    states = {}
    for source_id in REPLAY_SOURCES:
        dag_id = f"noticeboard_ingest_{source_id}"
        states[dag_id] = str(without_retries(bag.dags[dag_id]).test().state)
    for dag_id in ("noticeboard_process", "noticeboard_publish"):
        states[dag_id] = str(without_retries(bag.dags[dag_id]).test().state)
    return states


def count_asset_events(name: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    query = (
        select(func.count())
        .select_from(AssetEvent)
        .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        .where(AssetModel.name == name)
    )
    with create_session() as session:
        return session.scalar(query)


def count_rows(settings: dict[str, str], table: str) -> int:
    engine = create_engine(settings["NOTICEBOARD_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(text(f"select count(*) from {table}")).scalar_one()
    finally:
        engine.dispose()


def feed_items(output_dir: Path) -> list[str]:
    document = json.loads((output_dir / "feed.json").read_text(encoding="utf-8"))
    return [item["id"] for item in document["items"]]


@pytest.fixture(scope="module")
def first_run(
    airflow_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    """Parse the DAGs over the replay catalog and run the pipeline once, for every test here."""
    folder = tmp_path_factory.mktemp("dag-runs")
    settings = replay_settings(folder)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        bag = load_dagbag()
        raw_before = count_asset_events("notices.raw")
        ready_before = count_asset_events("notices.ready")
        states = run_pipeline(bag)

    yield {
        "bag": bag,
        "settings": settings,
        "states": states,
        "raw_events": count_asset_events("notices.raw") - raw_before,
        "ready_events": count_asset_events("notices.ready") - ready_before,
        "output_dir": folder / "public",
    }


def test_dags_parse(first_run: dict[str, object]) -> None:
    assert first_run["bag"].import_errors == {}


def test_runs_succeed(first_run: dict[str, object]) -> None:
    for dag_id, state in first_run["states"].items():
        assert state == "success", dag_id


def test_notices_stored(first_run: dict[str, object]) -> None:
    assert count_rows(first_run["settings"], "notice") > 0


def test_raw_events_recorded(first_run: dict[str, object]) -> None:
    assert first_run["raw_events"] == len(REPLAY_SOURCES)


def test_ready_event_recorded(first_run: dict[str, object]) -> None:
    assert first_run["ready_events"] == 1


def test_feed_written(first_run: dict[str, object]) -> None:
    assert len(feed_items(first_run["output_dir"])) > 0


def test_second_run_no_duplicates(
    first_run: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = first_run["settings"]
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    notices = count_rows(settings, "notice")
    raw_items = count_rows(settings, "raw_item")
    items = feed_items(first_run["output_dir"])
    raw_events = count_asset_events("notices.raw")

    states = run_pipeline(first_run["bag"])

    assert set(states.values()) == {"success"}
    assert count_rows(settings, "notice") == notices
    assert count_rows(settings, "raw_item") == raw_items
    assert feed_items(first_run["output_dir"]) == items
    # Nothing new was fetched, so no ingest DAG announced raw notices.
    assert count_asset_events("notices.raw") == raw_events
