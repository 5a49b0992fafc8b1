"""Processing DAG: runs whenever an ingest DAG records new raw notices.

Scheduled on the `notices.raw` asset. `process` normalises the raw items, detects languages and
tags the notices. `translate` then runs the due translations and records an event on
`notices.ready`, which starts the publishing DAG. Both steps work on whatever the store holds as
pending, so a rerun finds nothing left to do and changes nothing.
"""

from __future__ import annotations

from typing import Any

from _common import (
    DEFAULT_ARGS,
    NOTICES_RAW,
    NOTICES_READY,
    START_DATE,
    open_runner,
    run_time,
    summarise,
)
from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="noticeboard_process",
    schedule=[NOTICES_RAW],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["noticeboard", "process"],
)
def noticeboard_process() -> None:
    """Normalise, detect language, tag and translate new raw notices; then mark them ready."""

    @task
    def process() -> Any:
        """Normalise pending raw items, detect their language, tag them and queue translations."""
        context = get_current_context()
        with open_runner("process") as runner:
            result = runner.process(now=run_time(context), translate=False)
        return summarise(result)

    @task(outlets=[NOTICES_READY])
    def translate() -> Any:
        """Run the due translations; failures stay pending for the maintenance DAG."""
        context = get_current_context()
        with open_runner("translate") as runner:
            result = runner.translate_pending(now=run_time(context))
        return summarise(result)

    process() >> translate()


noticeboard_process()
