"""Finding the stored notice that a normalised item is a new version of.

An item matches, in order:
1. the notice with its id (from the guid, or the canonical URL when the guid is missing or
   volatile);
2. a notice of the same source with the same canonical URL, title and published time, because
   some sites regenerate every guid on a rebuild.

When the notice with the item's id was declared in another language and has another URL, the
same guid sits in two language feeds of one source, so the item's id is taken from its URL
instead.

`StoredNotices` answers these questions for one batch of items with two queries, and keeps the
notices that the batch creates, so a later item of the same batch finds them too. Reads lock
the rows (`FOR UPDATE` on PostgreSQL) as the single-row lookups did before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from noticeboard.models import NormalisedNotice
from noticeboard.store.tables import Notice
from transforms.identity import notice_id

logger = logging.getLogger(__name__)

# Values per IN list, under the 999 bound parameters of SQLite builds before 3.32.
READ_CHUNK = 500


class StoredNotices:
    """The stored notices that the items of one transaction may update."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._by_id: dict[str, Notice | None] = {}
        self._by_link: dict[tuple[str, str], dict[str, Notice]] = {}

    def read(self, items: Sequence[NormalisedNotice]) -> None:
        """Read the notices with the ids of `items` and those sharing a source and URL with one."""
        ids = sorted({item.id for item in items} - set(self._by_id))
        for chunk in chunked(ids):
            for notice in self._session.scalars(
                select(Notice).where(Notice.id.in_(chunk)).with_for_update()
            ):
                self.add(notice)
        for identity in ids:
            self._by_id.setdefault(identity, None)

        links = {(item.source_id, item.canonical_url) for item in items if item.canonical_url}
        links -= set(self._by_link)
        sources = sorted({source for source, _ in links})
        urls = sorted({url for _, url in links})
        for chunk in chunked(urls):
            for notice in self._session.scalars(
                select(Notice)
                .where(Notice.source_id.in_(sources), Notice.canonical_url.in_(chunk))
                .with_for_update()
            ):
                self.add(notice)
        for link in links:
            self._by_link.setdefault(link, {})

    def add(self, notice: Notice) -> None:
        """Keep `notice`, stored or created by this transaction, for the items that follow."""
        self._by_id[notice.id] = notice
        if notice.canonical_url:
            self._by_link.setdefault((notice.source_id, notice.canonical_url), {})[notice.id] = (
                notice
            )

    def match(self, item: NormalisedNotice) -> Notice | None:
        """Return the notice that `item` is a version of, or None; may change `item.id`."""
        notice = self._with_id(item.id)
        if notice is not None and _is_other_language(notice, item):
            item.id = notice_id(item.source_id, None, item.canonical_url, fallback=item.title)
            notice = self._with_id(item.id)
        if notice is not None or not item.canonical_url:
            return notice

        published = item.published.instant if item.published else None
        for candidate in self._with_link(item.source_id, item.canonical_url):
            if candidate.title == item.title and candidate.published_at == published:
                logger.info(
                    "notice_matched_by_link source=%s notice=%s", item.source_id, candidate.id
                )
                return candidate
        return None

    def _with_id(self, identity: str) -> Notice | None:
        if identity not in self._by_id:
            self._by_id[identity] = self._session.get(Notice, identity, with_for_update=True)
        return self._by_id[identity]

    def _with_link(self, source_id: str, url: str) -> list[Notice]:
        """Return the notices of `source_id` at `url`, oldest first."""
        if (source_id, url) not in self._by_link:
            for notice in self._session.scalars(
                select(Notice)
                .where(Notice.source_id == source_id, Notice.canonical_url == url)
                .with_for_update()
            ):
                self.add(notice)
            self._by_link.setdefault((source_id, url), {})
        notices = self._by_link[(source_id, url)].values()
        current = [notice for notice in notices if notice.canonical_url == url]
        return sorted(current, key=lambda notice: (notice.first_seen_at, notice.id))


def _is_other_language(notice: Notice, item: NormalisedNotice) -> bool:
    return bool(
        notice.declared_language
        and item.declared_language
        and notice.declared_language != item.declared_language
        and item.canonical_url
        and notice.canonical_url != item.canonical_url
    )


def chunked(values: list[str]) -> list[list[str]]:
    """Split `values` into lists of at most `READ_CHUNK`, one per IN list of a query."""
    return [values[start : start + READ_CHUNK] for start in range(0, len(values), READ_CHUNK)]
