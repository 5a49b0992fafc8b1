"""Notice ids, canonical URLs, material-text hashes and listing keys."""

from __future__ import annotations

import pytest

from noticeboard.models import RawItem
from transforms.identity import (
    canonical_url,
    content_hash,
    keys_of_notice,
    listing_key,
    notice_id,
    stable_guid,
)

SOURCE = "agency-fi"
LINK = "https://agency.example.fi/tiedotteet/tietyo"
BODY = "Tietyö alkaa maanantaina. Lue lisää: https://agency.example.fi/tietyo?id=3"


def test_id_stable_across_runs() -> None:
    assert notice_id(SOURCE, "urn:uuid:1234", LINK) == notice_id(SOURCE, "urn:uuid:1234", LINK)


def test_id_is_hex_of_fixed_length() -> None:
    assert len(notice_id(SOURCE, "urn:uuid:1234", LINK)) == 32


def test_id_depends_on_source() -> None:
    assert notice_id(SOURCE, "g1", LINK) != notice_id("agency-se", "g1", LINK)


def test_id_prefers_guid() -> None:
    assert notice_id(SOURCE, "g1", LINK) != notice_id(SOURCE, "g2", LINK)


def test_id_url_guid_survives_https_move() -> None:
    assert notice_id(SOURCE, "http://agency.example.fi/a", None) == notice_id(
        SOURCE, "https://agency.example.fi/a/", None
    )


@pytest.mark.parametrize(
    "guid",
    [
        "https://agency.example.fi/tiedotteet/tietyo?ts=1717171717",
        "https://agency.example.fi/tiedotteet/tietyo;jsessionid=ABC123",
        "https://agency.example.fi/tiedotteet/tietyo?sid=99",
        "",
        "   ",
        None,
    ],
)
def test_volatile_guid_falls_back_to_url(guid: str | None) -> None:
    assert notice_id(SOURCE, guid, canonical_url(LINK)) == notice_id(
        SOURCE, None, canonical_url(LINK)
    )


def test_volatile_guid_detected() -> None:
    assert stable_guid("https://x.example.fi/a?_=123") is None


def test_id_from_title_as_last_resort() -> None:
    assert notice_id(SOURCE, None, None, fallback="Tiedote  A") == notice_id(
        SOURCE, None, None, fallback="tiedote a"
    )


def test_id_without_anything_raises() -> None:
    with pytest.raises(ValueError, match="no guid, no link and no title"):
        notice_id(SOURCE, None, None)


def test_canonical_drops_tracking_and_case() -> None:
    url = "http://WWW.Agency.Example.FI/tiedotteet/tietyo/?utm_source=rss&fbclid=1"

    assert canonical_url(url) == LINK


def test_canonical_sorts_parameters() -> None:
    assert canonical_url("https://x.example.fi/a?b=2&a=1") == canonical_url(
        "https://x.example.fi/a?a=1&b=2"
    )


def test_canonical_drops_cache_busting() -> None:
    assert canonical_url(LINK + "?_=1717171717&cb=5") == LINK


def test_canonical_keeps_item_anchor() -> None:
    assert canonical_url("https://x.example.fi/list#item-2") != canonical_url(
        "https://x.example.fi/list#item-3"
    )


def test_canonical_drops_state_fragment() -> None:
    assert canonical_url("https://x.example.fi/a#xtor=RSS-1") == "https://x.example.fi/a"


def test_hash_ignores_white_space() -> None:
    assert content_hash("Tietyö", BODY) == content_hash(" Tietyö ", BODY.replace(" ", "  \n "))


def test_hash_ignores_tracking_in_links() -> None:
    tracked = BODY + "&utm_source=newsletter&utm_medium=email"

    assert content_hash("Tietyö", BODY) == content_hash("Tietyö", tracked)


@pytest.mark.parametrize(
    "stamp",
    [
        "Sivu päivitetty 4.12.2026 10:15",
        "Sivu päivitetty 4.12.2026 klo 10.15",
        "Generated at 2026-12-04T10:15:00Z",
        "Page generated on 4.12.2026 10:15 EET",
        "Sidan uppdaterad 2026-12-04 10:15",
        "Lehte uuendatud 04.12.2026 10:15",
        "Lapa atjaunota 04.12.2026.",
        "Страница обновлена 04.12.2026 10:15",
        "Generated in 0.42 s",
    ],
)
def test_hash_ignores_page_stamp(stamp: str) -> None:
    assert content_hash("Tietyö", f"{BODY}\n\n{stamp}") == content_hash(
        "Tietyö", f"{BODY}\n\nSivu päivitetty 1.1.2026 00:00"
    )


def test_hash_changes_on_edit() -> None:
    assert content_hash("Tietyö", BODY) != content_hash(
        "Tietyö", BODY.replace("maanantaina", "tiistaina")
    )


def test_hash_changes_on_title_edit() -> None:
    assert content_hash("Tietyö", BODY) != content_hash("Tietyö siirtyy", BODY)


def test_hash_keeps_dates_in_text() -> None:
    assert content_hash("Tietyö", "Alkaa 4.12.2026.") != content_hash("Tietyö", "Alkaa 5.12.2026.")


def test_listing_key_survives_guid_change() -> None:
    first = RawItem(source_id=SOURCE, guid="3f6c1e2a", url=LINK, title="Tietyö")
    second = RawItem(
        source_id=SOURCE, guid="a90d47b5", url=LINK + "?utm_source=rss", title="Tietyö"
    )

    assert listing_key(first) == listing_key(second)


def test_listing_key_matches_stored_notice() -> None:
    raw = RawItem(source_id=SOURCE, guid="g1", url=LINK, title="<b>Tietyö</b>")

    assert listing_key(raw) == keys_of_notice(canonical_url(LINK), "g1", "Tietyö")


def test_listing_key_without_link_uses_guid() -> None:
    raw = RawItem(source_id=SOURCE, guid="g1", title="Tietyö")

    assert listing_key(raw) == keys_of_notice(None, "g1", "Tietyö")


def test_listing_key_without_link_or_guid_uses_title() -> None:
    raw = RawItem(source_id=SOURCE, title="Tietyö &amp; katko")

    assert listing_key(raw) == keys_of_notice(None, None, "Tietyö & katko")
