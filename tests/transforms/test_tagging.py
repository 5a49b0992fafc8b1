"""Unit tests of region and topic tagging."""

from __future__ import annotations

from pathlib import Path

import pytest

import transforms.tagging
from noticeboard.catalog import Source
from noticeboard.errors import ConfigError
from noticeboard.models import Tag
from transforms._topics import TOPIC_SLUGS
from transforms.tagging import (
    load_regions,
    load_topics,
    region_parents,
    tag_notice,
    validate_region_codes,
)


def make_source(
    country: str = "FI",
    regions: tuple[str, ...] = (),
    languages: tuple[str, ...] = ("fi",),
    topic_hints: tuple[str, ...] = (),
) -> Source:
    return Source(
        id="test-source",
        authority="Test authority",
        country=country,
        regions=regions or (country,),
        languages=languages,
        timezone="UTC",
        kind="rss",
        urls=("https://example.org/feed",),
        topic_hints=topic_hints,
    )


def values(tags: list[Tag], kind: str) -> set[str]:
    return {tag.value for tag in tags if tag.kind == kind}


def tag_by_value(tags: list[Tag], value: str) -> Tag:
    return next(tag for tag in tags if tag.value == value)


# Regions

INFLECTED_PLACES = [
    ("fi", "FI", "Tapahtuma Helsingissä", "FI-helsinki"),
    ("fi", "FI", "Muutto Helsingistä", "FI-helsinki"),
    ("fi", "FI", "Lisää junia Helsinkiin", "FI-helsinki"),
    ("fi", "FI", "Helsingin kaupunki tiedottaa", "FI-helsinki"),
    ("fi", "FI", "Uusi koulu Espoossa", "FI-espoo"),
    ("fi", "FI", "Kirjasto Turussa", "FI-turku"),
    ("fi", "FI", "Turun satama", "FI-turku"),
    ("fi", "FI", "Bussi Turkuun", "FI-turku"),
    ("fi", "FI", "Palvelupiste Lahdessa", "FI-lahti"),
    ("fi", "FI", "Myrsky Kanta-Hämeessä", "FI-06"),
    ("et", "EE", "Teenindus Tallinnas", "EE-tallinn"),
    ("et", "EE", "Tallinna linn teatab", "EE-tallinn"),
    ("et", "EE", "Rong Tallinnast", "EE-tallinn"),
    ("et", "EE", "Kontsert Tartus", "EE-tartu"),
    ("et", "EE", "Buss Tartust", "EE-tartu"),
    ("et", "EE", "Tartu ülikool", "EE-tartu"),
    ("lv", "LV", "Jauna skola Rīgā", "LV-RIX"),
    ("lv", "LV", "Rīgas dome informē", "LV-RIX"),
    ("lv", "LV", "Koncerts Rigā", "LV-RIX"),
    ("lv", "LV", "Rīga svin", "LV-RIX"),
    ("lv", "LV", "Nodaļa Ventspilī", "LV-ventspils"),
    ("lv", "LV", "Darbs Cēsīs", "LV-cesis"),
    ("sv", "SE", "Stockholms stad informerar", "SE-stockholm"),
    ("sv", "SE", "Uppsalas nya simhall", "SE-uppsala"),
    ("sv", "FI", "Evenemang i Helsingfors", "FI-helsinki"),
    ("ru", "FI", "Новости Хельсинки", "FI-helsinki"),
    ("ru", "EE", "Бюро в Таллине", "EE-tallinn"),
    ("ru", "EE", "Жители Таллина", "EE-tallinn"),
    ("ru", "LV", "Концерт в Риге", "LV-RIX"),
    ("ru", "LV", "Жители Риги", "LV-RIX"),
    ("en", "LV", "Storm warning for Riga", "LV-RIX"),
]


@pytest.mark.parametrize(("language", "country", "title", "expected"), INFLECTED_PLACES)
def test_place_inflected(language: str, country: str, title: str, expected: str) -> None:
    tags = tag_notice(title, "", language, make_source(country, languages=(language,)))

    assert expected in values(tags, "region")


def test_place_without_diacritics() -> None:
    tags = tag_notice("Uusi asema Jarvenpaassa", "", "fi", make_source())

    assert "FI-jarvenpaa" in values(tags, "region")


def test_place_rule_and_detail() -> None:
    tags = tag_notice("Uusi koulu Espoossa", "", "fi", make_source())

    assert tag_by_value(tags, "FI-espoo") == Tag("region", "FI-espoo", "place-name", "Espoossa")


def test_place_longest_name_wins() -> None:
    tags = tag_notice("Beslut i Stockholms län", "", "sv", make_source("SE", languages=("sv",)))

    assert "SE-AB" in values(tags, "region")
    assert "SE-stockholm" not in values(tags, "region")


def test_place_multiword_county() -> None:
    tags = tag_notice(
        "Tartu maakonnas", "Uudised Ida-Virumaal.", "et", make_source("EE", languages=("et",))
    )

    assert "EE-45" in values(tags, "region")


def test_place_other_country() -> None:
    tags = tag_notice("Muutto Ruotsiin", "", "fi", make_source())

    assert "SE" in values(tags, "region")


def test_source_default_regions() -> None:
    source = make_source(regions=("FI-turku",))

    tags = tag_notice("Tiedote", "", "fi", source)

    assert tag_by_value(tags, "FI-turku") == Tag(
        "region", "FI-turku", "source-default", "test-source"
    )


def test_implied_parents() -> None:
    tags = tag_notice("Uusi koulu Espoossa", "", "fi", make_source("SE", languages=("fi",)))

    assert tag_by_value(tags, "FI-18") == Tag("region", "FI-18", "implied-parent", "FI-espoo")
    assert tag_by_value(tags, "FI").rule == "implied-parent"


def test_region_parents_municipality() -> None:
    assert region_parents("LV-jurmala") == ["LV-PIERIGA", "LV"]


def test_region_parents_country() -> None:
    assert region_parents("EE") == []


def test_region_parents_unknown() -> None:
    with pytest.raises(KeyError, match="XX-nowhere"):
        region_parents("XX-nowhere")


def test_validate_region_codes_accepts_known() -> None:
    validate_region_codes(["FI", "SE-AB", "EE-tallinn", "LV-RIX"])


def test_validate_region_codes_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="FI-05, FI-helsingfors"):
        validate_region_codes(["FI", "FI-helsingfors", "FI-05"])


def test_vocabulary_covers_countries() -> None:
    regions = load_regions().regions

    for country in ("FI", "SE", "EE", "LV"):
        assert regions[country].kind == "country"


def test_vocabulary_every_estonian_county() -> None:
    counties = [
        r for r in load_regions().regions.values() if r.parent == "EE" and r.kind == "subdivision"
    ]

    assert len(counties) == 15


REQUIRED_SUBDIVISIONS = [
    "FI-01",
    "FI-06",
    "FI-09",
    "FI-16",
    "FI-17",
    "FI-18",
    "FI-19",
    "SE-AB",
    "SE-C",
    "SE-D",
    "SE-E",
    "SE-I",
    "SE-X",
    "LV-RIX",
    "LV-PIERIGA",
    "LV-KURZEME",
    "LV-VIDZEME",
    "LV-ZEMGALE",
]
COUNTRY_LANGUAGES = {"FI": "fi", "SE": "sv", "EE": "et", "LV": "lv"}


@pytest.mark.parametrize("code", REQUIRED_SUBDIVISIONS)
def test_vocabulary_required_subdivision(code: str) -> None:
    region = load_regions().regions[code]

    assert region.kind == "subdivision"
    assert region.parent == code[:2]


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "topics: 3\n", "regions: []\n"])
def test_malformed_vocabulary_rejected(text: str, tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match="vocabulary"):
        load_topics(path)
    with pytest.raises(ConfigError, match="vocabulary"):
        load_regions(path)


def test_vocabulary_names_in_three_languages() -> None:
    regions = load_regions().regions
    missing = []
    for code, region in regions.items():
        country = code[:2]
        for language in ("en", "ru", COUNTRY_LANGUAGES[country]):
            if not region.names.get(language):
                missing.append(f"{code}:{language}")

    assert missing == []


# False-hit guards

FALSE_HITS = [
    ("fi", "FI", "Kahvilan porina täytti salin", "FI-pori"),
    ("fi", "FI", "Retki salon poluille", "FI-salo"),
    ("fi", "FI", "Kotka ja haukka nähtiin lahden rannalla", "FI-kotka"),
    ("fi", "FI", "Lahti jäätyi, kotka lensi yli", "FI-lahti"),
    ("en", "LV", "Ogre costume party at the library", "LV-ogre"),
    ("en", "LV", "The ogre stories for children", "LV-ogre"),
    ("en", "LV", "Ogres and trolls at the museum", "LV-ogre"),
    ("lv", "LV", "Viņš lūdza palīdzību", "LV-ludza"),
    ("lv", "LV", "Tāls ceļš uz mājām", "LV-talsi"),
    ("lv", "LV", "Saldus ābolus dalīja bērniem", "LV-saldus"),
    ("et", "EE", "Valga värvi piim ja rapla", "EE-valga"),
    ("et", "EE", "Võru on ümmargune", "EE-voru"),
    ("fi", "FI", "Lisätietoja osoitteessa www.espoo.fi/palvelut", "FI-espoo"),
    ("en", "FI", "See https://www.hel.fi/helsinki/en for details", "FI-helsinki"),
    ("fi", "FI", "Turkulainen yritys palkittiin", "FI-turku"),
]


@pytest.mark.parametrize(("language", "country", "title", "unexpected"), FALSE_HITS)
def test_place_false_hit_guard(language: str, country: str, title: str, unexpected: str) -> None:
    tags = tag_notice(title, "", language, make_source(country, languages=(language,)))

    assert unexpected not in values(tags, "region")


GUARDED_HITS = [
    ("fi", "FI", "Palvelupiste Porissa suljetaan", "FI-pori"),
    ("fi", "FI", "Uusi terveysasema Salossa", "FI-salo"),
    ("fi", "FI", "Satama Kotkassa laajenee", "FI-kotka"),
    ("lv", "LV", "Ogrē atver bibliotēku", "LV-ogre"),
    ("lv", "LV", "Ogre: jauns parks", "LV-ogre"),
    ("en", "LV", "New library opens in Ogre", "LV-ogre"),
    ("lv", "LV", "Koncerts Ludzā", "LV-ludza"),
    ("et", "EE", "Uus kool Valgas", "EE-valga"),
]


@pytest.mark.parametrize(("language", "country", "title", "expected"), GUARDED_HITS)
def test_place_guarded_name_matches(language: str, country: str, title: str, expected: str) -> None:
    tags = tag_notice(title, "", language, make_source(country, languages=(language,)))

    assert expected in values(tags, "region")


def test_country_name_as_language_name() -> None:
    tags = tag_notice("Ruotsin kielen kurssi", "", "fi", make_source())

    assert "SE" not in values(tags, "region")


# Topics

TOPIC_KEYWORDS = [
    ("fi", "Oleskelulupien käsittelyajat", "residence-permits"),
    ("sv", "Nya regler för uppehållstillstånd", "residence-permits"),
    ("et", "Elamisloa taotlemine", "residence-permits"),
    ("lv", "Uzturēšanās atļaujas pieteikumi", "residence-permits"),
    ("en", "Residence permit fees change", "residence-permits"),
    ("ru", "Продление вида на жительство", "residence-permits"),
    ("fi", "Veroilmoitus on valmis", "taxation"),
    ("sv", "Skatten sänks för pensionärer", "taxation"),
    ("et", "Tulumaksu tagastus", "taxation"),
    ("lv", "Nodokļu atvieglojumi", "taxation"),
    ("en", "Income tax cuts", "taxation"),
    ("ru", "Подоходный налог снижается", "taxation"),
    ("fi", "Päiväkotipaikan haku", "childcare"),
    ("sv", "Förskolan öppnar", "childcare"),
    ("et", "Lasteaiakoha taotlus", "childcare"),
    ("lv", "Bērnudārza rinda", "childcare"),
    ("en", "Daycare fees", "childcare"),
    ("ru", "Места в детском саду", "childcare"),
    ("fi", "Raitiovaunuliikenne muuttuu", "transport"),
    ("sv", "Bussarna går enligt lovtidtabell", "transport"),
    ("et", "Trammiliiklus suletud", "transport"),
    ("lv", "Tramvaja maršruts mainās", "transport"),
    ("en", "Tram line 4 diverted", "transport"),
    ("ru", "Автобус меняет маршрут", "transport"),
    ("fi", "Toimisto suljettu perjantaina", "service-disruption"),
    ("sv", "Kontoret stängt på fredag", "service-disruption"),
    ("et", "Teenindus on suletud", "service-disruption"),
    ("lv", "Birojs slēgts piektdien", "service-disruption"),
    ("en", "Office closed on Friday", "service-disruption"),
    ("ru", "Бюро закрыто в пятницу", "service-disruption"),
    ("fi", "Tartuntatautitilanne on rauhoittunut", "healthcare"),
    ("sv", "Sjukdomsfallen minskar i länet", "healthcare"),
    ("et", "Nakkushaiguste arv kasvab", "healthcare"),
    ("lv", "Slimības gadījumu skaits samazinās", "healthcare"),
    ("en", "Infectious disease cases fall", "healthcare"),
    ("ru", "Число заболеваний снижается", "healthcare"),
    ("sv", "Hyrorna höjs nästa år", "housing"),
    ("lv", "Īri var maksāt internetā", "housing"),
    ("en", "Renting a flat gets cheaper", "housing"),
    ("ru", "Квартплата вырастет в январе", "housing"),
]


@pytest.mark.parametrize(("language", "title", "expected"), TOPIC_KEYWORDS)
def test_topic_keyword(language: str, title: str, expected: str) -> None:
    tags = tag_notice(title, "", language, make_source(languages=(language,)))

    assert expected in values(tags, "topic")


def test_topic_keyword_detail() -> None:
    tags = tag_notice("Toimisto suljettu", "", "fi", make_source())

    assert tag_by_value(tags, "service-disruption") == Tag(
        "topic", "service-disruption", "keyword", "suljettu"
    )


def test_topic_diacritics_required() -> None:
    tags = tag_notice(
        "Uuringu tulemused",
        "Teadlased avaldasid uuringu.",
        "et",
        make_source("EE", languages=("et",)),
    )

    assert "housing" not in values(tags, "topic")


def test_topic_exact_word() -> None:
    tags = tag_notice("Taxi ranks moved", "", "en", make_source(languages=("en",)))

    assert "taxation" not in values(tags, "topic")


def test_topic_compound_infix() -> None:
    tags = tag_notice("Työoleskeluluvat ruuhkautuvat", "", "fi", make_source())

    assert "residence-permits" in values(tags, "topic")


def test_topic_excluded_authority_name() -> None:
    tags = tag_notice("Verohallinto tiedottaa", "", "fi", make_source())

    assert values(tags, "topic") == {"other"}


AUTHORITY_NAMES = [
    ("fi", "Digi- ja väestötietovirasto tiedottaa"),
    ("et", "Politsei- ja Piirivalveameti uus kodulehekülg"),
    ("ru", "Департамент полиции и погранохраны обновил сайт"),
    ("en", "Police and Border Guard Board opens a new website"),
    ("lv", "Pilsonības un migrācijas lietu pārvalde atjauno mājaslapu"),
]


@pytest.mark.parametrize(("language", "title"), AUTHORITY_NAMES)
def test_topic_authority_name_not_topic(language: str, title: str) -> None:
    tags = tag_notice(title, "", language, make_source(languages=(language,)))

    assert values(tags, "topic") == {"other"}


def test_topic_swedish_estimate_not_tax() -> None:
    tags = tag_notice("Vi meddelar en uppskattning av leveranstiden", "", "sv", make_source())

    assert "taxation" not in values(tags, "topic")


def test_topic_fallback_other() -> None:
    tags = tag_notice("Tiedotustilaisuus huomenna", "", "fi", make_source())

    assert tag_by_value(tags, "other") == Tag(
        "topic", "other", "fallback", "no topic keyword matched"
    )


# Source hints


def test_hint_without_keywords() -> None:
    source = make_source(topic_hints=("taxation",))

    tags = tag_notice("Tiedote asiakkaille", "", "fi", source)

    assert tag_by_value(tags, "taxation").rule == "source-hint"
    assert "other" not in values(tags, "topic")


def test_hint_does_not_override_disruption() -> None:
    source = make_source(topic_hints=("taxation",))

    tags = tag_notice("Verotoimistot suljettu juhannusaattona", "", "fi", source)

    assert values(tags, "topic") == {"service-disruption"}


def test_hint_confirmed_by_weak_keyword() -> None:
    source = make_source(topic_hints=("taxation",))

    tags = tag_notice("Palvelu suljettu, palautukset maksetaan ajallaan", "", "fi", source)

    assert values(tags, "topic") == {"service-disruption", "taxation"}
    assert tag_by_value(tags, "taxation").rule == "source-hint"


def test_weak_keyword_alone_ignored() -> None:
    tags = tag_notice("Palvelu suljettu, palautukset maksetaan ajallaan", "", "fi", make_source())

    assert "taxation" not in values(tags, "topic")


def test_unknown_hint_ignored() -> None:
    source = make_source(topic_hints=("weather",))

    tags = tag_notice("Tiedote", "", "fi", source)

    assert values(tags, "topic") == {"other"}


# Output shape


def test_tags_sorted_and_unique() -> None:
    tags = tag_notice(
        "Helsingissä ja Espoossa päiväkoteja suljettu", "Helsinki tiedottaa.", "fi", make_source()
    )
    keys = [(tag.kind, tag.value) for tag in tags]

    assert keys == sorted(set(keys))


def test_tags_deterministic() -> None:
    first = tag_notice(
        "Tallinnas suletud lasteaed", "Tartus ka.", "et", make_source("EE", languages=("et",))
    )
    second = tag_notice(
        "Tallinnas suletud lasteaed", "Tartus ka.", "et", make_source("EE", languages=("et",))
    )

    assert first == second


def test_language_from_source() -> None:
    tags = tag_notice("Bussi Turkuun", "", None, make_source(languages=("fi",)))

    assert "FI-turku" in values(tags, "region")


def test_topic_vocabulary_slugs() -> None:
    assert tuple(load_topics()) == TOPIC_SLUGS


def test_exported_names() -> None:
    assert sorted(transforms.tagging.__all__) == [
        "load_regions",
        "load_topics",
        "region_parents",
        "tag_notice",
        "validate_region_codes",
    ]
