"""Digest DAGs: the daily and weekly newsletter digests, in the subscribers' time zone.

The time zone is `NOTICEBOARD_NEWSLETTER_TIMEZONE` (default Europe/Helsinki), read when the file
is parsed, so the digests go out at 07:00 local time across daylight saving changes. The daily
digest runs every day, the weekly one on Mondays. `send_digests` records every mail it sends, so a
rerun of the same run sends nothing twice.
"""

from __future__ import annotations

import os
from typing import Any

from _common import DEFAULT_ARGS, START_DATE, open_runner, run_time, summarise
from airflow.sdk import DAG, CronTriggerTimetable, get_current_context, task

DIGEST_TIMEZONE = os.environ.get("NOTICEBOARD_NEWSLETTER_TIMEZONE", "").strip() or "Europe/Helsinki"
DIGEST_SCHEDULES = {
    "daily": "0 7 * * *",
    "weekly": "0 7 * * 1",
}


def send_digests(frequency: str) -> Any:
    """Send the digests of one frequency that are due at this run's time."""
    context = get_current_context()
    with open_runner(f"digest {frequency}") as runner:
        result = runner.send_digests(frequency, now=run_time(context))
    return summarise(result)


def build_digest_dag(frequency: str, cron: str) -> DAG:
    """Build the DAG that sends the digests of one frequency."""
    with DAG(
        dag_id=f"noticeboard_digest_{frequency}",
        description=f"Send the {frequency} newsletter digests",
        doc_md=(
            f"Sends the {frequency} newsletter digest to its subscribers at `{cron}` "
            f"({DIGEST_TIMEZONE}). Subscribers who already received this digest are skipped."
        ),
        schedule=CronTriggerTimetable(cron, timezone=DIGEST_TIMEZONE),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["noticeboard", "newsletter"],
    ) as digest_dag:
        task(task_id="send_digests")(send_digests)(frequency)
    return digest_dag


for _frequency, _cron in DIGEST_SCHEDULES.items():
    globals()[f"noticeboard_digest_{_frequency}"] = build_digest_dag(_frequency, _cron)
