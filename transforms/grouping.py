"""Grouping language versions of one notice, and near-duplicates across sources.

Language variants share `Notice.variant_group`. Two notices are variants when they carry the same
stable guid (across feeds or sources), when one lists the other as an hreflang alternate, or
when their URLs differ only in a language path segment (`/fi/...` and `/sv/...`).

Near-duplicates share `Notice.duplicate_group`: notices of different sources with equal content
hashes, or whose word 2-gram sets have a Jaccard similarity of at least `MIN_JACCARD`. SimHash
(64 bits over the same 2-grams, stored in `Notice.simhash`) picks the candidates. Only pairs within
`PREFILTER_MAX_DISTANCE` bits are compared exactly, because on notices of a few dozen words a
small edit moved SimHash by 6 to 12 bits in the tests, while unrelated texts differ by about 32.
Only notices first seen within `DUPLICATE_WINDOW` of each other are compared.

A group id is the id of a member notice and never changes for the members that had it: a newcomer
adopts the id of the existing group, and when two groups meet, the group whose oldest member was
seen first keeps its id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import String, cast, or_, select, update
from sqlalchemy.orm import Session

from noticeboard.store.tables import Notice
from transforms.identity import canonical_url, material_text, stable_guid

logger = logging.getLogger(__name__)

SIMHASH_BITS = 64
SHINGLE_WORDS = 2
MIN_WORDS_FOR_DUPLICATES = 12
PREFILTER_MAX_DISTANCE = 18
MIN_JACCARD = 0.5
DUPLICATE_WINDOW = timedelta(days=14)
LANGUAGE_SEGMENTS = ("fi", "sv", "en", "et", "lv", "ru", "se", "smn", "sms", "lt", "de")
_WORDS = re.compile(r"\w+")


def simhash(text: str) -> int:
    """Return the 64-bit SimHash of `text` over case-folded word 2-grams (Charikar, 2002)."""
    shingles = word_shingles(text)
    if not shingles:
        return 0

    weights = [0] * SIMHASH_BITS
    for shingle in shingles:
        value = int.from_bytes(
            hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest(), "big"
        )
        for bit in range(SIMHASH_BITS):
            weights[bit] += 1 if value >> bit & 1 else -1

    result = 0
    for bit, weight in enumerate(weights):
        if weight > 0:
            result |= 1 << bit
    return result


def word_shingles(text: str) -> set[str]:
    """Return the set of case-folded word 2-grams of `text` (the words themselves if fewer)."""
    words = _WORDS.findall(unicodedata.normalize("NFC", text).casefold())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def jaccard(first: set[str], second: set[str]) -> float:
    """Return the Jaccard similarity of two sets (0.0 when both are empty)."""
    union = first | second
    return len(first & second) / len(union) if union else 0.0


def simhash_hex(title: str, body_text: str) -> str:
    """Return the SimHash of a notice's material text as 16 hex digits."""
    return f"{simhash(_material(title, body_text)):016x}"


def hamming_distance(first: int, second: int) -> int:
    """Return the number of bits in which two hashes differ."""
    return (first ^ second).bit_count()


def word_count(title: str, body_text: str) -> int:
    """Return the number of words in a notice's title and body."""
    return len(_WORDS.findall(f"{title} {body_text}"))


def assign_groups(session: Session, notice: Notice) -> None:
    """Set `variant_group` and `duplicate_group` of `notice` and of the notices it joins.

    Call after the notice is flushed, in the same transaction as its insert or update.
    """
    notice.simhash = simhash_hex(notice.title, notice.body_text)

    variants = find_variants(session, notice)
    if variants:
        _join(session, notice, variants, Notice.variant_group)

    duplicates = find_duplicates(session, notice)
    if duplicates:
        _join(session, notice, duplicates, Notice.duplicate_group)


def find_variants(session: Session, notice: Notice) -> list[Notice]:
    """Return the stored language versions of `notice` (without the notice itself)."""
    conditions = []

    guid = stable_guid(notice.guid)
    if guid:
        conditions.append(Notice.guid == notice.guid)

    alternate_urls = _alternate_urls(notice)
    twins = _path_twins(notice.canonical_url)
    targets = sorted(alternate_urls | twins)
    if targets:
        conditions.append(Notice.canonical_url.in_(targets))

    if notice.canonical_url:
        # Notices that name this one as an hreflang alternate. The JSON column is compared as
        # text, escaped as json.dumps wrote it, then checked exactly below.
        needle = json.dumps(notice.canonical_url.removeprefix("https://"))[1:-1]
        conditions.append(
            cast(Notice.alternates, String).like(f"%{_escape_like(needle)}%", escape="\\")
        )

    if not conditions:
        return []

    candidates = session.scalars(
        select(Notice).where(Notice.id != notice.id, or_(*conditions))
    ).all()
    return [
        candidate
        for candidate in candidates
        if _are_variants(notice, candidate, guid, alternate_urls | twins)
    ]


def find_duplicates(session: Session, notice: Notice) -> list[Notice]:
    """Return notices of other sources that carry nearly the same text as `notice`."""
    if not notice.simhash:
        return []

    own = int(notice.simhash, 16)
    long_enough = word_count(notice.title, notice.body_text) >= MIN_WORDS_FOR_DUPLICATES
    rows = session.execute(
        select(Notice.id, Notice.simhash, Notice.content_hash).where(
            Notice.source_id != notice.source_id,
            Notice.simhash.is_not(None),
            Notice.withdrawn_at.is_(None),
            Notice.first_seen_at >= notice.first_seen_at - DUPLICATE_WINDOW,
            Notice.first_seen_at <= notice.first_seen_at + DUPLICATE_WINDOW,
        )
    ).all()

    exact = [
        identity for identity, _, other_content in rows if other_content == notice.content_hash
    ]
    close = [
        identity
        for identity, other_hash, other_content in rows
        if long_enough
        and other_content != notice.content_hash
        and hamming_distance(own, int(other_hash or "0", 16)) <= PREFILTER_MAX_DISTANCE
    ]

    matched = list(exact)
    if close:
        own_shingles = word_shingles(_material(notice.title, notice.body_text))
        for other in session.scalars(select(Notice).where(Notice.id.in_(close))).all():
            similarity = jaccard(
                own_shingles, word_shingles(_material(other.title, other.body_text))
            )
            if similarity >= MIN_JACCARD:
                matched.append(other.id)
    if not matched:
        return []
    return list(session.scalars(select(Notice).where(Notice.id.in_(matched))).all())


def _material(title: str, body_text: str) -> str:
    return material_text(title) + " " + material_text(body_text)


def _join(session: Session, notice: Notice, others: list[Notice], column) -> None:  # type: ignore[no-untyped-def]
    name = column.key
    members = [notice, *others]
    existing = {getattr(member, name) for member in members if getattr(member, name)}

    oldest = min(members, key=lambda member: (member.first_seen_at, member.id))
    if existing:
        holders = [member for member in members if getattr(member, name) in existing]
        keeper = min(holders, key=lambda member: (member.first_seen_at, member.id))
        group = getattr(keeper, name)
    else:
        group = oldest.id

    for member in members:
        setattr(member, name, group)
    stale = existing - {group}
    if stale:
        session.execute(update(Notice).where(column.in_(stale)).values({name: group}))
        logger.info(
            "groups_merged kind=%s group=%s merged=%s", name, group, ",".join(sorted(stale))
        )
    logger.debug(
        "grouped kind=%s notice=%s group=%s members=%d", name, notice.id, group, len(members)
    )


def _are_variants(notice: Notice, other: Notice, guid: str | None, linked_urls: set[str]) -> bool:
    if guid and stable_guid(other.guid) == guid:
        return True
    if other.canonical_url and other.canonical_url in linked_urls:
        return True
    return bool(notice.canonical_url) and notice.canonical_url in _alternate_urls(other)


def _alternate_urls(notice: Notice) -> set[str]:
    urls = {canonical_url(href) for href in (notice.alternates or {}).values()}
    urls.discard("")
    urls.discard(notice.canonical_url or "")
    return urls


def _path_twins(url: str | None) -> set[str]:
    """Return `url` with its language path segment replaced by each other language."""
    if not url:
        return set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()

    segments = parts.path.split("/")
    twins: set[str] = set()
    for index, segment in enumerate(segments):
        if segment.lower() not in LANGUAGE_SEGMENTS:
            continue
        for language in LANGUAGE_SEGMENTS:
            if language == segment.lower():
                continue
            changed = [*segments[:index], language, *segments[index + 1 :]]
            twins.add(
                urlunsplit(
                    (parts.scheme, parts.netloc, "/".join(changed), parts.query, parts.fragment)
                )
            )
        break
    return twins


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
