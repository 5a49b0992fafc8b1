"""The `serve`, `deliveries` and `feed` commands, registered by `noticeboard.cli`.

Each command takes settings, the store and the catalog from `ctx.obj`, a
`noticeboard.context.AppContext`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from sqlalchemy import func, select

from noticeboard.context import AppContext
from noticeboard.errors import CatalogError
from noticeboard.store.tables import Delivery
from publishers import ledger

logger = logging.getLogger(__name__)

ERROR_PREVIEW_CHARS = 120


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port to listen on.",
)
@click.pass_obj
def serve(app: AppContext, host: str, port: int) -> None:
    """Serve the read-only HTTP API and the feed files."""
    import uvicorn

    from noticeboard.web import create_app

    catalog = None
    try:
        catalog = app.catalog()
    except CatalogError as error:
        logger.warning("serve_catalog_unavailable error=%s authors=source_ids", error)
    application = create_app(app.open_store(), app.settings, catalog)
    click.echo(f"serving http://{host}:{port}/ (feeds from {app.settings.output_dir})", err=True)
    # uvicorn's access log would print the signed tokens of newsletter links; the app logs
    # requests itself with tokens masked.
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=False)


@click.command()
@click.option(
    "--status",
    type=click.Choice(ledger.STATUSES),
    default=None,
    help="Show only rows with this status.",
)
@click.option(
    "--channel",
    default=None,
    help="Show only this channel (mastodon, discourse, webhook, or e.g. mastodon:withdrawn).",
)
@click.option("--notice", "notice_id", default=None, help="Show only this notice id.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1),
    help="Maximum rows to show, newest first.",
)
@click.pass_obj
def deliveries(
    app: AppContext, status: str | None, channel: str | None, notice_id: str | None, limit: int
) -> None:
    """List the delivery ledger; permanent failures are shown with their full error."""
    store = app.open_store()
    conditions = []
    if status:
        conditions.append(Delivery.status == status)
    if channel:
        conditions.append(Delivery.channel == channel)
    if notice_id:
        conditions.append(Delivery.notice_id == notice_id)

    with store.session() as session:
        counts = session.execute(
            select(Delivery.channel, Delivery.status, func.count())
            .where(*conditions)
            .group_by(Delivery.channel, Delivery.status)
            .order_by(Delivery.channel, Delivery.status)
        ).all()
        rows = session.scalars(
            select(Delivery)
            .where(*conditions)
            .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
            .limit(limit)
        ).all()

    if not counts:
        click.echo("no deliveries match")
        return
    click.echo("  ".join(f"{name}/{state}={count}" for name, state, count in counts))
    click.echo(
        f"{'channel':<10} {'notice':<24} {'ver':>3} {'status':<10} {'tries':>5} {'updated':<20} remote / error"
    )
    for row in rows:
        detail = row.remote_id or ""
        if row.last_error:
            error = (
                row.last_error
                if row.status == ledger.PERMANENT
                else row.last_error[:ERROR_PREVIEW_CHARS]
            )
            detail = error
        if row.status == ledger.FAILED and row.next_attempt_at:
            detail = f"retry at {row.next_attempt_at:%Y-%m-%d %H:%M}Z: {detail}"
        click.echo(
            f"{row.channel:<10} {row.notice_id[:24]:<24} {row.version:>3} {row.status:<10} "
            f"{row.attempts:>5} {row.updated_at:%Y-%m-%d %H:%M:%S}  {detail}"
        )


@click.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write the feed files to (default: NOTICEBOARD_OUTPUT_DIR or ./public).",
)
@click.pass_obj
def feed(app: AppContext, output: Path | None) -> None:
    """Write the JSON Feed and Atom files of every selection."""
    from publishers.feeds import write_feeds

    catalog = None
    try:
        catalog = app.catalog()
    except CatalogError as error:
        logger.warning("feed_catalog_unavailable error=%s authors=source_ids", error)
    folder = output or app.settings.output_dir
    report = write_feeds(app.open_store(), app.settings, folder, catalog=catalog)
    click.echo(
        f"{folder}: {report.items} notices in {report.feeds} feeds, {report.pages} pages; "
        f"{report.written} files written, {report.unchanged} unchanged, {report.removed} removed"
        + (f", {report.skipped} notices skipped (see log)" if report.skipped else "")
    )
