"""Ingest DAGs: one per enabled catalog source, each on the source's own schedule.

The DAGs are generated from the local catalog file (see `_catalog.py`), so parsing reads one YAML
file and nothing else. Each DAG has two tasks:

- `fetch` runs `Runner.ingest` for its source in the pool of the source's host, so that sources
  on one host never fetch at the same time;
- `announce_raw` records an event on the `notices.raw` asset when the fetch stored new raw items,
  which starts the processing DAG. When nothing is new it is skipped and records no event.
"""

from __future__ import annotations

import logging
from typing import Any

from _catalog import load_dag_catalog, source_pool
from _common import (
    DEFAULT_ARGS,
    NOTICES_RAW,
    START_DATE,
    TransientStageError,
    open_runner,
    run_time,
)
from airflow.sdk import DAG, CronTriggerTimetable, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

logger = logging.getLogger(__name__)

DAG_ID_PREFIX = "noticeboard_ingest_"
# Statuses of a SourceReport that mean the fetch worked, possibly with nothing new.
SETTLED_STATUSES = ("ok", "not-modified", "empty", "skipped")


def fetch_source(source_id: str) -> dict[str, Any]:
    """Fetch one source and return its report's counts; raise for a failed fetch."""
    context = get_current_context()
    force = bool(context["params"].get("force", False))

    with open_runner(f"ingest {source_id}") as runner:
        report = runner.ingest([source_id], now=run_time(context), force=force)[0]

    summary = {
        "source_id": source_id,
        "status": report.status,
        "fetched_items": report.fetched_items,
        "new_items": report.new_items,
    }
    if report.status in SETTLED_STATUSES:
        logger.info(
            "fetch_done source=%s status=%s new=%s", source_id, report.status, report.new_items
        )
        return summary

    if report.status == "failed" and report.transient:
        raise TransientStageError(f"source {source_id}: fetch failed, will retry: {report.error}")
    raise AirflowFailException(
        f"source {source_id}: fetch ended with status {report.status}: {report.error}; "
        "fix the catalog entry or the source before the next run"
    )


def announce_new_items(summary: dict[str, Any]) -> dict[str, Any]:
    """Record a `notices.raw` event when the fetch stored something new, else skip."""
    if not summary.get("new_items"):
        raise AirflowSkipException(
            f"source {summary.get('source_id')}: no new items, no asset event"
        )

    outlet_events = get_current_context()["outlet_events"]
    outlet_events[NOTICES_RAW].extra = {
        "source_id": summary["source_id"],
        "new_items": summary["new_items"],
    }
    return summary


def build_ingest_dag(source: Any) -> DAG:
    """Build the ingest DAG of one catalog source."""
    with DAG(
        dag_id=DAG_ID_PREFIX + source.id,
        description=f"Fetch {source.authority} ({source.id}) on its catalog schedule",
        doc_md=(
            f"Fetches catalog source `{source.id}` ({source.authority}, {source.country}) "
            f"from {', '.join(source.urls)} on `{source.schedule}` ({source.timezone}), "
            f"in pool `{source_pool(source)}`. New raw items record an event on "
            "`notices.raw`, which starts `noticeboard_process`. Trigger with "
            "`force: true` to ignore the cache validators (ETag, Last-Modified)."
        ),
        schedule=CronTriggerTimetable(source.schedule, timezone=source.timezone),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        params={"force": Param(False, type="boolean", description="Fetch even if unchanged")},
        tags=["noticeboard", "ingest", source.country.lower()],
    ) as dag:
        fetch = task(task_id="fetch", pool=source_pool(source))(fetch_source)
        announce = task(task_id="announce_raw", outlets=[NOTICES_RAW])(announce_new_items)
        announce(fetch(source.id))
    return dag


for _source in load_dag_catalog().sources.values():
    if _source.enabled:
        globals()[DAG_ID_PREFIX + _source.id] = build_ingest_dag(_source)
