"""The newsletter publisher: double opt-in subscriptions, immediate mails and digests.

Public entry points:

- `send_immediate(store, settings, now=...)` mails new matching notices to immediate subscribers;
- `send_digests(store, settings, "daily" | "weekly", now=...)` mails this period's digests;
- `send_confirmation` and `send_manage_link` mail a subscriber their signed links;
- `publishers.newsletter.web.routes(store, settings)` returns the pages for `noticeboard serve`.

Each run returns a `MailReport`. With `dry_run_dir` the mails are written there as `.eml` files
and neither the ledger nor the SMTP server is touched.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter.delivery import MailReport, deliver_plan, write_plan
from publishers.newsletter.digests import DIGEST_FREQUENCIES, Plan, plan_digests, plan_immediate
from publishers.newsletter.notify import send_confirmation, send_manage_link
from publishers.newsletter.sender import SmtpSender
from publishers.newsletter.tokens import TokenSigner

__all__ = ["MailReport", "send_confirmation", "send_digests", "send_immediate", "send_manage_link"]

logger = logging.getLogger(__name__)


def send_immediate(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    dry_run_dir: Path | None = None,
    sender: SmtpSender | None = None,
) -> MailReport:
    """Mail each immediate subscriber the new ready notices matching their preferences."""
    signer = TokenSigner.from_settings(settings)
    logger.info("newsletter started frequency=immediate dry_run=%s", dry_run_dir is not None)
    with store.session() as session:
        plan = plan_immediate(session, settings, signer, now=now)
    report = _run(store, settings, plan, now=now, dry_run_dir=dry_run_dir, sender=sender)
    _log_report("immediate", report)
    return report


def send_digests(
    store: Store,
    settings: Settings,
    frequency: str,
    *,
    now: datetime,
    dry_run_dir: Path | None = None,
    sender: SmtpSender | None = None,
) -> MailReport:
    """Mail this period's daily or weekly digest to each subscriber with notices to show."""
    if frequency not in DIGEST_FREQUENCIES:
        raise ValueError(f"digest frequency {frequency!r} is invalid; use daily or weekly")
    signer = TokenSigner.from_settings(settings)
    logger.info("newsletter started frequency=%s dry_run=%s", frequency, dry_run_dir is not None)
    with store.session() as session:
        plan = plan_digests(session, settings, signer, frequency, now=now)
    report = _run(store, settings, plan, now=now, dry_run_dir=dry_run_dir, sender=sender)
    _log_report(frequency, report)
    return report


def _run(
    store: Store,
    settings: Settings,
    plan: Plan,
    *,
    now: datetime,
    dry_run_dir: Path | None,
    sender: SmtpSender | None,
) -> MailReport:
    if not settings.public_base_url.startswith("https://"):
        # RFC 8058 one-click needs an https List-Unsubscribe URL, so providers ignore this one.
        logger.warning(
            "newsletter unsubscribe_url_not_https base_url=%s "
            "(set NOTICEBOARD_PUBLIC_BASE_URL to the https address of `noticeboard serve`)",
            settings.public_base_url,
        )
    if dry_run_dir is not None:
        return write_plan(plan, dry_run_dir)
    if not plan.mails and not plan.deferred:
        return MailReport()
    own_sender = sender is None
    active = sender or SmtpSender(settings)
    try:
        return deliver_plan(store, plan, active, now=now)
    finally:
        if own_sender:
            active.close()


def _log_report(frequency: str, report: MailReport) -> None:
    logger.info(
        "newsletter finished frequency=%s sent=%d failed=%d retry=%d skipped=%d deferred=%d "
        "suspended=%d files=%d",
        frequency,
        report.sent,
        report.failed,
        report.retry,
        report.skipped,
        report.deferred,
        report.suspended,
        len(report.files),
    )
