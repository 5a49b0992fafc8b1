"""Backfill DAG: fetch chosen sources again and run processing and publishing for a period.

Triggered by hand only, with the params `start` and `end` (ISO dates, the period to redo) and
`sources` (catalog ids; empty means every enabled source). It fetches the sources again with
`force` (cache validators ignored), then processes and publishes with the end of the period as
the current time. Raw items are stored under their natural key (source and guid or URL) and the
publishing ledger records every delivery, so a backfill over stored notices adds no duplicates.

TODO: the runner cannot select stored raw items by period, so the period only sets the stages'
current time. Notices that the feeds no longer list cannot be fetched again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from _common import DEFAULT_ARGS, START_DATE, open_runner, run_time, summarise
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException


def period_end(params: dict[str, Any], now: datetime) -> datetime:
    """Check the period params and return its end (midnight after `end`, at most `now`), in UTC."""
    try:
        start = date.fromisoformat(str(params["start"]))
        end = date.fromisoformat(str(params["end"]))
    except ValueError as error:
        raise AirflowFailException(
            f"backfill period is invalid: {error}; give start and end as YYYY-MM-DD"
        ) from error
    if end < start:
        raise AirflowFailException(f"backfill period ends ({end}) before it starts ({start})")

    end_of_period = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    return min(end_of_period, now)


@dag(
    dag_id="noticeboard_backfill",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "start": Param(type="string", format="date", description="First day, YYYY-MM-DD"),
        "end": Param(type="string", format="date", description="Last day, YYYY-MM-DD"),
        "sources": Param([], type="array", description="Catalog source ids; empty for all"),
    },
    tags=["noticeboard", "backfill"],
)
def noticeboard_backfill() -> None:
    """Fetch the chosen sources again, then process and publish as of the end of the period."""

    @task
    def check_period() -> str:
        """Validate the params and return the period end as an ISO timestamp."""
        context = get_current_context()
        return period_end(context["params"], run_time(context)).isoformat()

    @task
    def refetch(end: str) -> Any:
        """Fetch the chosen sources, ignoring ETag and Last-Modified."""
        source_ids = list(get_current_context()["params"].get("sources") or []) or None
        with open_runner("backfill ingest") as runner:
            reports = runner.ingest(source_ids, now=datetime.fromisoformat(end), force=True)
        return {report.source_id: report.status for report in reports}

    @task
    def process(end: str) -> Any:
        """Normalise, enrich and translate what the fetch stored."""
        with open_runner("backfill process") as runner:
            result = runner.process(now=datetime.fromisoformat(end))
        return summarise(result)

    @task
    def publish(end: str) -> Any:
        """Publish what is ready; the ledger skips deliveries already made."""
        with open_runner("backfill publish") as runner:
            result = runner.publish(now=datetime.fromisoformat(end))
        return summarise(result)

    end = check_period()
    refetch(end) >> process(end) >> publish(end)


noticeboard_backfill()
