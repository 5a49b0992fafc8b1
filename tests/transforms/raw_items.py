"""Builders for normalisation tests: sources, a catalog, and raw items as connectors write them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from noticeboard.catalog import Catalog, Source
from noticeboard.models import RawItem
from noticeboard.store import Store
from noticeboard.store.tables import RawItem as RawItemRow
from noticeboard.store.tables import SourceState

FETCHED_AT = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def make_source(
    source_id: str, country: str = "FI", timezone_name: str = "Europe/Helsinki", **changes
) -> Source:  # type: ignore[no-untyped-def]
    values = dict(
        id=source_id,
        authority=f"Authority {source_id}",
        country=country,
        regions=(country,),
        languages=("fi", "sv"),
        timezone=timezone_name,
        kind="rss",
        urls=(f"https://{source_id}.example.fi/rss.xml",),
    )
    values.update(changes)
    return Source(**values)  # type: ignore[arg-type]


def make_catalog(*sources: Source) -> Catalog:
    return Catalog(
        path=Path("test-catalog.yaml"), sources={source.id: source for source in sources}
    )


def add_raw(store: Store, item: RawItem, fetched_at: datetime = FETCHED_AT) -> int:
    """Insert a pending raw_item row as a connector would; returns its id."""
    payload = dataclasses.asdict(item)
    material = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    with store.session() as session:
        row = RawItemRow(
            source_id=item.source_id,
            item_key=hashlib.sha256((item.guid or item.url or "").encode()).hexdigest(),
            payload=payload,
            payload_hash=hashlib.sha256(material.encode()).hexdigest(),
            fetched_at=fetched_at,
            status="pending",
        )
        session.add(row)
        session.flush()
        return row.id


def set_listing(store: Store, source_id: str, fetches: int, keys: list[str]) -> None:
    """Record a successful fetch listing `keys`, as the connectors do."""
    with store.session() as session:
        state = session.get(SourceState, source_id)
        if state is None:
            state = SourceState(source_id=source_id)
            session.add(state)
        state.successful_fetches = fetches
        state.listing = keys
