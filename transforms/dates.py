"""Reading the date strings that authorities print, as exact UTC instants.

Sources write RFC 822 (`Wed, 04 Mar 2026 10:15:00 +0200`), ISO 8601 (`2026-03-04T10:15:00`) and
local forms in Finnish, Swedish, Estonian, Latvian, English and Russian (`4.12.2026 klo 10.15`,
`4 december 2026`, `2026. gada 4. decembrī`, `4 декабря 2026`, `Maj 19, 2017 16:10 CEST`). RFC 822
strings also appear with local weekday and month names (`ke, 04 maalis 2026 ...`).

Rules:
- Numeric dates are always day first (`04.03.2026` is 4 March), as in all four countries.
- A value without an offset or zone name is read in the source's zone, daylight saving included.
  In the autumn hour that occurs twice, the first (summer time) occurrence is taken. A time in the
  spring gap is read with the offset in force before the change, so `03:30` becomes `04:30` local.
- A value without a time keeps DATE precision; its instant is local midnight of that day.
- Values before 1990 or more than `MAX_FUTURE` after `now` are rejected: `parse_date` returns None
  and logs the reason, because such a value is a typo or a placeholder, not a publication time.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from noticeboard.models import DatePrecision, ParsedDate

logger = logging.getLogger(__name__)

MIN_YEAR = 1990
MAX_FUTURE = timedelta(days=2)
MAX_INPUT_CHARS = 200

# Month name prefixes in the six languages. A word is a month when it starts with one of these,
# and the longest matching prefix wins, so `marraskuuta` (fi, November) is not read as `mar`.
# Prefixes cover nominative, genitive, partitive, locative and abbreviated forms alike.
_MONTH_PREFIXES: dict[str, int] = {
    # English, Swedish, Estonian, Latvian (abbreviations shared by several of them).
    "jan": 1,
    "jaan": 1,
    "feb": 2,
    "veeb": 2,
    "mar": 3,
    "mär": 3,
    "apr": 4,
    "may": 5,
    "maj": 5,
    "mai": 5,
    "jun": 6,
    "juun": 6,
    "jūn": 6,
    "jul": 7,
    "juul": 7,
    "jūl": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "okt": 10,
    "nov": 11,
    "dec": 12,
    "dets": 12,
    # Finnish: tammikuu, tammikuuta, tammik. ...
    "tammi": 1,
    "helmi": 2,
    "maalis": 3,
    "huhti": 4,
    "touko": 5,
    "kesä": 6,
    "heinä": 7,
    "elo": 8,
    "syys": 9,
    "loka": 10,
    "marras": 11,
    "joulu": 12,
    # Russian: январь, января, янв. ...
    "янв": 1,
    "фев": 2,
    "мар": 3,
    "апр": 4,
    "май": 5,
    "мая": 5,
    "мае": 5,
    "июн": 6,
    "июл": 7,
    "авг": 8,
    "сен": 9,
    "окт": 10,
    "ноя": 11,
    "дек": 12,
}
_MONTH_PREFIXES_BY_LENGTH = sorted(_MONTH_PREFIXES.items(), key=lambda item: -len(item[0]))

# Zone names that sources print after a time. US names are those of RFC 822, section 5.
_ZONE_OFFSETS: dict[str, int] = {
    "z": 0,
    "ut": 0,
    "utc": 0,
    "gmt": 0,
    "wet": 0,
    "west": 60,
    "bst": 60,
    "cet": 60,
    "cest": 120,
    "met": 60,
    "mest": 120,
    "eet": 120,
    "eest": 180,
    "msk": 180,
    "est": -300,
    "edt": -240,
    "cst": -360,
    "cdt": -300,
    "mst": -420,
    "mdt": -360,
    "pst": -480,
    "pdt": -420,
}

_OFFSET = re.compile(r"(?:(?<=\s)|(?<=:\d\d))([+-])(\d{2}):?(\d{2})(?!\d)")
# ISO 8601 also allows an offset of whole hours (`10:15:00+02`). It is accepted only right after a
# time, because elsewhere `-12` is more likely part of a range or a number.
_HOUR_OFFSET = re.compile(r"(?<=:\d\d)([+-])(\d{2})()(?![\d:])")
_WORD = re.compile(r"[^\W\d_]+")
_ISO_T = re.compile(r"(?<=\d)t(?=\d)")
_FRACTION = re.compile(r"(?<=:\d\d)[.,]\d{1,9}")
_TIME = re.compile(
    r"(?<![\d.:])(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:[.,]\d{1,9})?)?(?![\d:])\s*(am|pm)?"
)
_MONTH_MARK = "#"

# Date layouts over the prepared text, where month names are replaced by `#<number>`. Every month
# mark ends with `(?!\d)`, so `#12 2026` (a month and year, no day) is not read as 2 January.
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(?P<y>\d{4})[./-](?P<m>\d{1,2})[./-](?P<d>\d{1,2})(?!\d)\.?"),
    re.compile(r"(?<![\d.])(?P<d>\d{1,2})[./-](?P<m>\d{1,2})[./-](?P<y>\d{4})(?!\d)\.?"),
    re.compile(r"(?<!\d)(?P<y>\d{4})\.?\s+(?P<d>\d{1,2})[\s.]*#(?P<m>\d{1,2})(?!\d)"),
    re.compile(r"(?<!\d)(?P<d>\d{1,2})[\s.-]*#(?P<m>\d{1,2})(?!\d)[\s.-]*(?P<y>\d{4})(?!\d)"),
    re.compile(r"#(?P<m>\d{1,2})(?!\d)[\s.]*(?P<d>\d{1,2})[\s.]+(?P<y>\d{4})(?!\d)"),
    re.compile(r"(?<!\d)(?P<y>\d{4})[\s.]*#(?P<m>\d{1,2})(?!\d)[\s.]*(?P<d>\d{1,2})(?!\d)"),
)


def parse_date(
    raw: str | None,
    zone: str,
    *,
    languages: tuple[str, ...] = (),
    now: datetime | None = None,
) -> ParsedDate | None:
    """Parse a printed date into a UTC instant with its precision and provenance.

    `zone` is the IANA zone of the source, used when the value names no offset. Month names of all
    six supported languages are recognised whatever `languages` holds, because none of their
    prefixes collide. Other words (weekdays, `klo`, `kell`, `gada`) are ignored.
    Returns None for a missing, unreadable or out-of-range value and never raises.
    """
    result, reason = parse_date_with_reason(raw, zone, languages=languages, now=now)
    if result is None and reason.startswith("rejected"):
        logger.warning("date_rejected raw=%r zone=%s reason=%s", raw, zone, reason)
    elif result is None and raw:
        logger.debug("date_unparsed raw=%r zone=%s reason=%s", raw, zone, reason)
    return result


def parse_date_with_reason(
    raw: str | None,
    zone: str,
    *,
    languages: tuple[str, ...] = (),
    now: datetime | None = None,
) -> tuple[ParsedDate | None, str]:
    """Parse like `parse_date` and also return why a value gave None (empty when it parsed)."""
    del languages  # every table is tried; see parse_date
    try:
        return _parse(raw, zone, now)
    except Exception as error:  # noqa: BLE001 (the contract is to never raise on any input)
        return None, f"unreadable: {type(error).__name__}: {error}"


def _parse(raw: str | None, zone: str, now: datetime | None) -> tuple[ParsedDate | None, str]:
    if raw is None or not raw.strip():
        return None, "empty"
    if len(raw) > MAX_INPUT_CHARS:
        return None, f"unreadable: longer than {MAX_INPUT_CHARS} characters"

    text = _prepare(raw)
    text, offset_minutes = _take_zone(text)
    text = _mark_months(text)
    day, rest = _take_date(text)
    if day is None:
        return None, "unreadable: no valid day, month and year found"

    clock, clock_valid = _take_time(rest)
    if not clock_valid:
        return None, "unreadable: the time is out of range"

    try:
        source_zone = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"unreadable: {zone!r} is not an IANA time zone"

    instant, precision, zone_assumed = _to_instant(day, clock, offset_minutes, source_zone, raw)
    reason = _range_problem(day, instant, now)
    if reason:
        return None, reason
    return ParsedDate(instant=instant, precision=precision, zone_assumed=zone_assumed, raw=raw), ""


def _prepare(raw: str) -> str:
    text = unicodedata.normalize("NFC", raw).casefold()
    text = text.replace("\u00a0", " ").replace("\u202f", " ")
    text = _ISO_T.sub(" ", text)
    text = _FRACTION.sub("", text)
    text = text.replace(",", " ")
    return " " + re.sub(r"\s+", " ", text).strip() + " "


def _take_zone(text: str) -> tuple[str, int | None]:
    """Remove the offset or zone name from `text` and return it in minutes east of UTC."""
    match = _OFFSET.search(text) or _HOUR_OFFSET.search(text)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        if hours <= 14 and minutes < 60:
            text = text[: match.start()] + " " + text[match.end() :]
            return _drop_zone_names(text)[0], sign * (hours * 60 + minutes)

    return _drop_zone_names(text)


def _drop_zone_names(text: str) -> tuple[str, int | None]:
    found: int | None = None
    for match in reversed(list(_WORD.finditer(text))):
        name = match.group(0)
        if name in _ZONE_OFFSETS:
            if found is None:
                found = _ZONE_OFFSETS[name]
            text = text[: match.start()] + " " + text[match.end() :]
    return text, found


def _mark_months(text: str) -> str:
    """Replace month names with `#<number>` and drop every other word (weekdays, `klo`, `gada`).

    When a label such as `julkaistu` also looks like a month, the date layouts still pick the
    month name that sits between the day and the year.
    """
    pieces: list[str] = []
    position = 0
    for match in _WORD.finditer(text):
        pieces.append(text[position : match.start()])
        month = _month_number(match.group(0))
        if month is not None:
            pieces.append(f" {_MONTH_MARK}{month} ")
        elif match.group(0) in ("am", "pm"):
            pieces.append(match.group(0))
        else:
            pieces.append(" ")
        position = match.end()
    pieces.append(text[position:])
    return re.sub(r"\s+", " ", "".join(pieces))


def _month_number(word: str) -> int | None:
    for prefix, month in _MONTH_PREFIXES_BY_LENGTH:
        if word.startswith(prefix) and len(word) <= len(prefix) + 8:
            return month
    return None


def _take_date(text: str) -> tuple[date | None, str]:
    for pattern in _DATE_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        try:
            day = date(int(match.group("y")), int(match.group("m")), int(match.group("d")))
        except ValueError:
            return None, text
        return day, text[: match.start()] + " " + text[match.end() :]
    return None, text


def _take_time(rest: str) -> tuple[time | None, bool]:
    """Return the first clock time in `rest` (None when there is none) and whether it is valid."""
    match = _TIME.search(rest)
    if not match:
        return None, True

    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3) or 0)
    meridiem = match.group(4)
    if meridiem and 1 <= hour <= 12:
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    if hour == 24 and minute == 0 and second == 0:
        hour = 0  # NOTE: `24:00` is read as the start of the same day, not the next one.
    if hour > 23 or minute > 59 or second > 60:
        return None, False
    return time(hour, minute, min(second, 59)), True


def _to_instant(
    day: date,
    clock: time | None,
    offset_minutes: int | None,
    source_zone: ZoneInfo,
    raw: str,
) -> tuple[datetime, DatePrecision, bool]:
    precision = DatePrecision.DATETIME if clock is not None else DatePrecision.DATE
    wall = datetime.combine(day, clock or time(0, 0))

    if offset_minutes is not None and clock is not None:
        given: tzinfo = timezone(timedelta(minutes=offset_minutes))
        return wall.replace(tzinfo=given).astimezone(UTC), precision, False

    local = wall.replace(tzinfo=source_zone, fold=0)
    _log_unusual_local_time(local, raw)
    return local.astimezone(UTC), precision, True


def _log_unusual_local_time(local: datetime, raw: str) -> None:
    first = local.utcoffset()
    second = local.replace(fold=1).utcoffset()
    if first == second:
        return

    round_trip = local.astimezone(UTC).astimezone(local.tzinfo)
    kind = (
        "ambiguous"
        if round_trip.replace(tzinfo=None) == local.replace(tzinfo=None)
        else "nonexistent"
    )
    logger.info("date_local_time_%s raw=%r zone=%s offset=%s", kind, raw, local.tzinfo, first)


def _range_problem(day: date, instant: datetime, now: datetime | None) -> str:
    if day.year < MIN_YEAR:
        return f"rejected: before {MIN_YEAR}"
    reference = now or datetime.now(UTC)
    if reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    if instant > reference + MAX_FUTURE:
        return f"rejected: more than {MAX_FUTURE.days} days after {reference.isoformat()}"
    return ""
