"""Publishing DAG: runs whenever the processing DAG marks notices ready.

Scheduled on the `notices.ready` asset. One task writes the JSON Feed and Atom files, posts to the
configured social channels and sends the immediate newsletter mails through `Runner.publish`,
the same call `noticeboard run` makes. The publishing ledger records every delivery, so a rerun
sends nothing twice.
"""

from __future__ import annotations

from typing import Any

from _common import DEFAULT_ARGS, NOTICES_READY, START_DATE, open_runner, run_time, summarise
from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="noticeboard_publish",
    schedule=[NOTICES_READY],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["noticeboard", "publish"],
)
def noticeboard_publish() -> None:
    """Write the feeds, post to social channels and send immediate newsletter mails."""

    @task
    def publish() -> Any:
        """Publish every ready notice that a channel has not received yet."""
        context = get_current_context()
        with open_runner("publish") as runner:
            result = runner.publish(now=run_time(context))
        return summarise(result)

    publish()


noticeboard_publish()
