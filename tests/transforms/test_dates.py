"""Date parsing: local forms in six languages, zones, daylight saving, precision and range."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noticeboard.models import DatePrecision
from transforms.dates import parse_date

NOW = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)
HELSINKI = "Europe/Helsinki"
STOCKHOLM = "Europe/Stockholm"
TALLINN = "Europe/Tallinn"
RIGA = "Europe/Riga"

DATETIME = DatePrecision.DATETIME
DATE = DatePrecision.DATE

# (raw, source zone, expected UTC instant, precision, zone assumed)
CASES = [
    # Finnish
    ("4.12.2026 klo 10.15", HELSINKI, "2026-12-04T08:15:00", DATETIME, True),
    ("4.3.2026 10.15", HELSINKI, "2026-03-04T08:15:00", DATETIME, True),
    ("04.03.2026", HELSINKI, "2026-03-03T22:00:00", DATE, True),
    ("13.03.2026", HELSINKI, "2026-03-12T22:00:00", DATE, True),
    ("4. joulukuuta 2026", HELSINKI, "2026-12-03T22:00:00", DATE, True),
    ("Julkaistu 4. kesäkuuta 2026 klo 9.30", HELSINKI, "2026-06-04T06:30:00", DATETIME, True),
    ("ke, 04 maalis 2026 10:15:00 +0200", HELSINKI, "2026-03-04T08:15:00", DATETIME, False),
    ("ti 10. marraskuuta 2026 klo 14.00", HELSINKI, "2026-11-10T12:00:00", DATETIME, True),
    ("14.1.2026 10:44:05 EET", HELSINKI, "2026-01-14T08:44:05", DATETIME, False),
    ("4.9.2023 13.39", HELSINKI, "2023-09-04T10:39:00", DATETIME, True),
    # Swedish
    ("4 december 2026", STOCKHOLM, "2026-12-03T23:00:00", DATE, True),
    ("ons, 04 mar 2026 10:15:00 +0100", STOCKHOLM, "2026-03-04T09:15:00", DATETIME, False),
    ("Maj 19, 2017 16:10 CEST", STOCKHOLM, "2017-05-19T14:10:00", DATETIME, False),
    ("den 4 juni 2026 kl. 10.15", STOCKHOLM, "2026-06-04T08:15:00", DATETIME, True),
    ("4 okt. 2026 08:00", STOCKHOLM, "2026-10-04T06:00:00", DATETIME, True),
    ("2026-02-01 12:00", STOCKHOLM, "2026-02-01T11:00:00", DATETIME, True),
    ("17 augusti 2026", STOCKHOLM, "2026-08-16T22:00:00", DATE, True),
    # Estonian
    ("04.12.2026 kell 10:15", TALLINN, "2026-12-04T08:15:00", DATETIME, True),
    ("K, 04 märts 2026 10:15:00 +0200", TALLINN, "2026-03-04T08:15:00", DATETIME, False),
    ("20.03.2019", TALLINN, "2019-03-19T22:00:00", DATE, True),
    ("4. detsember 2026", TALLINN, "2026-12-03T22:00:00", DATE, True),
    ("12. jaanuaril 2026 kell 9.00", TALLINN, "2026-01-12T07:00:00", DATETIME, True),
    ("1. juuli 2026", TALLINN, "2026-06-30T21:00:00", DATE, True),
    # Latvian
    ("2026. gada 4. decembris", RIGA, "2026-12-03T22:00:00", DATE, True),
    ("2026. gada 4. decembrī plkst. 10:15", RIGA, "2026-12-04T08:15:00", DATETIME, True),
    ("20.04.2023.", RIGA, "2023-04-19T21:00:00", DATE, True),
    ("2026. gada 15. jūnijs", RIGA, "2026-06-14T21:00:00", DATE, True),
    ("Tr, 04 marts 2026 10:15:00 +0200", RIGA, "2026-03-04T08:15:00", DATETIME, False),
    ("04.03.2026. 10:15", RIGA, "2026-03-04T08:15:00", DATETIME, True),
    # English
    ("Wed, 04 Mar 2026 10:15:00 +0200", HELSINKI, "2026-03-04T08:15:00", DATETIME, False),
    ("Wed, 04 Mar 2026 10:15:00", HELSINKI, "2026-03-04T08:15:00", DATETIME, True),
    ("Thu, 28 May 2026 00:55:47 GMT", HELSINKI, "2026-05-28T00:55:47", DATETIME, False),
    ("December 4, 2026 at 2:30 pm", HELSINKI, "2026-12-04T12:30:00", DATETIME, True),
    ("4 December 2026", HELSINKI, "2026-12-03T22:00:00", DATE, True),
    ("Mon, 02 Mar 2026 10:00:00 -0500", HELSINKI, "2026-03-02T15:00:00", DATETIME, False),
    # ISO 8601
    ("2026-03-04T10:15:00", HELSINKI, "2026-03-04T08:15:00", DATETIME, True),
    ("2026-06-10T09:00:00", HELSINKI, "2026-06-10T06:00:00", DATETIME, True),
    ("2026-05-28T00:55:47Z", HELSINKI, "2026-05-28T00:55:47", DATETIME, False),
    ("2026-03-04T10:15:00.250+02:00", HELSINKI, "2026-03-04T08:15:00", DATETIME, False),
    ("2012-02-13", HELSINKI, "2012-02-12T22:00:00", DATE, True),
    ("2026-06-10T09:00:00+02", HELSINKI, "2026-06-10T07:00:00", DATETIME, False),
    ("2026-03-04 10:15:00-05", HELSINKI, "2026-03-04T15:15:00", DATETIME, False),
    # Russian
    ("4 декабря 2026", RIGA, "2026-12-03T22:00:00", DATE, True),
    ("4 марта 2026 г. в 10:15", TALLINN, "2026-03-04T08:15:00", DATETIME, True),
    ("1 мая 2026 года", RIGA, "2026-04-30T21:00:00", DATE, True),
    ("15 сентября 2026 г., 18:30", RIGA, "2026-09-15T15:30:00", DATETIME, True),
    # Daylight saving edges (Helsinki: 29 March 2026 03:00 -> 04:00, 25 October 04:00 -> 03:00).
    ("29.3.2026 02.59", HELSINKI, "2026-03-29T00:59:00", DATETIME, True),
    ("29.3.2026 04.00", HELSINKI, "2026-03-29T01:00:00", DATETIME, True),
    ("29.3.2026 03.30", HELSINKI, "2026-03-29T01:30:00", DATETIME, True),
    ("25.10.2026 03.30", HELSINKI, "2026-10-25T00:30:00", DATETIME, True),
    ("25.10.2026 04.30", HELSINKI, "2026-10-25T02:30:00", DATETIME, True),
    ("29.3.2026 02.30", STOCKHOLM, "2026-03-29T01:30:00", DATETIME, True),
    ("29.3.2026 01.59", STOCKHOLM, "2026-03-29T00:59:00", DATETIME, True),
]


@pytest.mark.parametrize(("raw", "zone", "expected", "precision", "assumed"), CASES)
def test_parse_date_exact(
    raw: str, zone: str, expected: str, precision: DatePrecision, assumed: bool
) -> None:
    parsed = parse_date(raw, zone, now=NOW)

    assert parsed is not None
    assert parsed.instant == datetime.fromisoformat(expected).replace(tzinfo=UTC)
    assert parsed.precision is precision
    assert parsed.zone_assumed is assumed
    assert parsed.raw == raw


def test_instant_is_utc() -> None:
    parsed = parse_date("4.12.2026 klo 10.15", HELSINKI, now=NOW)

    assert parsed is not None
    assert parsed.instant.utcoffset() == datetime.now(UTC).utcoffset()


def test_day_first_sorts_correctly() -> None:
    dates = [
        parse_date(raw, HELSINKI, now=NOW) for raw in ("04.03.2026", "4.3.2026 10.15", "13.03.2026")
    ]

    assert all(parsed is not None for parsed in dates)
    assert dates[0].instant < dates[2].instant  # type: ignore[union-attr]
    assert dates[1].instant < dates[2].instant  # type: ignore[union-attr]


@pytest.mark.parametrize("raw", ["31.12.1989", "1985-06-01T10:00:00Z", "1 January 1970"])
def test_before_1990_rejected(raw: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="transforms.dates"):
        assert parse_date(raw, HELSINKI, now=NOW) is None
    assert "before 1990" in caplog.text


def test_first_day_of_1990_kept() -> None:
    assert parse_date("1.1.1990", HELSINKI, now=NOW) is not None


def test_far_future_rejected(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="transforms.dates"):
        assert parse_date("1.1.2027", HELSINKI, now=NOW) is None
    assert "date_rejected" in caplog.text


def test_near_future_kept() -> None:
    assert parse_date("21.12.2026 klo 18.00", HELSINKI, now=NOW) is not None


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "tomorrow",
        "4.12.",
        "31.02.2026",
        "32.1.2026",
        "4.12.2026 klo 25.00",
        "12/2026",
        "December 2026",
        "joulukuu 2026",
        "2026. gada decembris",
        "2026 december",
        "x" * 500,
    ],
)
def test_unreadable_gives_none(raw: str | None) -> None:
    assert parse_date(raw, HELSINKI, now=NOW) is None


def test_unknown_zone_gives_none() -> None:
    assert parse_date("4.12.2026", "Mars/Olympus", now=NOW) is None


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=80), st.sampled_from([HELSINKI, STOCKHOLM, TALLINN, RIGA, "", "Nowhere/None"])
)
def test_parse_never_raises(raw: str, zone: str) -> None:
    parse_date(raw, zone, now=NOW)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1990, 1, 2), max_value=datetime(2026, 12, 18)),
    st.sampled_from([HELSINKI, STOCKHOLM, TALLINN, RIGA]),
)
def test_day_first_round_trip(moment: datetime, zone: str) -> None:
    raw = f"{moment.day}.{moment.month}.{moment.year} {moment.hour:02d}:{moment.minute:02d}"

    parsed = parse_date(raw, zone, now=NOW)

    assert parsed is not None
    local = parsed.instant.astimezone(ZoneInfo(zone))
    assert local.date() == moment.date()


def _pub_dates(path) -> list[str]:  # type: ignore[no-untyped-def]
    import re

    return re.findall(r"<pubDate>([^<]+)</pubDate>", path.read_text(encoding="utf-8"))


def test_field_local_names(cases_dir) -> None:  # type: ignore[no-untyped-def]
    zones = [HELSINKI, STOCKHOLM, TALLINN]
    expected = ["2026-03-04T08:15:00", "2026-03-04T09:15:00", "2026-03-04T08:15:00"]

    parsed = [
        parse_date(raw, zone, now=NOW)
        for raw, zone in zip(_pub_dates(cases_dir / "BR-06.xml"), zones, strict=True)
    ]

    assert [
        value.instant.replace(tzinfo=None).isoformat() if value else None for value in parsed
    ] == expected


def test_field_zone_less(cases_dir) -> None:  # type: ignore[no-untyped-def]
    parsed = [parse_date(raw, HELSINKI, now=NOW) for raw in _pub_dates(cases_dir / "BR-07.xml")]

    assert [
        value.instant.replace(tzinfo=None).isoformat() if value else None for value in parsed
    ] == [
        "2026-03-04T08:15:00",
        "2026-06-10T06:00:00",
        "2026-03-04T08:15:00",
    ]
    assert all(value is not None and value.zone_assumed for value in parsed)


def test_field_day_first(cases_dir) -> None:  # type: ignore[no-untyped-def]
    import re

    page = (cases_dir / "BR-08.html").read_text(encoding="utf-8")
    raws = re.findall(r'<span class="date">([^<]+)</span>', page)

    parsed = [parse_date(raw, HELSINKI, now=NOW) for raw in raws]

    assert [
        (value.instant.isoformat(), value.precision) if value else None for value in parsed
    ] == [
        ("2026-03-03T22:00:00+00:00", DATE),
        ("2026-03-04T08:15:00+00:00", DATETIME),
        ("2026-03-12T22:00:00+00:00", DATE),
    ]
