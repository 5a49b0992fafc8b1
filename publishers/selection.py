"""The selection of published notices: the one query that feeds, the API and channels share.

A notice is published when its stage is `ready` and it is not withdrawn. Of a duplicate group
(the same announcement found at several sources) only one notice is published: the one with the
smallest id among the group's published notices, so every publisher picks the same one.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import ColumnElement, Select, String, and_, any_, bindparam, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from noticeboard.store.tables import Notice, NoticeTag, Translation
from noticeboard.views import NoticeView, TranslationView

READY_STAGE = "ready"


def is_published() -> ColumnElement[bool]:
    """Return the condition that a `Notice` row is published (ready, current, first of its group)."""
    current = and_(Notice.stage == READY_STAGE, Notice.withdrawn_at.is_(None))
    # An uncorrelated subquery, evaluated once: a correlated NOT EXISTS made SQLite scan every
    # ready notice per grouped row, because it chose the stage index over the group index.
    other = aliased(Notice)
    group_firsts = (
        select(func.min(other.id))
        .where(
            other.stage == READY_STAGE,
            other.withdrawn_at.is_(None),
            other.duplicate_group.is_not(None),
        )
        .group_by(other.duplicate_group)
    )
    return and_(current, or_(Notice.duplicate_group.is_(None), Notice.id.in_(group_firsts)))


def published_notices() -> Select[tuple[Notice]]:
    """Select every published notice, newest first (undated ones last, then by id)."""
    return (
        select(Notice)
        .where(is_published())
        .order_by(Notice.published_at.desc().nulls_last(), Notice.id)
    )


def iter_published_views(session: Session, *, batch_size: int = 500) -> Iterator[NoticeView]:
    """Yield views of every published notice in `published_notices` order, a batch at a time.

    The ids are sorted first and the rows loaded per batch, because sorting whole rows (bodies
    included) made SQLite spill large temporary B-trees: ids of 100,000 notices take a few MB.
    The views carry regions, topics and finished translations, but no `tag_rules`.
    """
    ordered_ids = list(session.scalars(published_notices().with_only_columns(Notice.id)))
    dialect = session.get_bind().dialect.name
    for start in range(0, len(ordered_ids), batch_size):
        batch_ids = ordered_ids[start : start + batch_size]
        position = {notice_id: index for index, notice_id in enumerate(batch_ids)}
        notices = sorted(
            session.scalars(select(Notice).where(_id_in(Notice.id, batch_ids, dialect))),
            key=lambda notice: position[notice.id],
        )
        yield from _load_feed_views(session, notices, dialect)
        session.expunge_all()


def _id_in(column: QueryableAttribute[str], ids: list[str], dialect: str) -> ColumnElement[bool]:
    """Return `column IN ids`, bound as one array parameter on PostgreSQL.

    Over the 98 batches of `benchmarks/feeds_scale.py`, the tag query took 6.9 s with an `IN`
    list of 1,000 parameters and 1.5 s with one `= ANY(array)` parameter (shared 2-CPU machine).
    """
    if dialect == "postgresql":
        return column == any_(bindparam(None, ids, type_=postgresql.ARRAY(String)))
    return column.in_(ids)


def _load_feed_views(session: Session, notices: list[Notice], dialect: str) -> list[NoticeView]:
    """Attach tags and finished translations to loaded notices, reading only the columns needed.

    Tags are ordered by `(notice_id, kind, value)`, the order of their unique index. Ordered by
    `(kind, value)` alone, PostgreSQL walked the whole `(kind, value)` index for every batch
    and filtered it by notice id, which took most of the feed run.
    """
    views = {notice.id: NoticeView(notice=notice) for notice in notices}
    if not views:
        return []
    ids = list(views)

    tags = session.execute(
        select(NoticeTag.notice_id, NoticeTag.kind, NoticeTag.value)
        .where(_id_in(NoticeTag.notice_id, ids, dialect))
        .order_by(NoticeTag.notice_id, NoticeTag.kind, NoticeTag.value)
    )
    for notice_id, kind, value in tags:
        view = views[notice_id]
        if kind == "region" and value not in view.regions:
            view.regions.append(value)
        elif kind == "topic" and value not in view.topics:
            view.topics.append(value)

    translations = session.execute(
        select(
            Translation.notice_id,
            Translation.language,
            Translation.title,
            Translation.summary_text,
            Translation.summary_html,
            Translation.body_text,
            Translation.body_html,
            Translation.provider,
        ).where(
            _id_in(Translation.notice_id, ids, dialect),
            Translation.status == "done",
            Translation.title.is_not(None),
        )
    )
    for row in translations:
        views[row.notice_id].translations[row.language] = TranslationView(
            language=row.language,
            title=row.title,
            summary_text=row.summary_text or "",
            summary_html=row.summary_html or "",
            body_text=row.body_text or "",
            body_html=row.body_html or "",
            provider=row.provider,
        )

    return [views[notice.id] for notice in notices]
