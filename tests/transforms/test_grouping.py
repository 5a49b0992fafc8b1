"""Language-variant and near-duplicate grouping."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from noticeboard.models import RawItem
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice
from tests.transforms.raw_items import FETCHED_AT, NOW, add_raw, make_catalog, make_source
from transforms.grouping import (
    MIN_JACCARD,
    PREFILTER_MAX_DISTANCE,
    _path_twins,
    hamming_distance,
    jaccard,
    min_hashes,
    simhash,
    word_shingles,
)
from transforms.normalise_stage import normalise_pending

SETTINGS = Settings()
MINISTRY = make_source("ministry-fi")
AGENCY = make_source("agency-fi")
CITY_SV = make_source("city-se", country="SE", timezone_name="Europe/Stockholm", languages=("sv",))
CATALOG = make_catalog(MINISTRY, AGENCY, CITY_SV)

ANNOUNCEMENT = (
    "Valtioneuvosto on päättänyt, että uusi tukiohjelma pienille yrityksille avautuu maaliskuussa. "
    "Tukea voi hakea sähköisesti 1.4.2026 alkaen, ja hakuaika päättyy 30.6.2026. "
    "Tuen enimmäismäärä on 20 000 euroa yritystä kohden, "
    "ja hakemukset käsitellään saapumisjärjestyksessä."
)
UNRELATED = (
    "Kaupungin uimahalli on suljettuna huoltotöiden vuoksi koko huhtikuun ajan. "
    "Asiakkaita pyydetään käyttämään naapurikuntien halleja, "
    "joiden aukioloajat löytyvät kuntien verkkosivuilta."
)


def _groups(store: Store) -> dict[str, tuple[str | None, str | None]]:
    with store.session() as session:
        rows = session.execute(
            select(Notice.url, Notice.variant_group, Notice.duplicate_group)
        ).all()
    return {url: (variant, duplicate) for url, variant, duplicate in rows}


def _add(store: Store, source: str, url: str, title: str, body: str, **changes) -> None:  # type: ignore[no-untyped-def]
    add_raw(
        store,
        RawItem(
            source_id=source,
            guid=changes.pop("guid", url),
            url=url,
            title=title,
            body_html=f"<p>{body}</p>",
            **changes,
        ),
    )


def test_simhash_close_for_small_edit() -> None:
    edited = ANNOUNCEMENT.replace("Valtioneuvosto on päättänyt", "Ministeriö tiedottaa")

    assert hamming_distance(simhash(ANNOUNCEMENT), simhash(edited)) <= PREFILTER_MAX_DISTANCE


def test_simhash_far_for_other_text() -> None:
    assert hamming_distance(simhash(ANNOUNCEMENT), simhash(UNRELATED)) > PREFILTER_MAX_DISTANCE


def test_jaccard_of_small_edit() -> None:
    edited = ANNOUNCEMENT.replace("Valtioneuvosto on päättänyt", "Ministeriö tiedottaa")

    assert jaccard(word_shingles(ANNOUNCEMENT), word_shingles(edited)) >= MIN_JACCARD


def test_jaccard_of_other_text() -> None:
    assert jaccard(word_shingles(ANNOUNCEMENT), word_shingles(UNRELATED)) < 0.1


def test_simhash_of_empty_text() -> None:
    assert simhash("") == 0


def test_path_twins_swap_language() -> None:
    twins = _path_twins("https://x.example.fi/fi/news/123")

    assert "https://x.example.fi/sv/news/123" in twins
    assert "https://x.example.fi/en/news/123" in twins
    assert "https://x.example.fi/fi/news/123" not in twins


def test_path_twins_need_language_segment() -> None:
    assert _path_twins("https://x.example.fi/news/123") == set()


def test_path_twins_grouped(store: Store) -> None:
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/fi/tiedotteet/501",
        "Tietyö alkaa",
        "Tietyö alkaa maanantaina.",
    )
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/sv/tiedotteet/501",
        "Vägarbete börjar",
        "Vägarbetet börjar på måndag.",
    )
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/en/tiedotteet/501",
        "Roadworks start",
        "Roadworks start on Monday.",
    )
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/fi/tiedotteet/502",
        "Muu tiedote",
        "Aivan muuta.",
    )

    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    groups = _groups(store)
    group = groups["https://agency.example.fi/fi/tiedotteet/501"][0]
    assert group is not None
    assert groups["https://agency.example.fi/sv/tiedotteet/501"][0] == group
    assert groups["https://agency.example.fi/en/tiedotteet/501"][0] == group
    assert groups["https://agency.example.fi/fi/tiedotteet/502"][0] is None


def test_hreflang_alternates_grouped(store: Store) -> None:
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/tiedote/kesatyot",
        "Kesätyöt",
        "Haku kesätöihin on auki.",
        alternates={
            "sv": "https://agency.example.fi/meddelande/sommarjobb",
            "fi": "https://agency.example.fi/tiedote/kesatyot",
        },
    )
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/meddelande/sommarjobb",
        "Sommarjobb",
        "Ansökan till sommarjobb är öppen.",
    )

    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    groups = _groups(store)
    assert groups["https://agency.example.fi/tiedote/kesatyot"][0] is not None
    assert (
        groups["https://agency.example.fi/tiedote/kesatyot"][0]
        == groups["https://agency.example.fi/meddelande/sommarjobb"][0]
    )


def test_hreflang_named_by_later_notice(store: Store) -> None:
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/meddelande/sommarjobb",
        "Sommarjobb",
        "Ansökan till sommarjobb är öppen.",
    )
    normalise_pending(store, CATALOG, SETTINGS, now=NOW)
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/tiedote/kesatyot",
        "Kesätyöt",
        "Haku kesätöihin on auki.",
        alternates={"sv": "https://agency.example.fi/meddelande/sommarjobb"},
    )

    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    groups = _groups(store)
    assert groups["https://agency.example.fi/meddelande/sommarjobb"][0] is not None
    assert (
        groups["https://agency.example.fi/tiedote/kesatyot"][0]
        == groups["https://agency.example.fi/meddelande/sommarjobb"][0]
    )


def test_same_guid_across_sources_grouped(store: Store) -> None:
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/a/1",
        "Tiedote",
        "Suomeksi.",
        guid="urn:notice:2026-17",
    )
    _add(
        store,
        "city-se",
        "https://city.example.se/b/1",
        "Meddelande",
        "På svenska.",
        guid="urn:notice:2026-17",
    )

    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    groups = _groups(store)
    assert groups["https://agency.example.fi/a/1"][0] is not None
    assert groups["https://agency.example.fi/a/1"][0] == groups["https://city.example.se/b/1"][0]


def test_cross_source_duplicate_grouped(store: Store) -> None:
    _add(
        store,
        "ministry-fi",
        "https://ministry.example.fi/tiedote/tukiohjelma",
        "Uusi tukiohjelma yrityksille",
        ANNOUNCEMENT,
    )
    edited = ANNOUNCEMENT.replace("Valtioneuvosto on päättänyt", "Ministeriö tiedottaa")
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/uutiset/tukiohjelma",
        "Uusi tukiohjelma yrityksille",
        edited,
    )
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/uutiset/uimahalli",
        "Uimahalli suljettu",
        UNRELATED,
    )

    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    groups = _groups(store)
    ministry = groups["https://ministry.example.fi/tiedote/tukiohjelma"][1]
    assert ministry is not None
    assert groups["https://agency.example.fi/uutiset/tukiohjelma"][1] == ministry
    assert groups["https://agency.example.fi/uutiset/uimahalli"][1] is None


def test_same_source_not_duplicate(store: Store) -> None:
    _add(
        store, "agency-fi", "https://agency.example.fi/uutiset/1", "Uusi tukiohjelma", ANNOUNCEMENT
    )
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/uutiset/2",
        "Uusi tukiohjelma",
        ANNOUNCEMENT + " Lisätietoja.",
    )

    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    assert {duplicate for _, duplicate in _groups(store).values()} == {None}


def test_duplicate_outside_window_not_grouped(store: Store) -> None:
    add_raw(
        store,
        RawItem(
            source_id="ministry-fi",
            guid="m1",
            url="https://ministry.example.fi/m1",
            title="Tukiohjelma",
            body_html=f"<p>{ANNOUNCEMENT}</p>",
        ),
        fetched_at=FETCHED_AT - timedelta(days=60),
    )
    _add(store, "agency-fi", "https://agency.example.fi/a1", "Tukiohjelma", ANNOUNCEMENT)

    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    assert {duplicate for _, duplicate in _groups(store).values()} == {None}


def test_group_id_kept_when_member_joins(store: Store) -> None:
    _add(
        store,
        "ministry-fi",
        "https://ministry.example.fi/t",
        "Uusi tukiohjelma yrityksille",
        ANNOUNCEMENT,
    )
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/t",
        "Uusi tukiohjelma yrityksille",
        ANNOUNCEMENT,
    )
    normalise_pending(store, CATALOG, SETTINGS, now=NOW)
    first_group = _groups(store)["https://ministry.example.fi/t"][1]

    _add(
        store, "city-se", "https://city.example.se/t", "Uusi tukiohjelma yrityksille", ANNOUNCEMENT
    )
    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    assert {duplicate for _, duplicate in _groups(store).values()} == {first_group}


def test_duplicate_found_across_batches(store: Store) -> None:
    _add(store, "ministry-fi", "https://ministry.example.fi/b", "Tukiohjelma", ANNOUNCEMENT)
    edited = ANNOUNCEMENT.replace("Valtioneuvosto on päättänyt", "Ministeriö tiedottaa")
    _add(store, "agency-fi", "https://agency.example.fi/b", "Tukiohjelma", edited)

    normalise_pending(store, CATALOG, SETTINGS, now=NOW, batch_size=1)

    groups = _groups(store)
    assert groups["https://ministry.example.fi/b"][1] is not None
    assert groups["https://agency.example.fi/b"][1] == groups["https://ministry.example.fi/b"][1]


def test_alternate_named_across_batches(store: Store) -> None:
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/tiedote/vaalit",
        "Vaalit",
        "Ennakkoäänestys alkaa.",
        alternates={"sv": "https://agency.example.fi/meddelande/val"},
    )
    _add(
        store,
        "agency-fi",
        "https://agency.example.fi/meddelande/val",
        "Val",
        "Förhandsröstningen börjar.",
    )

    normalise_pending(store, CATALOG, SETTINGS, now=NOW, batch_size=1)

    groups = _groups(store)
    assert groups["https://agency.example.fi/tiedote/vaalit"][0] is not None
    assert (
        groups["https://agency.example.fi/meddelande/val"][0]
        == groups["https://agency.example.fi/tiedote/vaalit"][0]
    )


def test_update_of_old_notice_finds_old_duplicate(store: Store) -> None:
    for source, guid, days, body in (
        ("ministry-fi", "m-old", 60, ANNOUNCEMENT),
        ("agency-fi", "a-old", 55, UNRELATED),
    ):
        add_raw(
            store,
            RawItem(
                source_id=source,
                guid=guid,
                url=f"https://{source}.example.fi/{guid}",
                title="Tiedote",
                body_html=f"<p>{body}</p>",
            ),
            fetched_at=FETCHED_AT - timedelta(days=days),
        )
    normalise_pending(store, CATALOG, SETTINGS, now=NOW)
    assert {duplicate for _, duplicate in _groups(store).values()} == {None}

    # The new notice makes the index read the window around now first; the update of the old
    # notice then needs the range two months back.
    _add(store, "city-se", "https://city.example.se/ny", "Nytt", "Simhallen är stängd i april.")
    add_raw(
        store,
        RawItem(
            source_id="agency-fi",
            guid="a-old",
            url="https://agency-fi.example.fi/a-old",
            title="Tiedote",
            body_html=f"<p>{ANNOUNCEMENT}</p>",
        ),
    )
    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    groups = _groups(store)
    assert groups["https://ministry-fi.example.fi/m-old"][1] is not None
    assert (
        groups["https://agency-fi.example.fi/a-old"][1]
        == groups["https://ministry-fi.example.fi/m-old"][1]
    )
    assert groups["https://city.example.se/ny"][1] is None


SYLLABLES = ("ka", "lo", "mi", "ne", "pu", "ra", "si", "tu", "va", "ke", "jo", "hä", "ly", "rö")


def _near_duplicate_pairs(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """Return `count` generated texts, each with a copy that has a few words replaced, dropped or added."""
    generator = random.Random(seed)
    vocabulary = sorted(
        {"".join(generator.choices(SYLLABLES, k=generator.randint(2, 4))) for _ in range(600)}
    )
    pairs = []
    for _ in range(count):
        words = generator.choices(vocabulary, k=generator.randint(40, 80))
        edited = list(words)
        for _ in range(generator.randint(1, 4)):
            position = generator.randrange(len(edited))
            action = generator.choice(("replace", "drop", "add"))
            if action == "replace":
                edited[position] = generator.choice(vocabulary)
            elif action == "drop":
                del edited[position]
            else:
                edited.insert(position, generator.choice(vocabulary))
        pairs.append((" ".join(words), " ".join(edited)))
    return pairs


def test_generated_pairs_similar() -> None:
    for original, edited in _near_duplicate_pairs(50):
        assert jaccard(word_shingles(original), word_shingles(edited)) >= MIN_JACCARD, edited


def test_min_hashes_shared_by_pairs() -> None:
    for original, edited in _near_duplicate_pairs(50):
        assert set(min_hashes(original)) & set(min_hashes(edited)), edited


def test_min_hashes_of_empty_text() -> None:
    assert min_hashes("") == ()


def test_near_duplicate_pairs_grouped(store: Store) -> None:
    pairs = _near_duplicate_pairs(50)
    for number, (original, edited) in enumerate(pairs):
        _add(store, "ministry-fi", f"https://ministry.example.fi/n/{number}", f"Tiedote {number}", original)
        _add(store, "agency-fi", f"https://agency.example.fi/n/{number}", f"Tiedote {number}", edited)

    normalise_pending(store, CATALOG, SETTINGS, now=NOW)

    groups = _groups(store)
    for number in range(len(pairs)):
        ministry = groups[f"https://ministry.example.fi/n/{number}"][1]
        assert ministry is not None, number
        assert groups[f"https://agency.example.fi/n/{number}"][1] == ministry, number
    assert len({groups[f"https://ministry.example.fi/n/{n}"][1] for n in range(len(pairs))}) == len(pairs)
