"""Grouping language versions of one notice, and near-duplicates across sources.

Language variants share `Notice.variant_group`. Two notices are variants when they carry the same
stable guid (across feeds or sources), when one lists the other as an hreflang alternate, or
when their URLs differ only in a language path segment (`/fi/...` and `/sv/...`).

Near-duplicates share `Notice.duplicate_group`: notices of different sources with equal content
hashes, or whose word 2-gram sets have a Jaccard similarity of at least `MIN_JACCARD`. A bottom-k
MinHash sketch picks the candidates: each notice keeps the `SKETCH_SIZE` smallest 64-bit hashes of
its 2-grams, and only notices that share one of them are compared. Two sets with Jaccard
similarity J miss each other only when none of the k smallest hashes of their union is in both,
which has a probability of at most (1 - J)^k, so 1.5e-5 for J = 0.5 and k = 16. SimHash (64 bits
over the same 2-grams, stored in `Notice.simhash`) then drops the candidates more than
`PREFILTER_MAX_DISTANCE` bits away before the exact comparison, because a phrase that many
notices share puts them all in each other's candidates. On notices of a few dozen words a small
edit moved SimHash by 6 to 12 bits in the tests, while unrelated texts differ by about 32.
NOTE: on texts of about 30 words a few edits can move SimHash by more than 18 bits at a Jaccard
similarity near 0.75 (one generated pair moved 21), and such pairs stay ungrouped.
Only notices first seen within `DUPLICATE_WINDOW` of each other are compared.

A group id is the id of a member notice and never changes for the members that had it: a newcomer
adopts the id of the existing group, and when two groups meet, the group whose oldest member was
seen first keeps its id.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import re
import unicodedata
from datetime import datetime, timedelta
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import ColumnElement, String, cast, or_, select, update
from sqlalchemy.orm import Session

from noticeboard.store.tables import Notice
from transforms.identity import canonical_url, material_text, stable_guid

logger = logging.getLogger(__name__)

SIMHASH_BITS = 64
SHINGLE_WORDS = 2
SKETCH_SIZE = 16
# Sketches kept between transactions, by content hash, so each batch does not re-read, re-hash
# and re-index the text of every notice in the window. An estimate of 2 KB each on CPython 3.11.
# NOTE: a duplicate window with more distinct texts than this evicts sketches that the same
# transaction still needs, and near-duplicates of the evicted texts can then stay ungrouped.
SKETCH_CACHE_SIZE = 20_000
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

    # Each shingle hash as 64 binary digits, most significant first. A bit of the result is set
    # when more shingle hashes have it set than not. Counting the digits of each column in C is
    # about three times faster than adding per-bit weights in Python (measured on 2,000 generated texts).
    digits = [
        format(
            int.from_bytes(hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest(), "big"),
            "064b",
        )
        for shingle in shingles
    ]
    result = 0
    for position, column in enumerate(zip(*digits, strict=True)):
        if 2 * column.count("1") > len(digits):
            result |= 1 << (SIMHASH_BITS - 1 - position)
    return result


def word_shingles(text: str) -> set[str]:
    """Return the set of case-folded word 2-grams of `text` (the words themselves if fewer)."""
    words = _WORDS.findall(unicodedata.normalize("NFC", text).casefold())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def min_hashes(text: str) -> tuple[int, ...]:
    """Return the `SKETCH_SIZE` smallest 64-bit hashes of the word 2-grams of `text`, ascending."""
    hashes = {_shingle_hash(shingle) for shingle in word_shingles(text)}
    return tuple(heapq.nsmallest(SKETCH_SIZE, hashes))


def _cached_sketch(content_hash: str, title: str, body_text: str) -> tuple[int, ...]:
    """Return the MinHash sketch of a notice's material text, caching and indexing it."""
    sketch = _SKETCHES.get(content_hash)
    if sketch is None:
        sketch = min_hashes(_material(title, body_text))
        if len(_SKETCHES) >= SKETCH_CACHE_SIZE:
            _evict_sketch(next(iter(_SKETCHES), ""))  # the oldest entry
        _SKETCHES[content_hash] = sketch
        for hashed in sketch:
            _CONTENT_BY_MIN_HASH.setdefault(hashed, set()).add(content_hash)
    return sketch


def _evict_sketch(content_hash: str) -> None:
    # `pop` with a default tolerates a thread that evicted the same entry first.
    for hashed in _SKETCHES.pop(content_hash, ()):
        contents = _CONTENT_BY_MIN_HASH.get(hashed, set())
        contents.discard(content_hash)
        if not contents:
            _CONTENT_BY_MIN_HASH.pop(hashed, None)


# Both maps depend only on text, so transactions and stores can share them. The index of a
# transaction maps the content hashes found here to the ids of its own notices.
_SKETCHES: dict[str, tuple[int, ...]] = {}
_CONTENT_BY_MIN_HASH: dict[int, set[str]] = {}


def _shingle_hash(shingle: str) -> int:
    return int.from_bytes(hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest(), "big")


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


def assign_groups(session: Session, notice: Notice, index: GroupingIndex | None = None) -> None:
    """Set `variant_group` and `duplicate_group` of `notice` and of the notices it joins.

    Call after the notice is flushed, in the same transaction as its insert or update. Pass one
    `GroupingIndex` for all the notices of a transaction, so stored notices are read once per
    transaction instead of once per notice.
    """
    index = index if index is not None else GroupingIndex()
    notice.simhash = simhash_hex(notice.title, notice.body_text)

    variants = find_variants(session, notice, index)
    if variants:
        _join(session, notice, variants, Notice.variant_group)

    duplicates = find_duplicates(session, notice, index)
    if duplicates:
        _join(session, notice, duplicates, Notice.duplicate_group)

    index.record(notice)


def find_variants(
    session: Session, notice: Notice, index: GroupingIndex | None = None
) -> list[Notice]:
    """Return the stored language versions of `notice` (without the notice itself)."""
    index = index if index is not None else GroupingIndex()
    conditions = []

    guid = stable_guid(notice.guid)
    if guid:
        conditions.append(Notice.guid == notice.guid)

    alternate_urls = _alternate_urls(notice)
    twins = _path_twins(notice.canonical_url)
    targets = sorted(alternate_urls | twins)
    if targets:
        conditions.append(Notice.canonical_url.in_(targets))

    # Notices that name this one as an hreflang alternate.
    naming = index.naming(session, notice.canonical_url) - {notice.id}
    if naming:
        conditions.append(Notice.id.in_(sorted(naming)))

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


def find_duplicates(
    session: Session, notice: Notice, index: GroupingIndex | None = None
) -> list[Notice]:
    """Return notices of other sources that carry nearly the same text as `notice`."""
    if not notice.simhash:
        return []

    index = index if index is not None else GroupingIndex()
    long_enough = word_count(notice.title, notice.body_text) >= MIN_WORDS_FOR_DUPLICATES
    exact, close = index.duplicate_candidates(session, notice, near=long_enough)

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


class _Entry(NamedTuple):
    source_id: str
    content_hash: str
    first_seen_at: datetime


class GroupingIndex:
    """The stored notices that grouping compares a new notice with, read once per transaction.

    The index has two parts, each read on first use. The first has the SimHash, content hash,
    source and first-seen time of the notices first seen in a range of times, and the range
    grows to cover each duplicate window requested. The second maps each canonical alternate
    URL to the notices that list it. `record` adds each notice that the transaction writes, so
    the index stays current without reading again.

    A notice is compared with the notices committed before its transaction read the index and
    with those of its own transaction. Near-duplicates that two processes write at the same
    time can therefore stay ungrouped, as they could with one transaction per notice.
    NOTE: the alternates part contains every notice with alternates, so its memory and first read
    grow with the store rather than with the duplicate window.
    """

    def __init__(self) -> None:
        self._low: datetime | None = None
        self._high: datetime | None = None
        self._entries: dict[str, _Entry] = {}
        self._simhashes: dict[str, int] = {}
        self._by_content: dict[str, set[str]] = {}
        self._naming: dict[str, set[str]] | None = None
        self._named_by: dict[str, set[str]] = {}

    def duplicate_candidates(
        self, session: Session, notice: Notice, *, near: bool
    ) -> tuple[list[str], list[str]]:
        """Return the ids of notices of other sources within the duplicate window of `notice`.

        The first list has the notices with the same content hash. The second, empty unless
        `near`, has those with another content hash that share a MinHash with `notice` and
        have a SimHash within `PREFILTER_MAX_DISTANCE` bits.
        """
        low = notice.first_seen_at - DUPLICATE_WINDOW
        high = notice.first_seen_at + DUPLICATE_WINDOW
        self._cover(session, low, high)

        def eligible(identity: str) -> bool:
            entry = self._entries[identity]
            return (
                identity != notice.id
                and entry.source_id != notice.source_id
                and low <= entry.first_seen_at <= high
            )

        exact = sorted(
            identity
            for identity in self._by_content.get(notice.content_hash, ())
            if eligible(identity)
        )
        if not near:
            return exact, []

        contents: set[str] = set()
        for hashed in _cached_sketch(notice.content_hash, notice.title, notice.body_text):
            contents.update(_CONTENT_BY_MIN_HASH.get(hashed, ()))
        contents.discard(notice.content_hash)
        nearby = [identity for content in contents for identity in self._by_content.get(content, ())]
        own = int(notice.simhash or "0", 16)
        close = sorted(
            identity
            for identity in nearby
            if (own ^ self._simhashes[identity]).bit_count() <= PREFILTER_MAX_DISTANCE
            and eligible(identity)
        )
        return exact, close

    def naming(self, session: Session, url: str | None) -> set[str]:
        """Return the ids of notices that list `url` as an hreflang alternate."""
        if not url:
            return set()
        if self._naming is None:
            self._naming = {}
            rows = session.execute(
                select(Notice.id, Notice.alternates, Notice.canonical_url).where(
                    # The ORM stores a None of this JSON column as the JSON text `null`.
                    Notice.alternates.is_not(None),
                    cast(Notice.alternates, String) != "null",
                )
            )
            for identity, alternates, canonical in rows:
                self._add_naming(identity, alternates, canonical)
        return set(self._naming.get(url, ()))

    def record(self, notice: Notice) -> None:
        """Add or replace `notice`, as written by the current transaction."""
        if self._naming is not None:
            self._add_naming(notice.id, notice.alternates, notice.canonical_url)

        self._forget(notice.id)
        if notice.simhash is None or notice.withdrawn_at is not None:
            return
        if self._low is None or self._high is None:
            return
        if not self._low <= notice.first_seen_at <= self._high:
            return  # outside the range read so far; `_cover` reads it once a window reaches it
        own = int(notice.simhash, 16)
        _cached_sketch(notice.content_hash, notice.title, notice.body_text)
        self._add(notice.id, notice.source_id, own, notice.content_hash, notice.first_seen_at)

    def _cover(self, session: Session, low: datetime, high: datetime) -> None:
        """Read the notices first seen between `low` and `high` that are not read yet."""
        if self._low is None or self._high is None:
            self._read(session, Notice.first_seen_at >= low, Notice.first_seen_at <= high)
            self._low, self._high = low, high
            return
        if low < self._low:
            self._read(session, Notice.first_seen_at >= low, Notice.first_seen_at < self._low)
            self._low = low
        if high > self._high:
            self._read(session, Notice.first_seen_at > self._high, Notice.first_seen_at <= high)
            self._high = high

    def _read(self, session: Session, *conditions: ColumnElement[bool]) -> None:
        rows = session.execute(
            select(
                Notice.id,
                Notice.source_id,
                Notice.simhash,
                Notice.content_hash,
                Notice.first_seen_at,
            ).where(Notice.simhash.is_not(None), Notice.withdrawn_at.is_(None), *conditions)
        ).all()
        _read_sketches(session, [(identity, content) for identity, _, _, content, _ in rows])
        for identity, source_id, hex_hash, content, first_seen in rows:
            self._forget(identity)
            self._add(identity, source_id, int(hex_hash or "0", 16), content, first_seen)

    def _add(
        self,
        identity: str,
        source_id: str,
        hashed: int,
        content: str,
        first_seen: datetime,
    ) -> None:
        self._entries[identity] = _Entry(source_id, content, first_seen)
        self._simhashes[identity] = hashed
        self._by_content.setdefault(content, set()).add(identity)

    def _forget(self, identity: str) -> None:
        entry = self._entries.pop(identity, None)
        if entry is None:
            return
        del self._simhashes[identity]
        self._by_content[entry.content_hash].discard(identity)

    def _add_naming(
        self, identity: str, alternates: dict[str, str] | None, canonical: str | None
    ) -> None:
        assert self._naming is not None
        for url in self._named_by.pop(identity, set()):
            self._naming[url].discard(identity)

        urls = {canonical_url(href) for href in (alternates or {}).values()}
        urls.discard("")
        urls.discard(canonical or "")
        for url in urls:
            self._naming.setdefault(url, set()).add(identity)
        if urls:
            self._named_by[identity] = urls


def _read_sketches(session: Session, notices: list[tuple[str, str]]) -> None:
    """Read the text of the (id, content hash) pairs whose sketch is not cached, and cache it."""
    missing = [identity for identity, content in notices if content not in _SKETCHES]

    for start in range(0, len(missing), _READ_CHUNK):
        rows = session.execute(
            select(Notice.content_hash, Notice.title, Notice.body_text).where(
                Notice.id.in_(missing[start : start + _READ_CHUNK])
            )
        )
        for content, title, body_text in rows:
            _cached_sketch(content, title, body_text)


# Ids per query, under the 999 bound parameters of SQLite builds before 3.32.
_READ_CHUNK = 500


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
