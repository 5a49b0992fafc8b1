"""The normalisation stage: create, update, unchanged, guid changes, dates, failures, withdrawal."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from noticeboard.models import RawItem
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, NoticeEvent, NoticeVersion
from noticeboard.store.tables import RawItem as RawItemRow
from tests.transforms.raw_items import NOW, add_raw, make_catalog, make_source, set_listing
from transforms import normalise_stage
from transforms.identity import listing_key
from transforms.normalise_stage import normalise_pending

SETTINGS = Settings(withdraw_after_fetches=3, summary_chars=80)
FI = make_source("agency-fi")
LV = make_source("agency-lv", country="LV", timezone_name="Europe/Riga", languages=("lv",))
CATALOG = make_catalog(FI, LV)
LINK = "https://agency-fi.example.fi/tiedotteet/tietyo"


def _item(**changes) -> RawItem:  # type: ignore[no-untyped-def]
    values = dict(
        source_id="agency-fi",
        guid="urn:uuid:0b7d-4c55",
        url=LINK,
        title="Tietyö alkaa Esimerkkitiellä",
        body_html="<p>Tietyö alkaa maanantaina.</p><p>Kiertotie on merkitty.</p>",
        published_raw="Wed, 04 Mar 2026 10:15:00 +0200",
        language="fi",
    )
    values.update(changes)
    return RawItem(**values)  # type: ignore[arg-type]


def _run(store: Store, catalog=CATALOG, now: datetime = NOW):  # type: ignore[no-untyped-def]
    return normalise_pending(store, catalog, SETTINGS, now=now)


def _notices(store: Store) -> list[Notice]:
    with store.session() as session:
        return list(session.scalars(select(Notice).order_by(Notice.first_seen_at, Notice.id)).all())


def _events(store: Store) -> list[tuple[str, int]]:
    with store.session() as session:
        return [
            (event.kind, event.version)
            for event in session.scalars(select(NoticeEvent).order_by(NoticeEvent.id))
        ]


def _statuses(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(RawItemRow.status).order_by(RawItemRow.id)))


def test_new_item_created(store: Store) -> None:
    add_raw(store, _item())

    report = _run(store)

    notice = _notices(store)[0]
    assert report.counts("agency-fi").created == 1
    assert notice.version == 1
    assert notice.stage == "normalised"
    assert notice.published_at == datetime(2026, 3, 4, 8, 15, tzinfo=UTC)
    assert notice.body_text == "Tietyö alkaa maanantaina.\n\nKiertotie on merkitty."
    assert _events(store) == [("created", 1)]
    assert _statuses(store) == ["processed"]


def test_version_one_stored(store: Store) -> None:
    add_raw(store, _item())
    _run(store)

    with store.session() as session:
        versions = session.scalars(select(NoticeVersion)).all()
    assert [(version.version, version.diff) for version in versions] == [(1, None)]


def test_second_run_does_nothing(store: Store) -> None:
    add_raw(store, _item())
    _run(store)

    report = _run(store)

    assert report.sources == {}
    assert _events(store) == [("created", 1)]


def test_unmaterial_change_unchanged(store: Store) -> None:
    add_raw(store, _item())
    _run(store)
    add_raw(
        store,
        _item(
            url=LINK + "?utm_source=rss&_=1717",
            body_html=(
                "<p>Tietyö  alkaa\nmaanantaina.</p> <p>Kiertotie on merkitty.</p>"
                "<p>Sivu päivitetty 4.3.2026 11:00</p>"
            ),
        ),
    )

    report = _run(store)

    assert report.counts("agency-fi").unchanged == 1
    assert _events(store) == [("created", 1)]
    assert _notices(store)[0].version == 1


def test_material_change_new_version(store: Store) -> None:
    add_raw(store, _item())
    _run(store)
    add_raw(store, _item(body_html="<p>Tietyö alkaa tiistaina.</p><p>Kiertotie on merkitty.</p>"))

    report = _run(store, now=NOW + timedelta(hours=1))

    notice = _notices(store)[0]
    with store.session() as session:
        latest = session.scalars(select(NoticeVersion).where(NoticeVersion.version == 2)).one()
    assert report.counts("agency-fi").updated == 1
    assert notice.version == 2
    assert notice.changed_at == NOW + timedelta(hours=1)
    assert _events(store) == [("created", 1), ("updated", 2)]
    assert "-Tietyö alkaa maanantaina." in (latest.diff or "")
    assert "+Tietyö alkaa tiistaina." in (latest.diff or "")


def test_title_change_new_version(store: Store) -> None:
    add_raw(store, _item())
    _run(store)
    add_raw(store, _item(title="Tietyö siirtyy"))

    _run(store)

    assert _notices(store)[0].title == "Tietyö siirtyy"
    assert _events(store) == [("created", 1), ("updated", 2)]


def test_regenerated_guid_same_notice(store: Store) -> None:
    first = RawItem(
        source_id="agency-lv",
        guid="3f6c1e2a-0b7d-4c55-9a41-000000000001",
        url="https://agency-lv.example.lv/jaunumi/remontdarbi",
        title="Remontdarbi sāksies pirmdien",
        summary_html="Remontdarbi ilgs divas nedēļas.",
        published_raw="Wed, 04 Mar 2026 10:15:00 +0200",
    )
    add_raw(store, first)
    _run(store)
    add_raw(store, RawItem(**{**first.__dict__, "guid": "a90d47b5-7e1f-4f02-8c3e-000000000002"}))

    report = _run(store)

    notices = _notices(store)
    assert len(notices) == 1
    assert notices[0].guid == "a90d47b5-7e1f-4f02-8c3e-000000000002"
    assert notices[0].published_at == datetime(2026, 3, 4, 8, 15, tzinfo=UTC)
    assert report.counts("agency-lv").unchanged == 1
    assert _events(store) == [("created", 1)]


def test_new_guid_other_title_is_new(store: Store) -> None:
    add_raw(store, _item())
    _run(store)
    add_raw(store, _item(guid="urn:uuid:other", title="Toinen tiedote"))

    _run(store)

    assert len(_notices(store)) == 2


@pytest.mark.parametrize(
    ("raw", "expected", "assumed"),
    [
        ("ke, 04 maalis 2026 10:15:00 +0200", datetime(2026, 3, 4, 8, 15, tzinfo=UTC), False),
        ("2026-03-04T10:15:00", datetime(2026, 3, 4, 8, 15, tzinfo=UTC), True),
        ("Wed, 04 Mar 2026 10:15:00", datetime(2026, 3, 4, 8, 15, tzinfo=UTC), True),
        ("4.3.2026 10.15", datetime(2026, 3, 4, 8, 15, tzinfo=UTC), True),
    ],
)
def test_local_dates_stored_exactly(
    store: Store, raw: str, expected: datetime, assumed: bool
) -> None:
    add_raw(store, _item(published_raw=raw))

    _run(store)

    notice = _notices(store)[0]
    assert notice.published_at == expected
    assert notice.published_zone_assumed is assumed
    assert notice.published_raw == raw
    assert notice.published_precision == "datetime"


def test_date_only_keeps_precision(store: Store) -> None:
    add_raw(store, _item(published_raw="04.03.2026"))

    _run(store)

    notice = _notices(store)[0]
    assert notice.published_precision == "date"
    assert notice.published_at == datetime(2026, 3, 3, 22, 0, tzinfo=UTC)


def test_missing_date_falls_back(store: Store) -> None:
    add_raw(store, _item(published_raw=None))

    _run(store)

    notice = _notices(store)[0]
    assert notice.published_at is None
    assert notice.published_fallback is True
    assert notice.published_precision == "none"
    assert notice.first_seen_at == datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def test_unreadable_date_kept_raw(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    add_raw(store, _item(published_raw="pian julkaistaan"))

    with caplog.at_level(logging.WARNING, logger="transforms.normalise"):
        _run(store)

    notice = _notices(store)[0]
    assert notice.published_at is None
    assert notice.published_fallback is True
    assert notice.published_raw == "pian julkaistaan"
    assert "date_unparsed source=agency-fi" in caplog.text


def test_future_date_not_stored(store: Store) -> None:
    add_raw(store, _item(published_raw="4.3.2027 10.15"))

    _run(store)

    assert _notices(store)[0].published_at is None


def test_text_sanitised(store: Store) -> None:
    add_raw(
        store,
        _item(
            title="Tietyö &amp; <b>katko</b>",
            body_html=(
                '<p onclick="x()">Katso <a href="/kartta?utm_source=rss">kartta</a></p>'
                "<script>alert(1)</script>"
            ),
        ),
    )

    _run(store)

    notice = _notices(store)[0]
    assert notice.title == "Tietyö & katko"
    assert "<script" not in notice.body_html
    assert 'href="https://agency-fi.example.fi/kartta"' in notice.body_html


def test_summary_cut(store: Store) -> None:
    long_body = "<p>" + " ".join(["Tietyö jatkuu Esimerkkitiellä koko viikon."] * 10) + "</p>"
    add_raw(store, _item(body_html=long_body))

    _run(store)

    notice = _notices(store)[0]
    assert len(notice.summary_text) <= SETTINGS.summary_chars
    assert notice.summary_text.endswith("…")


def test_unknown_source_failed(store: Store) -> None:
    add_raw(store, _item(source_id="removed-source"))

    report = _run(store)

    assert report.counts("removed-source").failed == 1
    assert _statuses(store) == ["failed"]


def test_bad_item_does_not_stop_run(store: Store) -> None:
    add_raw(store, _item(guid=None, url=None, title=None, body_html=None))
    add_raw(store, _item())

    report = _run(store)

    assert report.counts("agency-fi").failed == 1
    assert report.counts("agency-fi").created == 1
    assert _statuses(store) == ["failed", "processed"]


def _crash_on_second_upsert(monkeypatch: pytest.MonkeyPatch) -> None:
    original = normalise_stage._upsert
    calls = {"count": 0}

    def crash_on_second(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["count"] += 1
        if calls["count"] == 2:
            raise RuntimeError("simulated crash")
        return original(*args, **kwargs)

    monkeypatch.setattr(normalise_stage, "_upsert", crash_on_second)


def test_crash_mid_batch_keeps_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    add_raw(store, _item())
    add_raw(store, _item(guid="g2", url=LINK + "-2", title="Toinen"))
    _crash_on_second_upsert(monkeypatch)

    with pytest.raises(RuntimeError):
        _run(store)
    assert _statuses(store) == ["pending", "pending"]
    assert _notices(store) == []

    monkeypatch.undo()
    _run(store)
    assert _statuses(store) == ["processed", "processed"]
    assert len(_notices(store)) == 2


def test_crash_keeps_earlier_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    add_raw(store, _item())
    add_raw(store, _item(guid="g2", url=LINK + "-2", title="Toinen"))
    _crash_on_second_upsert(monkeypatch)

    with pytest.raises(RuntimeError):
        normalise_pending(store, CATALOG, SETTINGS, now=NOW, batch_size=1)

    assert _statuses(store) == ["processed", "pending"]
    assert len(_notices(store)) == 1


def test_conflict_retries_rows_singly(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    add_raw(store, _item())
    add_raw(store, _item(guid="g2", url=LINK + "-2", title="Toinen"))
    original = normalise_stage._upsert
    calls = {"count": 0}

    def conflict_on_second(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["count"] += 1
        if calls["count"] == 2:
            raise IntegrityError("INSERT INTO notice", {}, Exception("simulated conflict"))
        return original(*args, **kwargs)

    monkeypatch.setattr(normalise_stage, "_upsert", conflict_on_second)
    report = _run(store)

    assert report.counts("agency-fi").created == 2
    assert _statuses(store) == ["processed", "processed"]
    assert len(_notices(store)) == 2
    assert _events(store) == [("created", 1), ("created", 1)]


def _listed_source():  # type: ignore[no-untyped-def]
    source = make_source("listing-fi", lists_all_current=True)
    return source, make_catalog(source)


def test_withdrawn_after_missing_fetches(store: Store) -> None:
    source, catalog = _listed_source()
    kept = _item(source_id=source.id)
    gone = _item(source_id=source.id, guid="g-gone", url=LINK + "-gone", title="Poistuva")
    set_listing(store, source.id, 1, [listing_key(kept), listing_key(gone)])
    add_raw(store, kept)
    add_raw(store, gone)
    _run(store, catalog)

    for fetch in (2, 3):
        set_listing(store, source.id, fetch, [listing_key(kept)])
        report = _run(store, catalog)
        assert report.counts(source.id).withdrawn == 0

    set_listing(store, source.id, 4, [listing_key(kept)])
    report = _run(store, catalog)

    withdrawn = [notice.title for notice in _notices(store) if notice.withdrawn_at is not None]
    assert report.counts(source.id).withdrawn == 1
    assert withdrawn == ["Poistuva"]
    assert ("withdrawn", 1) in _events(store)


def test_withdrawal_happens_once(store: Store) -> None:
    source, catalog = _listed_source()
    gone = _item(source_id=source.id)
    set_listing(store, source.id, 1, [listing_key(gone)])
    add_raw(store, gone)
    _run(store, catalog)
    set_listing(store, source.id, 5, ["u:other"])
    _run(store, catalog)

    set_listing(store, source.id, 6, ["u:other"])
    _run(store, catalog)

    assert _events(store).count(("withdrawn", 1)) == 1


def test_empty_listing_withdraws_nothing(store: Store) -> None:
    source, catalog = _listed_source()
    item = _item(source_id=source.id)
    set_listing(store, source.id, 1, [listing_key(item)])
    add_raw(store, item)
    _run(store, catalog)

    set_listing(store, source.id, 9, [])
    _run(store, catalog)

    assert _notices(store)[0].withdrawn_at is None


def test_relisted_notice_restored(store: Store) -> None:
    source, catalog = _listed_source()
    item = _item(source_id=source.id)
    set_listing(store, source.id, 1, [listing_key(item)])
    add_raw(store, item)
    _run(store, catalog)
    set_listing(store, source.id, 5, ["u:other"])
    _run(store, catalog)

    set_listing(store, source.id, 6, [listing_key(item)])
    _run(store, catalog)

    notice = _notices(store)[0]
    assert notice.withdrawn_at is None
    assert notice.last_listed_fetch == 6


def test_source_without_flag_never_withdraws(store: Store) -> None:
    set_listing(store, "agency-fi", 1, ["u:x"])
    add_raw(store, _item())
    _run(store)

    set_listing(store, "agency-fi", 10, ["u:other"])
    _run(store)

    assert _notices(store)[0].withdrawn_at is None


def test_same_guid_two_language_feeds(store: Store) -> None:
    add_raw(
        store,
        _item(guid="item-77", url="https://agency-fi.example.fi/fi/tiedotteet/77", language="fi"),
    )
    add_raw(
        store,
        _item(
            guid="item-77",
            url="https://agency-fi.example.fi/sv/meddelanden/77",
            title="Vägarbete börjar",
            body_html="<p>Vägarbetet börjar på måndag.</p>",
            language="sv",
        ),
    )

    _run(store)

    notices = _notices(store)
    assert len(notices) == 2
    assert notices[0].variant_group is not None
    assert notices[0].variant_group == notices[1].variant_group


def _normalise_concurrently(store_url: str, workers: int) -> None:
    from noticeboard.store import open_store

    errors: list[BaseException] = []

    def work() -> None:
        opened = open_store(store_url, migrate=False)
        try:
            normalise_pending(opened, CATALOG, SETTINGS, now=NOW)
        except BaseException as error:  # noqa: BLE001 (reported by the assert below)
            errors.append(error)
        finally:
            opened.dispose()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def _check_concurrent_run(store: Store) -> None:
    for number in range(20):
        add_raw(store, _item(guid=f"g{number}", url=f"{LINK}-{number}", title=f"Tiedote {number}"))
        add_raw(
            store,
            _item(
                guid=f"g{number}",
                url=f"{LINK}-{number}",
                title=f"Tiedote {number}",
                body_html=f"<p>Muutettu teksti {number}.</p>",
            ),
        )

    _normalise_concurrently(store.engine.url.render_as_string(hide_password=False), workers=4)

    with store.session() as session:
        notices = session.scalar(select(func.count()).select_from(Notice))
        created = session.scalar(select(func.count()).where(NoticeEvent.kind == "created"))
        updated = session.scalar(select(func.count()).where(NoticeEvent.kind == "updated"))
        pending = session.scalar(select(func.count()).where(RawItemRow.status != "processed"))
    assert notices == 20
    assert created == 20
    assert updated == 20
    assert pending == 0


def test_concurrent_runs_sqlite(store: Store) -> None:
    _check_concurrent_run(store)


@pytest.mark.postgres
def test_concurrent_runs_postgres(postgres_store: Store) -> None:
    _check_concurrent_run(postgres_store)


def test_field_regenerated_guids(store: Store, cases_dir) -> None:  # type: ignore[no-untyped-def]
    import re

    source = make_source("field-lv", country="LV", timezone_name="Europe/Riga", languages=("lv",))
    catalog = make_catalog(source)
    for name in ("BR-05-1.xml", "BR-05-2.xml"):
        item = (cases_dir / name).read_text(encoding="utf-8").split("<item>")[1]
        fields = dict(re.findall(r"<(title|link|guid|pubDate|description)[^>]*>([^<]*)<", item))
        add_raw(
            store,
            RawItem(
                source_id=source.id,
                guid=fields["guid"],
                url=fields["link"],
                title=fields["title"],
                summary_html=fields["description"],
                published_raw=fields["pubDate"],
            ),
        )

    _run(store, catalog)

    notices = _notices(store)
    assert len(notices) == 1
    assert notices[0].published_at == datetime(2026, 3, 4, 8, 15, tzinfo=UTC)
    assert _events(store) == [("created", 1)]
