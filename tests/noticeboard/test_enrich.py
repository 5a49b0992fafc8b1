"""The enrichment step: batched tag writes, translation rows and per-notice failure isolation."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from noticeboard.enrich import enrich_pending
from noticeboard.models import RawItem
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, NoticeTag, Translation
from tests.transforms.raw_items import NOW, add_raw, make_catalog, make_source
from transforms import tagging
from transforms.normalise_stage import normalise_pending

SETTINGS = Settings(translation_targets=("en",))
SOURCE = make_source("agency-fi")
CATALOG = make_catalog(SOURCE)
TITLES = {
    "road": "Tietyö alkaa Helsingissä Mannerheimintiellä",
    "school": "Koulujen syysloma alkaa Helsingissä ensi viikolla",
    "water": "Vedenjakelussa katko Helsingissä tiistaina",
}


def _add_notices(store: Store) -> None:
    for key, title in TITLES.items():
        item = RawItem(
            source_id="agency-fi",
            guid=f"urn:uuid:{key}",
            url=f"https://agency-fi.example.fi/tiedotteet/{key}",
            title=title,
            body_html=f"<p>{title}. Lisätietoja antaa kaupungin asiakaspalvelu arkisin.</p>",
            published_raw="Wed, 04 Mar 2026 10:15:00 +0200",
            language="fi",
        )
        add_raw(store, item)
    normalise_pending(store, CATALOG, SETTINGS, now=NOW)


def _tags(store: Store) -> dict[str, list[tuple[str, str]]]:
    with store.session() as session:
        rows = session.execute(
            select(Notice.guid, NoticeTag.kind, NoticeTag.value)
            .join(Notice, Notice.id == NoticeTag.notice_id)
            .order_by(Notice.guid, NoticeTag.kind, NoticeTag.value)
        ).all()
    tags: dict[str, list[tuple[str, str]]] = {}
    for guid, kind, value in rows:
        tags.setdefault(guid, []).append((kind, value))
    return tags


def _translation_guids(store: Store) -> set[str]:
    with store.session() as session:
        return set(
            session.scalars(select(Notice.guid).join(Translation, Translation.notice_id == Notice.id))
        )


def _stages(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(Notice.stage)))


def test_enrich_writes_tags(store: Store) -> None:
    _add_notices(store)

    report = enrich_pending(store, CATALOG, SETTINGS, now=NOW)

    assert report.enriched["agency-fi"] == len(TITLES)
    assert sorted(_tags(store)) == sorted(f"urn:uuid:{key}" for key in TITLES)
    assert _translation_guids(store) == {f"urn:uuid:{key}" for key in TITLES}
    assert _stages(store) == {"ready"}


def test_enrich_again_replaces_tags(store: Store) -> None:
    _add_notices(store)
    enrich_pending(store, CATALOG, SETTINGS, now=NOW)
    first = _tags(store)
    with store.session() as session:
        session.execute(update(Notice).values(stage="normalised"))

    enrich_pending(store, CATALOG, SETTINGS, now=NOW)

    assert _tags(store) == first


def test_enrich_failure_isolated(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _add_notices(store)
    real_tag_notice = tagging.tag_notice

    def failing_tag_notice(title: str, *args: Any) -> Any:
        if title == TITLES["school"]:
            raise RuntimeError("tagger failed on purpose")
        return real_tag_notice(title, *args)

    monkeypatch.setattr(tagging, "tag_notice", failing_tag_notice)

    report = enrich_pending(store, CATALOG, SETTINGS, now=NOW)

    assert report.failed["agency-fi"] == 1
    assert report.enriched["agency-fi"] == 2
    assert "urn:uuid:school" not in _tags(store)
    assert "urn:uuid:road" in _tags(store)
    assert _translation_guids(store) == {"urn:uuid:road", "urn:uuid:water"}
    assert _stages(store) == {"ready"}


def test_enrich_failure_keeps_language(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _add_notices(store)

    def failing_tag_notice(*args: Any) -> Any:
        raise RuntimeError("tagger failed on purpose")

    monkeypatch.setattr(tagging, "tag_notice", failing_tag_notice)
    enrich_pending(store, CATALOG, SETTINGS, now=NOW)

    with store.session() as session:
        languages = set(session.scalars(select(Notice.language_method)))
    assert languages == {None}
