"""Each DAG has the expected graph and settings, and the asset wiring connects the stages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.dags.conftest import load_dagbag

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("require_airflow")]

INGEST_GRAPH = {"fetch": {"announce_raw"}, "announce_raw": set()}
EXPECTED_GRAPHS = {
    "noticeboard_process": {"process": {"translate"}, "translate": set()},
    "noticeboard_publish": {"publish": set()},
    "noticeboard_maintenance": {"maintain": set()},
    "noticeboard_digest_daily": {"send_digests": set()},
    "noticeboard_digest_weekly": {"send_digests": set()},
    "noticeboard_backfill": {
        "check_period": {"refetch", "process", "publish"},
        "refetch": {"process"},
        "process": {"publish"},
        "publish": set(),
    },
}


@pytest.fixture(scope="module")
def dagbag() -> Iterator[object]:
    """The DAG folder parsed with the packaged catalog."""
    saved = os.environ.pop("NOTICEBOARD_CATALOG_PATH", None)
    try:
        yield load_dagbag()
    finally:
        if saved is not None:
            os.environ["NOTICEBOARD_CATALOG_PATH"] = saved


@pytest.fixture(scope="module")
def catalog() -> object:
    """The packaged catalog, as the ingest DAGs read it."""
    from _catalog import catalog_path

    from noticeboard.catalog import load_catalog

    saved = os.environ.pop("NOTICEBOARD_CATALOG_PATH", None)
    try:
        return load_catalog(catalog_path())
    finally:
        if saved is not None:
            os.environ["NOTICEBOARD_CATALOG_PATH"] = saved


def graph(dag: object) -> dict[str, set[str]]:
    return {task.task_id: set(task.downstream_task_ids) for task in dag.tasks}


def ingest_dags(dagbag: object) -> dict[str, object]:
    return {
        dag_id: dag
        for dag_id, dag in dagbag.dags.items()
        if dag_id.startswith("noticeboard_ingest_")
    }


def scheduled_assets(dag: object) -> set[str]:
    condition = getattr(dag.timetable, "asset_condition", None)
    if condition is None:
        return set()
    return {asset.name for asset in condition.objects}


def produced_assets(dag: object) -> set[str]:
    return {outlet.name for task in dag.tasks for outlet in task.outlets}


def test_ingest_dag_per_enabled_source(dagbag: object, catalog: object) -> None:
    expected = {
        f"noticeboard_ingest_{sid}" for sid, source in catalog.sources.items() if source.enabled
    }
    assert set(ingest_dags(dagbag)) == expected


def test_ingest_graph(dagbag: object) -> None:
    for dag_id, dag in ingest_dags(dagbag).items():
        assert graph(dag) == INGEST_GRAPH, dag_id


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_GRAPHS))
def test_stage_graph(dagbag: object, dag_id: str) -> None:
    assert graph(dagbag.dags[dag_id]) == EXPECTED_GRAPHS[dag_id]


def test_ingest_schedule_follows_catalog(dagbag: object, catalog: object) -> None:
    for dag_id, dag in ingest_dags(dagbag).items():
        source = catalog.sources[dag_id.removeprefix("noticeboard_ingest_")]
        assert dag.timetable.expression == source.schedule, dag_id
        assert str(dag.timetable.timezone) == source.timezone, dag_id


def test_ingest_fetch_uses_host_pool(dagbag: object, catalog: object) -> None:
    from _catalog import host_pools, pool_name

    pools = host_pools(catalog)
    for dag_id, dag in ingest_dags(dagbag).items():
        source = catalog.sources[dag_id.removeprefix("noticeboard_ingest_")]
        fetch = dag.get_task("fetch")
        assert fetch.pool == pool_name(source.hosts[0]), dag_id
        assert fetch.pool in pools, dag_id


def test_host_pools_one_slot(catalog: object) -> None:
    from _catalog import host_pools

    pools = host_pools(catalog)
    assert {entry["slots"] for entry in pools.values()} == {1}


def test_every_dag_settings(dagbag: object) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.catchup is False, dag_id
        assert dag.start_date.tzinfo is not None, dag_id
        assert "noticeboard" in dag.tags, dag_id
        assert dag.timetable is not None, dag_id


def test_every_task_retries_with_backoff(dagbag: object) -> None:
    from _common import alert_operators_on_failure

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            label = f"{dag_id}.{task.task_id}"
            assert task.retries >= 1, label
            assert task.retry_exponential_backoff > 1, label
            assert task.max_retry_delay <= timedelta(minutes=30), label
            assert alert_operators_on_failure in task.on_failure_callback, label


def test_digest_timezone_default(dagbag: object) -> None:
    for frequency in ("daily", "weekly"):
        timetable = dagbag.dags[f"noticeboard_digest_{frequency}"].timetable
        assert str(timetable.timezone) == "Europe/Helsinki", frequency


def test_raw_asset_wiring(dagbag: object) -> None:
    producers = {
        dag_id for dag_id, dag in dagbag.dags.items() if "notices.raw" in produced_assets(dag)
    }
    consumers = {
        dag_id for dag_id, dag in dagbag.dags.items() if "notices.raw" in scheduled_assets(dag)
    }
    assert producers == set(ingest_dags(dagbag))
    assert consumers == {"noticeboard_process"}


def test_ready_asset_wiring(dagbag: object) -> None:
    producers = {
        dag_id for dag_id, dag in dagbag.dags.items() if "notices.ready" in produced_assets(dag)
    }
    consumers = {
        dag_id for dag_id, dag in dagbag.dags.items() if "notices.ready" in scheduled_assets(dag)
    }
    assert producers == {"noticeboard_process"}
    assert consumers == {"noticeboard_publish"}


def test_every_consumed_asset_produced(dagbag: object) -> None:
    produced = set().union(*(produced_assets(dag) for dag in dagbag.dags.values()))
    consumed = set().union(*(scheduled_assets(dag) for dag in dagbag.dags.values()))
    assert consumed <= produced
    assert produced <= consumed
