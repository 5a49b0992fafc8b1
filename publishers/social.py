"""Posting due notices to every configured channel, each version exactly once.

`publish_pending` runs the channels named in `settings.publishers` (`mastodon`, `discourse`,
`webhook`) one after the other. For each channel it takes the published notices whose current
version the ledger does not yet show as delivered, claims each one in the ledger, calls the
channel and records the outcome. Then it marks on the platform the notices that the channel
delivered and that their authority has since withdrawn, once per withdrawn version. A channel
that is misconfigured, rate limited or failing stops on its own; the other channels still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from noticeboard.catalog import Catalog
from noticeboard.errors import ConfigError, DeliveryError
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice
from noticeboard.views import NoticeView, load_views
from publishers import ledger
from publishers.channel import Channel, Outgoing
from publishers.jsonfeed import FeedContext, build_item

logger = logging.getLogger(__name__)

BATCH_SIZE = 100


def _mastodon(settings: Settings) -> Channel:
    from publishers.mastodon import MastodonChannel

    return MastodonChannel(settings)


def _discourse(settings: Settings) -> Channel:
    from publishers.discourse import DiscourseChannel

    return DiscourseChannel(settings)


def _webhook(settings: Settings) -> Channel:
    from publishers.webhook import WebhookChannel

    return WebhookChannel(settings)


CHANNEL_FACTORIES: dict[str, Callable[[Settings], Channel]] = {
    "mastodon": _mastodon,
    "discourse": _discourse,
    "webhook": _webhook,
}


@dataclass
class ChannelReport:
    """Outcome of one channel in one run."""

    sent: int = 0
    edited: int = 0
    withdrawn: int = 0
    failed: int = 0
    permanent: int = 0
    skipped: int = 0
    paused_for: float | None = None
    error: str | None = None


@dataclass
class PublishReport:
    """Outcome of `publish_pending`, per channel name."""

    channels: dict[str, ChannelReport] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as plain dicts for run summaries."""
        return {name: vars(report).copy() for name, report in self.channels.items()}


def build_channel(name: str, settings: Settings) -> Channel:
    """Create the channel called `name`, raising `ConfigError` for an unknown or incomplete one."""
    factory = CHANNEL_FACTORIES.get(name)
    if factory is None:
        raise ConfigError(
            f"unknown publisher {name!r} in NOTICEBOARD_PUBLISHERS; use {', '.join(CHANNEL_FACTORIES)}"
        )
    return factory(settings)


def outgoing(view: NoticeView, context: FeedContext) -> Outgoing:
    """Build what channels post from a notice view, in the notice's own language."""
    notice = view.notice
    item = build_item(view, context)
    return Outgoing(
        notice_id=notice.id,
        version=notice.version,
        title=notice.title,
        summary_text=notice.summary_text,
        body_text=notice.body_text,
        body_html=notice.body_html,
        link=item["url"],
        language=notice.language,
        regions=tuple(view.regions),
        topics=tuple(view.topics),
        authority=item["authors"][0]["name"],
        item=item,
    )


def publish_pending(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    catalog: Catalog | None = None,
    channels: Sequence[Channel] | None = None,
    worker: str | None = None,
) -> PublishReport:
    """Deliver every due notice version to each configured channel and return the counts.

    `channels` replaces the channels built from settings (tests pass their own); `worker`
    names this process in the ledger.
    """
    report = PublishReport()
    worker = worker or ledger.new_worker_id()
    context = FeedContext.create(settings.public_base_url, catalog)

    if channels is None:
        built: list[Channel] = []
        for name in settings.publishers:
            try:
                built.append(build_channel(name, settings))
            except ConfigError as error:
                report.channels[name] = ChannelReport(error=str(error))
                logger.error("channel_not_configured channel=%s error=%s", name, error)
        channels = built

    for channel in channels:
        channel_report = report.channels.setdefault(channel.name, ChannelReport())
        try:
            _publish_channel(store, channel, context, channel_report, worker=worker, now=now)
        except SQLAlchemyError:
            # The store failing is not the channel's fault: every channel would fail the same way,
            # so the error goes to the caller, which reports the database.
            raise
        except Exception as error:  # noqa: BLE001 (one broken channel must not stop the others)
            channel_report.error = f"{type(error).__name__}: {error}"
            logger.exception(
                "channel_failed channel=%s error=%s", channel.name, channel_report.error
            )
        finally:
            channel.close()
    return report


def _publish_channel(
    store: Store,
    channel: Channel,
    context: FeedContext,
    report: ChannelReport,
    *,
    worker: str,
    now: datetime,
) -> None:
    with store.session() as session:
        due = ledger.due_notice_ids(session, channel.name, now=now)
    logger.info("channel_started channel=%s due=%d worker=%s", channel.name, len(due), worker)

    if not _run_batches(store, channel, context, report, due, _deliver_one, worker=worker, now=now):
        return

    with store.session() as session:
        withdrawals = ledger.due_withdrawal_ids(session, channel.name, now=now)
    if withdrawals:
        logger.info("channel_withdrawals channel=%s due=%d", channel.name, len(withdrawals))
    if not _run_batches(
        store, channel, context, report, withdrawals, _withdraw_one, worker=worker, now=now
    ):
        return

    logger.info(
        "channel_finished channel=%s sent=%d edited=%d withdrawn=%d failed=%d permanent=%d "
        "skipped=%d",
        channel.name,
        report.sent,
        report.edited,
        report.withdrawn,
        report.failed,
        report.permanent,
        report.skipped,
    )


def _run_batches(
    store: Store,
    channel: Channel,
    context: FeedContext,
    report: ChannelReport,
    notice_ids: list[str],
    handle: Callable[..., bool],
    *,
    worker: str,
    now: datetime,
) -> bool:
    """Call `handle` for each notice in order; return False when the channel paused."""
    order = {notice_id: index for index, notice_id in enumerate(notice_ids)}
    for start in range(0, len(notice_ids), BATCH_SIZE):
        with store.session() as session:
            notices = session.scalars(
                select(Notice).where(Notice.id.in_(notice_ids[start : start + BATCH_SIZE]))
            ).all()
            views = sorted(load_views(session, notices), key=lambda view: order[view.id])

        for view in views:
            if not handle(store, channel, context, view, report, worker=worker, now=now):
                logger.info(
                    "channel_paused channel=%s seconds=%s remaining=%d",
                    channel.name,
                    report.paused_for,
                    len(notice_ids) - start,
                )
                return False
    return True


def _deliver_one(
    store: Store,
    channel: Channel,
    context: FeedContext,
    view: NoticeView,
    report: ChannelReport,
    *,
    worker: str,
    now: datetime,
) -> bool:
    """Deliver one notice version; return False when the channel must stop for this run."""
    notice = view.notice
    delivery_claim = ledger.claim(
        store, channel.name, notice.id, notice.version, worker=worker, now=now
    )
    if delivery_claim is None:
        report.skipped += 1
        return True

    message = outgoing(view, context)
    delivered, keep_going = _call_claimed(
        store, delivery_claim, report, lambda: channel.deliver(message, delivery_claim), now=now
    )
    if not delivered:
        return keep_going

    if delivery_claim.previous_remote_id:
        report.edited += 1
    else:
        report.sent += 1
    return _keep_going(channel, report)


def _withdraw_one(
    store: Store,
    channel: Channel,
    context: FeedContext,
    view: NoticeView,
    report: ChannelReport,
    *,
    worker: str,
    now: datetime,
) -> bool:
    """Mark one withdrawn notice on the platform; return False when the channel must stop."""
    notice = view.notice
    ledger_channel = ledger.withdrawal_channel(channel.name)
    delivery_claim = ledger.claim(
        store, ledger_channel, notice.id, notice.version, worker=worker, now=now
    )
    if delivery_claim is None:
        report.skipped += 1
        return True

    remote_id = ledger.last_remote_id(store, channel.name, notice.id)
    message = outgoing(view, context)
    withdrawn, keep_going = _call_claimed(
        store, delivery_claim, report, lambda: channel.withdraw(message, delivery_claim, remote_id), now=now
    )
    if not withdrawn:
        return keep_going

    report.withdrawn += 1
    return _keep_going(channel, report)


def _call_claimed(
    store: Store,
    delivery_claim: ledger.Claim,
    report: ChannelReport,
    call: Callable[[], str | None],
    *,
    now: datetime,
) -> tuple[bool, bool]:
    """Make the platform call of a claimed delivery and record its outcome in the ledger.

    Returns (True, True) when the call succeeded, or (False, keep_going) after a DeliveryError.
    A store error is raised as it is; any other error is recorded as a failure and raised.
    """
    try:
        remote_id = call()
    except DeliveryError as error:
        return False, _record_failure(store, delivery_claim, error, report, now=now)
    except SQLAlchemyError:
        raise
    except Exception as error:
        ledger.record_failure(store, delivery_claim, error, now=now)
        report.failed += 1
        raise

    ledger.record_sent(store, delivery_claim, remote_id, now=now)
    return True, True


def _record_failure(
    store: Store,
    delivery_claim: ledger.Claim,
    error: DeliveryError,
    report: ChannelReport,
    *,
    now: datetime,
) -> bool:
    """Record a failed call; return False when the platform asked to wait before the next one."""
    status = ledger.record_failure(store, delivery_claim, error, now=now)
    if status == ledger.PERMANENT:
        report.permanent += 1
        return True
    report.failed += 1
    if error.retry_after is not None:
        report.paused_for = error.retry_after
        return False
    return True


def _keep_going(channel: Channel, report: ChannelReport) -> bool:
    if channel.pause_seconds is not None:
        report.paused_for = channel.pause_seconds
        return False
    return True
