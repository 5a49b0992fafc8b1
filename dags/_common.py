"""Parts shared by every Noticeboard DAG: assets, retry defaults, the failure alert and the runner.

Tasks import `noticeboard.pipeline` only when they run, so parsing a DAG file stays cheap.
`open_runner` sorts the errors of every stage. A transient `NoticeboardError` (timeout, HTTP 429 or
5xx, database unavailable) is raised again, so Airflow retries it with exponential backoff. A
terminal one becomes `AirflowFailException`, which fails the task at once without retries.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pendulum
from _catalog import catalog_path
from _config import noticeboard_environment
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from noticeboard.pipeline import Runner

logger = logging.getLogger(__name__)

NOTICES_RAW = Asset(name="notices.raw", uri="noticeboard://notices/raw", group="noticeboard")
NOTICES_READY = Asset(name="notices.ready", uri="noticeboard://notices/ready", group="noticeboard")

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
# Only for demos and tests: serve every fetch from a recorded manifest instead of the network.
REPLAY_VARIABLE = "NOTICEBOARD_REPLAY"


class TransientStageError(RuntimeError):
    """A stage failed in a way that a later try may not; Airflow retries it."""


def alert_operators_on_failure(context: Any) -> None:
    """Send an operator alert (webhook or e-mail) for a task that failed for good.

    Airflow calls this after the last try. It never raises, because an alert that fails must
    not hide the task's own error; a failed alert is logged instead.
    """
    task_instance = context.get("ti") or context.get("task_instance")
    dag_id = getattr(task_instance, "dag_id", "?")
    task_id = getattr(task_instance, "task_id", "?")
    run_id = getattr(task_instance, "run_id", "?")
    error = context.get("exception")
    subject = f"Airflow task failed: {dag_id}.{task_id}"
    message = f"DAG {dag_id}, task {task_id}, run {run_id} failed: {error}"

    try:
        from connectors.health import alert_operators
        from noticeboard.settings import Settings

        with noticeboard_environment():
            settings = Settings.from_env()
        channels = alert_operators(
            settings,
            subject=subject,
            text=message,
            details={"dag_id": dag_id, "task_id": task_id, "run_id": run_id},
        )
    except Exception:  # noqa: BLE001 (a broken alert must not mask the task failure)
        logger.exception("alert_failed dag=%s task=%s run=%s", dag_id, task_id, run_id)
        return
    logger.info(
        "alert_sent dag=%s task=%s run=%s channels=%s",
        dag_id,
        task_id,
        run_id,
        ",".join(channels) or "log",
    )


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "noticeboard",
    "retries": 4,
    "retry_delay": timedelta(minutes=1),
    # Delays of about 1, 2, 4 and 8 minutes, never longer than 30 minutes.
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
    "on_failure_callback": alert_operators_on_failure,
}


def run_time(context: Any) -> datetime:
    """Return the instant a run stands for, so that reruns of the same run do the same work.

    That is the run's `run_after`, which every Airflow 3 run has. Manual and asset-triggered
    runs may have no logical date, so the logical date is only a fallback.
    """
    dag_run = context.get("dag_run")
    for candidate in (getattr(dag_run, "run_after", None), context.get("logical_date")):
        if candidate is not None:
            return candidate.astimezone(UTC)
    return datetime.now(UTC)


def fail_or_retry(error: BaseException, stage: str) -> None:
    """Raise `error` again for a retry when it is transient, else fail the task without retries."""
    if getattr(error, "transient", False):
        logger.warning("stage_failed_transient stage=%s error=%s", stage, error)
        raise error
    logger.error("stage_failed_terminal stage=%s error=%s", stage, error)
    raise AirflowFailException(f"{stage} failed and will not be retried: {error}") from error


@contextmanager
def open_runner(stage: str) -> Iterator[Runner]:
    """Open the pipeline runner with settings from Airflow; close it when the block ends."""
    from noticeboard.errors import NoticeboardError
    from noticeboard.pipeline import Runner

    with noticeboard_environment():
        replay = os.environ.get(REPLAY_VARIABLE) or None
        try:
            runner = Runner.from_env(catalog_path=catalog_path(), replay=replay)
        except NoticeboardError as error:
            fail_or_retry(error, stage)
            raise  # fail_or_retry always raises; this line keeps type checkers content.

        logger.info(
            "stage_start stage=%s store=%s replay=%s", stage, runner.store.url, bool(replay)
        )
        try:
            yield runner
        except NoticeboardError as error:
            fail_or_retry(error, stage)
        finally:
            runner.close()
        logger.info("stage_done stage=%s", stage)


def summarise(result: Any) -> Any:
    """Turn a stage result into a small JSON value for XCom (counts and strings only)."""
    if result is None or isinstance(result, (bool, int, float, str)):
        return result
    if isinstance(result, dict):
        return {str(key): summarise(value) for key, value in result.items()}
    if isinstance(result, (list, tuple, set)):
        return [summarise(item) for item in result]
    if hasattr(result, "__dataclass_fields__"):
        return {name: summarise(getattr(result, name)) for name in result.__dataclass_fields__}
    return str(result)
