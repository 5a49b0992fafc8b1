"""Operator commands: `noticeboard subscribers ...` and `noticeboard newsletter send`.

The lead registers both groups in `noticeboard/cli.py`. Commands print addresses to stdout for the
operator who asked, but never log them: logs name subscriber ids only.
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from noticeboard.context import AppContext
from publishers.newsletter import send_confirmation, send_digests, send_immediate
from publishers.newsletter.delivery import MailReport
from publishers.newsletter.subscribers import (
    PENDING,
    InvalidAddressError,
    Preferences,
    confirm,
    count_by_preference,
    find_by_address,
    normalise_address,
    remove,
    sign_up,
)
from publishers.newsletter.tables import Subscriber
from publishers.newsletter.vocabulary import FREQUENCIES, LANGUAGES, PreferenceError

EXPORT_COLUMNS = (
    "email",
    "status",
    "language",
    "frequency",
    "regions",
    "topics",
    "created_at",
    "confirmed_at",
)


@click.group("subscribers")
def subscribers_group() -> None:
    """List, add, remove, export and count newsletter subscribers."""


@subscribers_group.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "active", "unsubscribed", "suspended"]),
    default=None,
    help="Show only subscribers with this status.",
)
@click.pass_obj
def list_command(app: AppContext, status: str | None) -> None:
    """Print one subscriber per line: id, status, frequency, language, address."""
    with app.open_store().session() as session:
        subscribers = _subscribers(session, status)
        if not subscribers:
            # On standard error, so that scripts reading the list still read nothing.
            click.echo(f"no subscribers{f' with status {status}' if status else ''}", err=True)
        for subscriber in subscribers:
            click.echo(
                f"{subscriber.id}\t{subscriber.status}\t{subscriber.frequency}\t"
                f"{subscriber.language}\t{subscriber.email}"
            )


@subscribers_group.command("add")
@click.argument("address")
@click.option(
    "--language",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="Interface language of the mails.",
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    help="Region code such as FI or FI-18 (repeatable); none means all.",
)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="Topic slug such as housing (repeatable); none means all.",
)
@click.option(
    "--frequency",
    type=click.Choice(FREQUENCIES),
    default="daily",
    show_default=True,
    help="How often mail is sent.",
)
@click.option(
    "--confirmed",
    is_flag=True,
    help="Mark as confirmed without a confirmation mail; only with consent recorded elsewhere.",
)
@click.pass_obj
def add_command(
    app: AppContext,
    address: str,
    language: str,
    regions: tuple[str, ...],
    topics: tuple[str, ...],
    frequency: str,
    confirmed: bool,
) -> None:
    """Add a subscriber and mail the confirmation link (unless --confirmed)."""
    try:
        preferences = Preferences.checked(
            language=language, regions=regions, topics=topics, frequency=frequency
        )
    except (PreferenceError, InvalidAddressError) as error:
        raise click.UsageError(str(error)) from error

    store = app.open_store()
    now = datetime.now(UTC)
    try:
        with store.session() as session:
            subscriber = sign_up(session, address, preferences, now=now).subscriber
            if confirmed:
                confirm(subscriber, now=now)
            session.flush()
            session.expunge(subscriber)
    except InvalidAddressError as error:
        raise click.UsageError(str(error)) from error

    if subscriber.status == PENDING:
        report = send_confirmation(store, app.settings, subscriber, now=now)
        if report.sent == 0:
            raise click.ClickException(
                f"subscriber {subscriber.id} added, but the confirmation mail failed; "
                "check the SMTP settings and run `subscribers add` again"
            )
        click.echo(f"subscriber {subscriber.id} added; confirmation mail sent")
        return
    click.echo(f"subscriber {subscriber.id} is {subscriber.status}")


@subscribers_group.command("remove")
@click.argument("address")
@click.pass_obj
def remove_command(app: AppContext, address: str) -> None:
    """Delete a subscriber and their mail ledger, leaving no personal data."""
    try:
        normalised = normalise_address(address)
    except InvalidAddressError:
        # Rows stored before a validation rule was tightened must stay removable.
        normalised = address.strip().lower()
    with app.open_store().session() as session:
        subscriber = find_by_address(session, normalised)
        if subscriber is None:
            raise click.ClickException("no subscriber has this address; check the spelling")
        subscriber_id = subscriber.id
        remove(session, subscriber)
    click.echo(f"subscriber {subscriber_id} removed")


@subscribers_group.command("export")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="CSV file to write; standard output by default.",
)
@click.option(
    "--status",
    type=click.Choice(["pending", "active", "unsubscribed", "suspended"]),
    default=None,
    help="Export only subscribers with this status.",
)
@click.pass_obj
def export_command(app: AppContext, output: Path | None, status: str | None) -> None:
    """Write subscribers as CSV; regions and topics are separated by spaces."""
    with app.open_store().session() as session:
        rows = _subscribers(session, status)
        if output is None:
            _write_csv(sys.stdout, rows)
            return
        with output.open("w", newline="", encoding="utf-8") as handle:
            _write_csv(handle, rows)
    click.echo(f"exported {len(rows)} subscribers to {output}", err=True)


@subscribers_group.command("counts")
@click.pass_obj
def counts_command(app: AppContext) -> None:
    """Print active subscribers per region, topic, frequency and language (`*` means all)."""
    with app.open_store().session() as session:
        counts = count_by_preference(session)
    for kind, counter in counts.items():
        for value, count in sorted(counter.items()):
            click.echo(f"{kind}\t{value}\t{count}")


@click.group("newsletter")
def newsletter_group() -> None:
    """Send newsletter mails."""


@newsletter_group.command("send")
@click.option(
    "--frequency",
    type=click.Choice(FREQUENCIES),
    required=True,
    help="immediate: new notices now; daily or weekly: this period's digests.",
)
@click.option(
    "--dry-run",
    "dry_run_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write the mails as .eml files to this folder instead of sending them.",
)
@click.pass_obj
def send_command(app: AppContext, frequency: str, dry_run_dir: Path | None) -> None:
    """Send immediate mails or digests to confirmed subscribers.

    Exits with status 1 when mails were postponed because the SMTP server was unreachable or
    asked to try later. A scheduler then shows the run as failed, and the next run sends them.
    """
    store = app.open_store()
    now = datetime.now(UTC)
    report: MailReport
    if frequency == "immediate":
        report = send_immediate(store, app.settings, now=now, dry_run_dir=dry_run_dir)
    else:
        report = send_digests(store, app.settings, frequency, now=now, dry_run_dir=dry_run_dir)
    click.echo(
        f"sent={report.sent} failed={report.failed} retry={report.retry} skipped={report.skipped} "
        f"deferred={report.deferred} suspended={report.suspended} files={len(report.files)}"
    )
    if report.retry:
        click.echo(f"error: mails postponed: {report.retry}; the log names the SMTP error", err=True)
        sys.exit(1)


def _subscribers(session: Session, status: str | None) -> list[Subscriber]:
    statement = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        statement = statement.where(Subscriber.status == status)
    return list(session.scalars(statement))


def _write_csv(handle: IO[str], rows: list[Subscriber]) -> None:
    # NOTE: a valid address may start with "=", "+" or "-", which spreadsheet programs run as a
    # formula. The cells are written unchanged so the file imports back exactly.
    writer = csv.writer(handle)
    writer.writerow(EXPORT_COLUMNS)
    for subscriber in rows:
        writer.writerow(
            [
                subscriber.email,
                subscriber.status,
                subscriber.language,
                subscriber.frequency,
                " ".join(subscriber.regions),
                " ".join(subscriber.topics),
                subscriber.created_at.isoformat(),
                subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else "",
            ]
        )


__all__ = ["newsletter_group", "subscribers_group"]
