"""The per-host request budget: at most one request per host every `host_min_interval` seconds.

Politeness is per host, not per source, because a city may publish three feeds on one server. The
budget hands out time slots: `reserve` books the next free slot of a host and returns how long the
caller must wait for it. `StoreHostBudget` keeps the slots in the `host_budget` table, so every
process and every Airflow worker on the same database shares them. `InMemoryHostBudget` does the
same within one process, for tests and one-off runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import HostBudget


def utc_now() -> datetime:
    """Return the current time, aware and in UTC."""
    return datetime.now(UTC)


class HostBudgetProtocol(Protocol):
    """Books request slots per host."""

    def reserve(self, host: str, interval: float) -> float:
        """Book the next slot of `host` and return the seconds to wait before using it."""
        ...


class InMemoryHostBudget:
    """A host budget for one process."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._next: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def reserve(self, host: str, interval: float) -> float:
        """Book the next slot of `host` and return the seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + timedelta(seconds=interval)
        return (slot - now).total_seconds()


class StoreHostBudget:
    """A host budget in the database, shared by every process that uses the same store.

    Each reservation is one short transaction that locks the host's row before reading it:
    `SELECT ... FOR UPDATE` on PostgreSQL. SQLite has no row locks, so the transaction starts with
    a write (the insert that creates a missing row), which takes SQLite's single write lock.
    Either way no two callers can read the same slot.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        # `settings` is accepted so callers can build every budget alike; the interval comes with
        # each reservation.
        del settings
        self._store = store
        self._clock = clock

    def reserve(self, host: str, interval: float) -> float:
        """Book the next slot of `host` and return the seconds to wait before using it."""
        host = host.lower()
        with self._store.session() as session:
            now = self._clock()
            insert = postgresql.insert if self._store.dialect == "postgresql" else sqlite.insert
            session.execute(
                insert(HostBudget)
                .values(host=host, next_request_at=now)
                .on_conflict_do_nothing(index_elements=["host"])
            )

            booked = session.execute(
                select(HostBudget.next_request_at).where(HostBudget.host == host).with_for_update()
            ).scalar_one()
            slot = max(now, booked)
            session.execute(
                update(HostBudget)
                .where(HostBudget.host == host)
                .values(next_request_at=slot + timedelta(seconds=interval))
            )
        return (slot - now).total_seconds()
