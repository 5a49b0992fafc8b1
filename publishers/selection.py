"""The selection of published notices: the one query that feeds, the API and channels share.

A notice is published when its stage is `ready` and it is not withdrawn. Of a duplicate group
(the same announcement found at several sources) only one notice is published: the one with the
smallest id among the group's published notices, so every publisher picks the same one.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from noticeboard.store.tables import Notice
from noticeboard.views import NoticeView, load_views

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
    """
    ordered_ids = list(session.scalars(published_notices().with_only_columns(Notice.id)))
    for start in range(0, len(ordered_ids), batch_size):
        batch_ids = ordered_ids[start : start + batch_size]
        position = {notice_id: index for index, notice_id in enumerate(batch_ids)}
        notices = sorted(
            session.scalars(select(Notice).where(Notice.id.in_(batch_ids))),
            key=lambda notice: position[notice.id],
        )
        yield from load_views(session, notices)
        session.expunge_all()
