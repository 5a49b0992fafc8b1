"""Grouping language versions of one notice, and near-duplicates across sources.

Language variants share `Notice.variant_group`. Two notices are variants when they carry the same
stable guid (across feeds or sources), when one lists the other as an hreflang alternate, or
when their URLs differ only in a language path segment (`/fi/...` and `/sv/...`).

Near-duplicates share `Notice.duplicate_group`: notices of different sources with equal content
hashes, or whose word 2-gram sets have a Jaccard similarity of at least `MIN_JACCARD`. A bottom-k
MinHash sketch picks the candidates: each notice keeps the `SKETCH_SIZE` smallest 64-bit hashes of
its 2-grams, and only notices that share at least `MIN_SHARED_MIN_HASHES` (2) of them are
compared. Each of the k smallest hashes of the union of two sets with Jaccard similarity J is in
both with probability J, so the pair is missed with a probability of about
(1 - J)^k + k J (1 - J)^(k - 1), which is 2.6e-4 for J = 0.5 and k = 16. Asking for two shared
hashes instead of one matters on large stores, where a phrase common to many notices would
otherwise put them all in each other's candidates (measured with one shared hash: a seventh of
the normalisation time of the 10,000-notice benchmark went to finding and comparing
candidates). SimHash (64 bits over the same 2-grams, stored in `Notice.simhash`) then drops the
candidates more than `PREFILTER_MAX_DISTANCE` bits away before the exact comparison. On notices
of a few dozen words a small edit moved SimHash by 6 to 12 bits in the tests, while unrelated
texts differ by about 32.
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
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import chain
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import ColumnElement, String, cast, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from noticeboard.store.tables import Notice
from transforms.identity import canonical_url, material_text, stable_guid
from transforms.notice_lookup import chunked

logger = logging.getLogger(__name__)

SIMHASH_BITS = 64
SHINGLE_WORDS = 2
SKETCH_SIZE = 16
MIN_SHARED_MIN_HASHES = 2
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
    return _simhash_of(shingle_digests(text))


def shingle_digests(text: str) -> set[bytes]:
    """Return the 64-bit hashes of the word 2-grams of `text`, as 8-byte big-endian digests."""
    return {_shingle_digest(shingle) for shingle in word_shingles(text)}


def _simhash_of(digests: set[bytes]) -> int:
    if not digests:
        return 0

    # A bit of the result is set when more digests have it set than not. With the digests laid
    # end to end, `data[byte::8]` is one byte of every digest. Translating it through a table
    # that keeps one bit, then counting the ones, counts that bit over all digests in C.
    data = b"".join(digests)
    result = 0
    for byte in range(8):
        column = data[byte::8]
        for bit in range(8):
            if 2 * column.translate(_BIT_TABLES[bit]).count(1) > len(digests):
                result |= 1 << (SIMHASH_BITS - 1 - (8 * byte + bit))
    return result


# For each bit of a byte, most significant first, a table that maps a byte to 1 when that bit is
# set in it and to 0 otherwise.
_BIT_TABLES = [bytes(1 if value & (0x80 >> bit) else 0 for value in range(256)) for bit in range(8)]


def word_shingles(text: str) -> set[str]:
    """Return the set of case-folded word 2-grams of `text` (the words themselves if fewer)."""
    words = _WORDS.findall(unicodedata.normalize("NFC", text).casefold())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def min_hashes(text: str) -> tuple[int, ...]:
    """Return the `SKETCH_SIZE` smallest 64-bit hashes of the word 2-grams of `text`, ascending."""
    return _sketch_of(shingle_digests(text))


def _sketch_of(digests: set[bytes]) -> tuple[int, ...]:
    # Digests of one length sort as the numbers they encode, so only the smallest are converted.
    return tuple(int.from_bytes(digest, "big") for digest in heapq.nsmallest(SKETCH_SIZE, digests))


def _cached_sketch(
    content_hash: str, title: str, body_text: str, digests: set[bytes] | None = None
) -> tuple[int, ...]:
    """Return the MinHash sketch of a notice's material text, caching and indexing it.

    `digests`, the shingle digests of that text when the caller has them, saves hashing it again.
    """
    sketch = _SKETCHES.get(content_hash)
    if sketch is None:
        if digests is None:
            digests = shingle_digests(_material(title, body_text))
        sketch = _sketch_of(digests)
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


def _shingle_digest(shingle: str) -> bytes:
    return hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest()


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
    digests = shingle_digests(_material(notice.title, notice.body_text))
    notice.simhash = f"{_simhash_of(digests):016x}"
    _cached_sketch(notice.content_hash, notice.title, notice.body_text, digests)

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
    guid = stable_guid(notice.guid)
    linked_urls = _alternate_urls(notice) | _path_twins(notice.canonical_url)

    candidates: dict[str, Notice] = {}
    if guid:
        candidates.update(index.with_guid(session, notice.guid or ""))
    for url in sorted(linked_urls):
        candidates.update(index.with_url(session, url))
    # Notices that name this one as an hreflang alternate.
    for identity in sorted(index.naming(session, notice.canonical_url)):
        named = index.notice(session, identity)
        if named is not None:
            candidates[identity] = named
    candidates.pop(notice.id, None)

    return [
        candidate
        for candidate in candidates.values()
        if _are_variants(notice, candidate, guid, linked_urls)
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

    matched = [index.notice(session, identity) for identity in exact]
    if close:
        own_shingles = word_shingles(_material(notice.title, notice.body_text))
        for other in (index.notice(session, identity) for identity in close):
            if other is None:
                continue
            similarity = jaccard(
                own_shingles, word_shingles(_material(other.title, other.body_text))
            )
            if similarity >= MIN_JACCARD:
                matched.append(other)
    return [other for other in matched if other is not None]


class _VariantKeys(Protocol):
    """The fields of a notice or a normalised item that variant grouping reads."""

    guid: str | None
    canonical_url: str | None
    alternates: dict[str, str] | None


class _Entry(NamedTuple):
    source_id: str
    content_hash: str
    first_seen_at: datetime


class DuplicateWindow:
    """The stored notices that duplicate grouping compares a new notice with, by id.

    The window has two parts, each read on first use. The first has the SimHash, content hash,
    source and first-seen time of the notices first seen in a range of times, and the range
    grows to cover each duplicate window requested. The second maps each canonical alternate
    URL to the notices that list it. `record` adds each notice that a transaction writes, so
    the window stays current without reading again.

    It contains ids and hashes, never ORM objects, so one window serves all the transactions of a
    run: each batch then reads only what earlier batches have not. After a transaction rolls
    back, `reset` drops what it recorded.

    A notice is compared with the notices committed before the window read them and with those
    that this process wrote since. Near-duplicates that two processes write at the same time can
    therefore stay ungrouped, as they could with one transaction per notice.
    NOTE: the alternates part contains every notice with alternates, so its memory and first read
    grow with the store rather than with the duplicate window.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything read and recorded."""
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
        `near`, has those with another content hash that share `MIN_SHARED_MIN_HASHES` MinHash
        values with `notice` and have a SimHash within `PREFILTER_MAX_DISTANCE` bits.
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

        sketch = _cached_sketch(notice.content_hash, notice.title, notice.body_text)
        shared = Counter(
            chain.from_iterable(_CONTENT_BY_MIN_HASH.get(hashed, ()) for hashed in sketch)
        )
        contents = [
            content
            for content, count in shared.items()
            if count >= MIN_SHARED_MIN_HASHES and content != notice.content_hash
        ]
        nearby = [
            identity for content in contents for identity in self._by_content.get(content, ())
        ]
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


class GroupingIndex:
    """The notices that grouping compares the notices of one transaction with.

    It contains the `DuplicateWindow`, shared across transactions when one is passed, and the notice
    objects that language-variant grouping compares, keyed by guid and by canonical URL.
    `read_variants` fills the latter for a whole batch in a few queries; a key that was not read
    is queried when first asked for. The objects belong to the transaction's session, so an
    index must not outlive its transaction.
    """

    def __init__(self, window: DuplicateWindow | None = None) -> None:
        self.window = window if window is not None else DuplicateWindow()
        self._objects: dict[str, Notice] = {}
        self._by_guid: dict[str, set[str]] = {}
        self._by_url: dict[str, set[str]] = {}
        self._keys_of: dict[str, tuple[str | None, str | None]] = {}
        self._guids_read: set[str] = set()
        self._urls_read: set[str] = set()

    def duplicate_candidates(
        self, session: Session, notice: Notice, *, near: bool
    ) -> tuple[list[str], list[str]]:
        """Return the duplicate candidates of `notice`, as `DuplicateWindow` finds them."""
        return self.window.duplicate_candidates(session, notice, near=near)

    def naming(self, session: Session, url: str | None) -> set[str]:
        """Return the ids of notices that list `url` as an hreflang alternate."""
        return self.window.naming(session, url)

    def record(self, notice: Notice) -> None:
        """Add or replace `notice`, as written by the current transaction."""
        self._remember(notice)
        self.window.record(notice)

    def read_variants(self, session: Session, notices: Iterable[_VariantKeys]) -> None:
        """Read, in a few queries, the stored notices that could be variants of `notices`.

        `notices` may be notices or normalised items: only their guid, canonical URL and
        alternates are used.
        """
        guids: set[str] = set()
        urls: set[str] = set()
        for notice in notices:
            if stable_guid(notice.guid):
                guids.add(notice.guid or "")
            urls |= _alternate_urls(notice) | _path_twins(notice.canonical_url)
        self._read_keys(session, Notice.guid, sorted(guids - self._guids_read), self._guids_read)
        self._read_keys(
            session, Notice.canonical_url, sorted(urls - self._urls_read), self._urls_read
        )

    def with_guid(self, session: Session, guid: str) -> dict[str, Notice]:
        """Return the known notices whose guid is `guid`, by id."""
        if guid not in self._guids_read:
            self._read_keys(session, Notice.guid, [guid], self._guids_read)
        return {identity: self._objects[identity] for identity in self._by_guid.get(guid, ())}

    def with_url(self, session: Session, url: str) -> dict[str, Notice]:
        """Return the known notices whose canonical URL is `url`, by id."""
        if url not in self._urls_read:
            self._read_keys(session, Notice.canonical_url, [url], self._urls_read)
        return {identity: self._objects[identity] for identity in self._by_url.get(url, ())}

    def notice(self, session: Session, identity: str) -> Notice | None:
        """Return the notice `identity`, from this index when known, else from the store."""
        known = self._objects.get(identity)
        return known if known is not None else session.get(Notice, identity)

    def _read_keys(
        self,
        session: Session,
        column: InstrumentedAttribute[str | None],
        keys: list[str],
        read: set[str],
    ) -> None:
        for chunk in chunked(keys):
            for notice in session.scalars(select(Notice).where(column.in_(chunk))):
                self._remember(notice)
        read.update(keys)

    def _remember(self, notice: Notice) -> None:
        """Keep `notice` under its current guid and canonical URL."""
        old_guid, old_url = self._keys_of.get(notice.id, (None, None))
        if old_guid is not None:
            self._by_guid[old_guid].discard(notice.id)
        if old_url is not None:
            self._by_url[old_url].discard(notice.id)

        self._objects[notice.id] = notice
        self._keys_of[notice.id] = (notice.guid, notice.canonical_url)
        if notice.guid is not None:
            self._by_guid.setdefault(notice.guid, set()).add(notice.id)
        if notice.canonical_url is not None:
            self._by_url.setdefault(notice.canonical_url, set()).add(notice.id)


def _read_sketches(session: Session, notices: list[tuple[str, str]]) -> None:
    """Read the text of the (id, content hash) pairs whose sketch is not cached, and cache it."""
    missing = [identity for identity, content in notices if content not in _SKETCHES]

    for chunk in chunked(missing):
        rows = session.execute(
            select(Notice.content_hash, Notice.title, Notice.body_text).where(
                Notice.id.in_(chunk)
            )
        )
        for content, title, body_text in rows:
            _cached_sketch(content, title, body_text)



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
        # The update must also reach members that this transaction has not written yet.
        session.flush()
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


def _alternate_urls(notice: _VariantKeys) -> set[str]:
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
