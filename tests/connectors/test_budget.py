"""The per-host budget: slots spaced by the interval, shared through the store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from connectors.budget import InMemoryHostBudget, StoreHostBudget
from connectors.http import HttpFetcher
from noticeboard.settings import Settings
from noticeboard.store import Store, open_store
from tests.connectors.conftest import LocalServer, Reply

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def test_memory_budget_spaces_slots() -> None:
    budget = InMemoryHostBudget(clock=lambda: NOW)

    waits = [budget.reserve("kunta.example.fi", 2.0) for _ in range(3)]

    assert waits == [0.0, 2.0, 4.0]


def test_memory_budget_per_host() -> None:
    budget = InMemoryHostBudget(clock=lambda: NOW)
    budget.reserve("kunta.example.fi", 2.0)

    assert budget.reserve("amet.example.ee", 2.0) == 0.0


def _check_store_budget(store: Store) -> None:
    budget = StoreHostBudget(store, clock=lambda: NOW)

    waits = [budget.reserve("kunta.example.fi", 2.0) for _ in range(3)]
    other = budget.reserve("amet.example.ee", 2.0)

    assert waits == [0.0, 2.0, 4.0]
    assert other == 0.0


def test_store_budget_spaces_slots(store: Store) -> None:
    _check_store_budget(store)


@pytest.mark.postgres
def test_store_budget_on_postgres(postgres_store: Store) -> None:
    _check_store_budget(postgres_store)


def _check_concurrent_reservations(store: Store) -> None:
    budget = StoreHostBudget(store, clock=lambda: NOW)
    waits: list[float] = []
    lock = threading.Lock()

    def reserve() -> None:
        wait = budget.reserve("kunta.example.fi", 1.0)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == [float(slot) for slot in range(8)]


def test_store_budget_concurrent(store: Store) -> None:
    _check_concurrent_reservations(store)


@pytest.mark.postgres
def test_store_budget_concurrent_postgres(postgres_store: Store) -> None:
    _check_concurrent_reservations(postgres_store)


def test_budget_shared_by_two_fetchers(
    server: LocalServer, settings: Settings, sqlite_url: str
) -> None:
    server.route("/a.xml", Reply(body=b"<rss/>"))
    server.route("/b.xml", Reply(body=b"<rss/>"))
    settings = settings.replace(host_min_interval=0.3, respect_robots=False)
    first_store, second_store = open_store(sqlite_url), open_store(sqlite_url)
    fetchers = [
        HttpFetcher(settings, StoreHostBudget(opened)) for opened in (first_store, second_store)
    ]

    threads = [
        threading.Thread(target=fetcher.fetch, args=(server.url(path),), kwargs={"source_id": path})
        for fetcher, path in zip(fetchers * 2, ["/a.xml", "/b.xml"] * 2, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first_store.dispose()
    second_store.dispose()

    times = sorted(request.at for request in server.requests)
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert len(times) == 4
    assert min(gaps) >= 0.25
