"""The pipeline runner: one pass is ingest, process, publish.

Each stage reads what is due from the store, so stages can run in separate processes (the CLI runs
them one after the other; Airflow runs them as separate DAGs). The CLI and the DAGs both go
through `Runner`, so they execute the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from noticeboard.catalog import Catalog, load_catalog
from noticeboard.context import PACKAGED_CATALOG
from noticeboard.settings import Settings
from noticeboard.store import Store, default_database_url, open_store

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, str], None]

# Source outcomes that mean no notices could be read: a changed layout is as much a failure as a
# network error, although the fetch itself succeeded.
FAILED_STATUSES = frozenset({"failed", "layout-changed"})


@dataclass
class SourceSummary:
    """One row of the table that `noticeboard run` prints."""

    source_id: str
    status: str = "skipped"
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    reason: str = ""


@dataclass
class RunReport:
    """The outcome of one pass, per source and per stage."""

    sources: dict[str, SourceSummary] = field(default_factory=dict)
    stages: dict[str, Any] = field(default_factory=dict)

    @property
    def all_failed(self) -> bool:
        """True when every source that was attempted failed."""
        attempted = [row for row in self.sources.values() if row.status != "skipped"]
        return bool(attempted) and all(row.status in FAILED_STATUSES for row in attempted)


def utc_now() -> datetime:
    """Return the current time, aware and in UTC."""
    return datetime.now(UTC)


@dataclass
class Runner:
    """Settings, store and catalog of a pipeline, with one method per stage."""

    settings: Settings
    store: Store
    catalog: Catalog
    replay: Path | None = None
    _session: requests.Session | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls,
        catalog_path: str | Path | None = None,
        replay: str | Path | None = None,
        settings: Settings | None = None,
    ) -> Runner:
        """Open the store and load the catalog named by the settings and arguments."""
        settings = settings or Settings.from_env()
        catalog = load_catalog(catalog_path or PACKAGED_CATALOG)
        store = open_store(settings.database_url or default_database_url())
        return cls(
            settings=settings, store=store, catalog=catalog, replay=Path(replay) if replay else None
        )

    def http_session(self) -> requests.Session:
        """Return the requests session of every fetch; in replay it never opens a socket."""
        if self._session is None:
            if self.replay is not None:
                from noticeboard.replay import replay_session

                self._session = replay_session(self.replay)
            else:
                self._session = requests.Session()
        return self._session

    def fetcher(self) -> Any:
        """Build the HTTP fetcher with the store-backed per-host budget."""
        from connectors.budget import StoreHostBudget
        from connectors.http import HttpFetcher

        settings = self.settings
        if self.replay is not None:
            # Recorded responses need no politeness pause: nothing reaches the authority's host.
            settings = settings.replace(host_min_interval=0.0, respect_robots=False)
        return HttpFetcher(
            settings, StoreHostBudget(self.store, settings), session=self.http_session()
        )

    def ingest(
        self,
        source_ids: list[str] | None = None,
        *,
        now: datetime | None = None,
        force: bool = False,
        progress: ProgressCallback | None = None,
        meanwhile: Callable[[], bool] | None = None,
    ) -> list[Any]:
        """Fetch each selected source once and store what is new as raw items.

        With `Settings.workers` above 1, several sources are fetched and parsed at once, each in
        a worker process (`noticeboard.ingest_pool`), and this process calls `meanwhile`
        repeatedly until they finish. It returns whether it found work to do.
        """
        from connectors import ingest_source
        from transforms.language import warm_up

        now = now or utc_now()
        force = force or self.replay is not None
        sources = self.catalog.select(source_ids)
        workers = min(self.settings.workers, len(sources))

        def load_language_models() -> None:
            # Processing needs them next; loading them now overlaps the load with fetching.
            warm_up(self.settings.language_detector)

        if workers > 1:
            from noticeboard.ingest_pool import ingest_in_processes

            return ingest_in_processes(
                self,
                sources,
                workers,
                now=now,
                force=force,
                progress=progress,
                on_start=load_language_models,
                meanwhile=meanwhile,
            )

        load_language_models()
        fetcher = self.fetcher()
        reports = []
        for source in sources:
            if progress:
                progress("fetch", source.id)
            logger.info("ingest_start source=%s", source.id)
            report = ingest_source(self.store, source, fetcher, self.settings, now=now, force=force)
            logger.info(
                "ingest_done source=%s status=%s new=%s", source.id, report.status, report.new_items
            )
            reports.append(report)
        return reports

    def process(
        self, *, now: datetime | None = None, translate: bool = True, window: Any = None
    ) -> dict[str, Any]:
        """Normalise raw items, then detect language, tag, queue and run due translations.

        `window` is the duplicate window of earlier processing in the same run, if any.
        """
        from noticeboard.enrich import enrich_pending
        from transforms.normalise_stage import normalise_pending

        now = now or utc_now()
        normalised = normalise_pending(
            self.store, self.catalog, self.settings, now=now, window=window
        )
        enriched = enrich_pending(self.store, self.catalog, self.settings, now=now)
        stages: dict[str, Any] = {"normalise": normalised, "enrich": enriched}
        if translate:
            stages["translate"] = self.translate_pending(now=now)
        return stages

    def translate_pending(self, *, now: datetime | None = None, limit: int | None = None) -> Any:
        """Translate every pending translation that is due; failures stay pending."""
        from transforms.translate_stage import translate_pending

        settings, session = self.settings, None
        if self.replay is not None and not _is_loopback(settings.translator_url):
            # Replayed runs never reach a real provider: its requests go to the replay session,
            # which has no recording of them, so translations stay pending at once, unretried.
            settings, session = settings.replace(max_retries=0), self.http_session()
        return translate_pending(
            self.store, settings, now=now or utc_now(), limit=limit, session=session
        )

    def write_feeds(self, output_dir: Path | None = None) -> Any:
        """Write the JSON Feed and Atom files."""
        from publishers.feeds import write_feeds

        return write_feeds(
            self.store, self.settings, output_dir or self.settings.output_dir, catalog=self.catalog
        )

    def publish(self, *, now: datetime | None = None) -> dict[str, Any]:
        """Write feeds, post to the configured channels and send immediate newsletter mails."""
        from publishers.newsletter import send_immediate
        from publishers.social import publish_pending

        now = now or utc_now()
        results: dict[str, Any] = {"feeds": self.write_feeds()}
        results["social"] = publish_pending(
            self.store, self.settings, now=now, catalog=self.catalog
        )
        if self.settings.secret_key:
            results["newsletter"] = send_immediate(self.store, self.settings, now=now)
        else:
            # Without the signing key no unsubscribe link can be made, so no mail may go out.
            logger.warning("newsletter_skipped reason=NOTICEBOARD_SECRET_KEY is not set")
        return results

    def send_digests(self, frequency: str, *, now: datetime | None = None) -> Any:
        """Send the daily or weekly newsletter digests that are due."""
        from publishers.newsletter import send_digests

        return send_digests(self.store, self.settings, frequency, now=now or utc_now())

    def maintenance(self, *, now: datetime | None = None) -> dict[str, Any]:
        """Retry pending translations and failed deliveries, and process withdrawals."""
        now = now or utc_now()
        results: dict[str, Any] = {"translate": self.translate_pending(now=now)}
        results["process"] = self.process(now=now, translate=False)
        results["publish"] = self.publish(now=now)
        return results

    def ingest_and_process(
        self,
        source_ids: list[str] | None = None,
        *,
        now: datetime | None = None,
        force: bool = False,
        progress: ProgressCallback | None = None,
        translate: bool = True,
    ) -> tuple[list[Any], dict[str, Any]]:
        """Ingest, then process; return the ingest reports and the stage reports.

        With ingest workers, this process normalises and enriches what they store meanwhile.
        """
        now = now or utc_now()
        early = _EarlyProcessing(self, now)
        reports = self.ingest(
            source_ids, now=now, force=force, progress=progress, meanwhile=early.step
        )

        if progress:
            progress("process", "all sources")
        stages = self.process(now=now, translate=translate, window=early.window)
        early.add_to(stages)
        return reports, stages

    def run(
        self,
        source_ids: list[str] | None = None,
        *,
        now: datetime | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunReport:
        """Do one whole pass: ingest, process and publish, and summarise it per source."""
        now = now or utc_now()
        report = RunReport()

        ingested, stages = self.ingest_and_process(source_ids, now=now, progress=progress)
        for ingest in ingested:
            report.sources[ingest.source_id] = SourceSummary(
                source_id=ingest.source_id,
                status=ingest.status,
                fetched=ingest.fetched_items,
                reason=ingest.error or "",
            )
        report.stages.update(stages)
        _merge_normalise_counts(report, report.stages["normalise"])

        if progress:
            progress("publish", "all channels")
        report.stages.update(self.publish(now=now))
        return report

    def close(self) -> None:
        """Release the store's connections and the HTTP session."""
        if self._session is not None:
            self._session.close()
        self.store.dispose()


class _EarlyProcessing:
    """Normalising and enriching, in this process, what ingest workers have stored so far.

    While worker processes fetch and parse (`Settings.workers` above 1), this process would
    otherwise only wait. Each `step` handles the raw items stored by then, so that less is left
    when ingest ends. Only this process normalises, so duplicate grouping compares each notice
    with every earlier notice of the run, as it does without workers.
    """

    def __init__(self, runner: Runner, now: datetime) -> None:
        from noticeboard.enrich import EnrichReport
        from transforms.grouping import DuplicateWindow
        from transforms.normalise_stage import NormaliseReport

        self.runner = runner
        self.now = now
        self.normalised = NormaliseReport()
        self.enriched = EnrichReport()
        # One window for all steps, so each step reads only the notices that are new to it.
        self.window = DuplicateWindow()

    def step(self) -> bool:
        """Process what is pending once; return whether there was anything."""
        from noticeboard.enrich import enrich_pending
        from transforms.normalise_stage import normalise_pending

        runner = self.runner
        normalised = normalise_pending(
            runner.store,
            runner.catalog,
            runner.settings,
            now=self.now,
            window=self.window,
            withdraw=False,
        )
        enriched = enrich_pending(runner.store, runner.catalog, runner.settings, now=self.now)
        self.normalised.merge(normalised)
        self.enriched.merge(enriched)

        totals = normalised.totals
        handled = totals.created + totals.updated + totals.unchanged + totals.failed
        return handled > 0 or bool(enriched.enriched) or bool(enriched.failed)

    def add_to(self, stages: dict[str, Any]) -> None:
        """Add the counts of the early steps to the stage reports of the final pass."""
        stages["normalise"].merge(self.normalised)
        stages["enrich"].merge(self.enriched)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _merge_normalise_counts(report: RunReport, normalised: Any) -> None:
    for source_id, counts in normalised.sources.items():
        row = report.sources.setdefault(source_id, SourceSummary(source_id=source_id, status="ok"))
        row.new += counts.created
        row.updated += counts.updated
        row.unchanged += counts.unchanged
        row.failed += counts.failed
