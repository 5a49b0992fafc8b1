"""Fetching and parsing several sources at once, in worker processes.

Parsing a feed is CPU work, so one process keeps one core busy however many sources wait. With
`Settings.workers` above 1, `Runner.ingest` hands each source to one of that many worker
processes, which run the same `ingest_source` as a single process does. The stages were made
for several processes at once: the per-host interval lives in the store (`host_budget`), each
source's state and raw items are written in one short transaction, and unique constraints decide
any race.

Workers are forked where the system allows it, so they start without importing the program
again. A forked worker opens its own store and HTTP session and never touches the connections it
inherited from the parent.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noticeboard.catalog import Catalog, Source
from noticeboard.errors import WorkerError
from noticeboard.settings import Settings

if TYPE_CHECKING:
    from noticeboard.pipeline import Runner

logger = logging.getLogger(__name__)

# Maximum seconds to wait for a source to finish when `meanwhile` found nothing to do.
POLL_SECONDS = 0.2
# The runner of a worker process, built once by `_start_worker`.
_WORKER_RUNNER: Runner | None = None


def ingest_in_processes(
    runner: Runner,
    sources: Sequence[Source],
    workers: int,
    *,
    now: datetime,
    force: bool,
    progress: Callable[[str, str], None] | None = None,
    on_start: Callable[[], None] | None = None,
    meanwhile: Callable[[], bool] | None = None,
) -> list[Any]:
    """Ingest `sources` in `workers` processes; return their reports in the order of `sources`.

    `on_start` runs in this process once every worker has started, for work that a forked
    worker must not inherit (such as a thread). `meanwhile` runs repeatedly while workers are
    busy and returns whether it found work. When it found none, this process waits up to
    `POLL_SECONDS` for a source to finish before calling it again.
    """
    logger.info("ingest_pool_start sources=%d workers=%d", len(sources), workers)
    initargs = (runner.settings, runner.catalog, runner.replay)
    reports: dict[str, Any] = {}
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_start_context(),
        initializer=_start_worker,
        initargs=initargs,
    ) as pool:
        # A pool that forks starts all its workers with the first task, so none is forked after
        # this; spawned workers inherit no thread anyway.
        futures = {pool.submit(_ingest, source.id, now, force): source.id for source in sources}
        if on_start:
            on_start()

        pending: set[Future[Any]] = set(futures)
        found_work = False
        while pending:
            done, pending = wait(
                pending, timeout=0 if found_work else POLL_SECONDS, return_when=FIRST_COMPLETED
            )
            for future in done:
                # A store error in a worker is raised here. Leaving the pool then waits for the
                # sources already started, and the run stops with that error.
                reports[futures[future]] = _result(future, futures[future])
                if progress:
                    progress("fetch", futures[future])
            found_work = bool(pending) and meanwhile is not None and meanwhile()
    logger.info("ingest_pool_done sources=%d", len(reports))
    return [reports[source.id] for source in sources]


def _result(future: Future[Any], source_id: str) -> Any:
    try:
        return future.result()
    except BrokenProcessPool as error:
        logger.error("ingest_worker_died source=%s error=%s", source_id, error)
        raise WorkerError(
            f"an ingest worker ended abruptly while fetching {source_id} (killed, or out of "
            "memory); what was stored is kept, so run again, or set NOTICEBOARD_WORKERS=1"
        ) from error


def _start_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _start_worker(settings: Settings, catalog: Catalog, replay: Path | None) -> None:
    """Open the worker's own store and HTTP session."""
    from noticeboard.pipeline import Runner
    from noticeboard.store import default_database_url, open_store

    global _WORKER_RUNNER
    store = open_store(settings.database_url or default_database_url())
    _WORKER_RUNNER = Runner(settings=settings, store=store, catalog=catalog, replay=replay)


def _ingest(source_id: str, now: datetime, force: bool) -> Any:
    from connectors import ingest_source

    runner = _WORKER_RUNNER
    if runner is None:
        raise RuntimeError("the ingest worker was not started; use ingest_in_processes")
    source = runner.catalog.sources[source_id]
    logger.info("ingest_start source=%s", source.id)
    report = ingest_source(
        runner.store, source, runner.fetcher(), runner.settings, now=now, force=force
    )
    logger.info(
        "ingest_done source=%s status=%s new=%s", source.id, report.status, report.new_items
    )
    return report
