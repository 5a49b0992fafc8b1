"""The enrichment step: batched tag writes, translation rows and per-notice failure isolation."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select, update

from noticeboard import enrich
from noticeboard.enrich import EnrichReport, enrich_pending
from noticeboard.models import RawItem
from noticeboard.settings import Settings
from noticeboard.store import Store, open_store
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


def _add_notices(store: Store, titles: dict[str, str] = TITLES) -> None:
    for key, title in titles.items():
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
        query = select(Notice.guid).join(Translation, Translation.notice_id == Notice.id)
        return set(session.scalars(query))


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


def _translations(store: Store, guid: str) -> dict[str, tuple[str, int, str | None]]:
    with store.session() as session:
        rows = session.execute(
            select(
                Translation.language,
                Translation.status,
                Translation.attempts,
                Translation.last_error,
            )
            .join(Notice, Notice.id == Translation.notice_id)
            .where(Notice.guid == guid)
        ).all()
    return {language: (status, attempts, error) for language, status, attempts, error in rows}


def test_enrich_again_requeues_translations(store: Store) -> None:
    _add_notices(store)
    enrich_pending(store, CATALOG, SETTINGS, now=NOW)
    with store.session() as session:
        road = session.scalars(select(Notice).where(Notice.guid == "urn:uuid:road")).one()
        session.execute(
            update(Translation)
            .where(Translation.notice_id == road.id)
            .values(status="failed", attempts=5, last_error="provider rejected the text")
        )
        session.add(
            Translation(
                notice_id=road.id,
                language="fi",
                version=1,
                status="pending",
                attempts=0,
                updated_at=NOW,
            )
        )
        session.execute(update(Notice).values(stage="normalised"))

    enrich_pending(store, CATALOG, Settings(translation_targets=("en", "fi")), now=NOW)

    road_rows = _translations(store, "urn:uuid:road")
    assert road_rows["en"] == ("pending", 0, None)
    assert road_rows["fi"] == ("skipped", 0, "notice is already in fi")
    assert _translations(store, "urn:uuid:water") == {"en": ("pending", 0, None)}


def test_enrich_unknown_source_ready(store: Store) -> None:
    _add_notices(store)

    report = enrich_pending(store, make_catalog(), SETTINGS, now=NOW)

    assert report.failed["agency-fi"] == len(TITLES)
    assert _tags(store) == {}
    assert _translation_guids(store) == set()
    assert _stages(store) == {"ready"}


def _enrich_concurrently(store_url: str, workers: int) -> list[EnrichReport]:
    reports: list[EnrichReport] = []
    errors: list[BaseException] = []

    def work() -> None:
        opened = open_store(store_url, migrate=False)
        try:
            reports.append(enrich_pending(opened, CATALOG, SETTINGS, now=NOW))
        except BaseException as error:  # noqa: BLE001 (reported by the assert below)
            errors.append(error)
        finally:
            opened.dispose()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], errors
    return reports


@pytest.mark.postgres
def test_concurrent_enrich_postgres(
    postgres_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    titles = {
        f"notice-{number}": f"Tiedote {number}: tietyö alkaa Helsingissä" for number in range(24)
    }
    _add_notices(postgres_store, titles)
    # Small batches, so that the workers claim batches while others hold theirs.
    monkeypatch.setattr(enrich, "BATCH_SIZE", 4)
    url = postgres_store.engine.url.render_as_string(hide_password=False)

    reports = _enrich_concurrently(url, workers=3)

    assert sum(report.enriched["agency-fi"] for report in reports) == len(titles)
    assert len(_tags(postgres_store)) == len(titles)
    assert _stages(postgres_store) == {"ready"}
    with postgres_store.session() as session:
        translations = session.scalar(select(func.count()).select_from(Translation))
    assert translations == len(titles)
