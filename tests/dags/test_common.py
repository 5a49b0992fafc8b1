"""Error sorting, run times, XCom summaries and backfill periods of the DAG helpers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("require_airflow")]

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_transient_error_raised_again() -> None:
    from _common import fail_or_retry

    from noticeboard.errors import FetchError

    error = FetchError("fi-vero", "https://vero.example.fi/rss", "HTTP 503")
    with pytest.raises(FetchError):
        fail_or_retry(error, "ingest")


def test_terminal_error_fails_fast() -> None:
    from _common import fail_or_retry
    from airflow.sdk.exceptions import AirflowFailException

    from noticeboard.errors import CatalogError

    with pytest.raises(AirflowFailException, match="will not be retried"):
        fail_or_retry(CatalogError("catalog x: source 'a': field `kind` is missing"), "ingest")


def test_run_time_prefers_run_after() -> None:
    from _common import run_time

    context = {"dag_run": SimpleNamespace(run_after=NOW), "logical_date": None}
    assert run_time(context) == NOW


def test_run_time_without_logical_date() -> None:
    from _common import run_time

    context = {"dag_run": SimpleNamespace(run_after=None), "logical_date": NOW}
    assert run_time(context) == NOW


def test_summarise_dataclass_counters() -> None:
    from _common import summarise

    @dataclass
    class Report:
        created: Counter
        when: datetime

    summary = summarise(Report(created=Counter({"fi-vero": 2}), when=NOW))
    assert summary == {"created": {"fi-vero": 2}, "when": str(NOW)}


def test_backfill_period_end() -> None:
    from noticeboard_backfill import period_end

    end = period_end({"start": "2026-03-01", "end": "2026-03-05"}, NOW)
    assert end == datetime(2026, 3, 6, tzinfo=UTC)


def test_backfill_period_clamped_to_now() -> None:
    from noticeboard_backfill import period_end

    assert period_end({"start": "2026-03-01", "end": "2026-12-31"}, NOW) == NOW


def test_backfill_period_reversed() -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from noticeboard_backfill import period_end

    with pytest.raises(AirflowFailException, match="before it starts"):
        period_end({"start": "2026-03-05", "end": "2026-03-01"}, NOW)


def test_backfill_period_malformed() -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from noticeboard_backfill import period_end

    with pytest.raises(AirflowFailException, match="YYYY-MM-DD"):
        period_end({"start": "1.3.2026", "end": "2026-03-05"}, NOW)
