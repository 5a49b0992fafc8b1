"""Maintenance DAG: the hourly catch-up of everything that waited for a retry.

`Runner.maintenance` translates the translations still pending, processes withdrawals (notices
that a complete listing no longer shows) and publishes again, which retries the deliveries that
failed. It runs at 25 minutes past every hour so that it does not start together with the
hourly ingest DAGs.
"""

from __future__ import annotations

from typing import Any

from _common import DEFAULT_ARGS, START_DATE, open_runner, run_time, summarise
from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="noticeboard_maintenance",
    schedule="25 * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["noticeboard", "maintenance"],
)
def noticeboard_maintenance() -> None:
    """Retry pending translations and failed deliveries, and withdraw notices that disappeared."""

    @task
    def maintain() -> Any:
        """Run one maintenance pass at this run's time."""
        context = get_current_context()
        with open_runner("maintenance") as runner:
            result = runner.maintenance(now=run_time(context))
        return summarise(result)

    maintain()


noticeboard_maintenance()
