"""The `noticeboard` command line.

Exit status: 0 on success, 1 when every source of a run failed, 2 when the command could not start
(invalid catalog, unknown source id, unusable database or replay manifest). Errors are one line
that names the thing and what to do.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from noticeboard.context import PACKAGED_CATALOG, AppContext
from noticeboard.errors import CatalogError, NoticeboardError, StoreUnavailableError
from noticeboard.settings import mask_url
from noticeboard.store import Store

logger = logging.getLogger(__name__)

EXIT_ALL_FAILED = 1
EXIT_UNUSABLE = 2


def _use_catalog(ctx: click.Context, _parameter: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.find_object(AppContext).catalog_path = value


catalog_option = click.option(
    "--catalog",
    type=click.Path(path_type=Path),
    default=None,
    expose_value=False,
    callback=_use_catalog,
    help="Catalog file to use instead of the packaged one (also accepted before the command).",
)


@click.group()
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Catalog file to use instead of the packaged one.",
)
@click.option("-v", "--verbose", count=True, help="Log more: -v for info, -vv for debug.")
@click.pass_context
def cli(ctx: click.Context, catalog_path: Path | None, verbose: int) -> None:
    """Collect, normalise, translate, tag and publish notices of public authorities."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    app = AppContext.from_env(catalog_path)
    ctx.obj = app
    ctx.call_on_close(app.close)


@cli.command()
@catalog_option
@click.option("--source", "source_ids", multiple=True, help="Source id to run (repeatable); default all.")
@click.option(
    "--replay",
    type=click.Path(path_type=Path),
    default=None,
    help="Replay manifest: serve every request from recorded responses, never the network.",
)
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Folder for the feed files.")
@click.pass_obj
def run(app: AppContext, source_ids: tuple[str, ...], replay: Path | None, output: Path | None) -> None:
    """Run one pass: fetch, normalise, detect language, translate, tag, publish."""
    from noticeboard.pipeline import Runner

    settings = app.settings if output is None else app.settings.replace(output_dir=output)
    catalog = app.catalog()
    catalog.select(list(source_ids))
    if replay is not None:
        from noticeboard.replay import load_manifest

        load_manifest(replay)
    runner = Runner(settings=settings, store=app.open_store(), catalog=catalog, replay=replay)

    console = Console(stderr=True)
    try:
        if console.is_terminal:
            with console.status("starting") as status:
                report = runner.run(list(source_ids), progress=lambda step, what: status.update(f"{step}: {what}"))
        else:
            report = runner.run(list(source_ids))
    except SQLAlchemyError as error:
        raise StoreUnavailableError(
            f"the database {runner.store.url} failed during the run: {_first_line(error)}; "
            "what was stored before is kept, so run again once the database is reachable"
        ) from error

    _print_run_table(report)
    if report.all_failed:
        click.echo("error: every source failed; see the reasons above", err=True)
        sys.exit(EXIT_ALL_FAILED)


def _print_run_table(report: Any) -> None:
    table = Table(title="noticeboard run")
    for column in ("source", "status", "fetched", "new", "updated", "unchanged", "failed", "reason"):
        table.add_column(column, justify="right" if column in ("fetched", "new", "updated", "unchanged", "failed") else "left")
    for row in report.sources.values():
        table.add_row(
            row.source_id, row.status, str(row.fetched), str(row.new), str(row.updated),
            str(row.unchanged), str(row.failed), row.reason,
        )
    Console(width=200).print(table)


@cli.group(invoke_without_command=True)
@catalog_option
@click.pass_context
def sources(ctx: click.Context) -> None:
    """List the catalog's sources with their health."""
    if ctx.invoked_subcommand is not None:
        return
    from sqlalchemy import select

    from noticeboard.store.tables import SourceState

    app: AppContext = ctx.obj
    catalog = app.catalog()
    store = app.open_store()
    with store.session() as session:
        states = {state.source_id: state for state in session.scalars(select(SourceState))}

    table = Table(title=f"sources in {catalog.path}")
    for column in ("id", "country", "kind", "authority", "health", "last success", "failures", "last error"):
        table.add_column(column)
    for source in catalog.sources.values():
        state = states.get(source.id)
        table.add_row(
            source.id,
            source.country,
            source.kind,
            source.authority,
            (state.last_status if state else None) or "never fetched",
            state.last_success_at.isoformat(timespec="minutes") if state and state.last_success_at else "-",
            str(state.consecutive_failures) if state else "0",
            _health_detail(state),
        )
    Console(width=220).print(table)


def _health_detail(state: Any) -> str:
    if state is None:
        return ""
    detail = state.last_error or ""
    if state.next_fetch_after is not None and state.consecutive_failures:
        detail = f"backing off until {state.next_fetch_after.isoformat(timespec='minutes')}; {detail}"
    return detail[:300]


@sources.command("check")
@catalog_option
@click.option("--source", "source_ids", multiple=True, help="Source id to check (repeatable); default all.")
@click.option("--replay", type=click.Path(path_type=Path), default=None, help="Replay manifest that serves the requests.")
@click.pass_obj
def sources_check(app: AppContext, source_ids: tuple[str, ...], replay: Path | None) -> None:
    """Fetch each source once and report what it found, without storing notices."""
    from connectors import check_source
    from noticeboard.pipeline import FAILED_STATUSES, Runner

    runner = Runner(settings=app.settings, store=app.open_store(), catalog=app.catalog(), replay=replay)
    fetcher = runner.fetcher()
    table = Table(title="source check")
    for column in ("id", "status", "items", "detail"):
        table.add_column(column)
    outcomes = []
    for source in runner.catalog.select(list(source_ids)):
        result = check_source(source, fetcher, app.settings)
        outcomes.append(result.status)
        detail = result.error or "; ".join(result.warnings)
        table.add_row(source.id, result.status, str(result.fetched_items), detail)
    Console(width=200).print(table)
    if outcomes and all(status in FAILED_STATUSES for status in outcomes):
        click.echo("error: every checked source failed; see the details above", err=True)
        sys.exit(EXIT_ALL_FAILED)


@cli.command()
@catalog_option
@click.option("--format", "output_format", type=click.Choice(["table", "jsonl"]), default="table", help="Output format.")
@click.option("--source", "source_ids", multiple=True, help="Only notices of this source (repeatable).")
@click.option("--limit", type=int, default=None, help="Print at most this many notices.")
@click.option("--explain", "explain_id", default=None, help="Show why notice ID has its tags and language.")
@click.pass_obj
def notices(app: AppContext, output_format: str, source_ids: tuple[str, ...], limit: int | None, explain_id: str | None) -> None:
    """List stored notices, newest first."""
    from sqlalchemy import select

    from noticeboard.store.tables import Notice
    from noticeboard.views import export_record, iter_notice_views

    store = app.open_store()
    zones = _source_zones(app)
    if explain_id:
        _explain(store, explain_id)
        return

    statement = select(Notice).order_by(Notice.published_at.desc().nulls_last(), Notice.id)
    if source_ids:
        _check_source_ids(app, store, source_ids)
        statement = statement.where(Notice.source_id.in_(source_ids))
    if limit is not None:
        statement = statement.limit(limit)

    with store.session() as session:
        views = iter_notice_views(session, statement)
        if output_format == "jsonl":
            for view in views:
                record = export_record(view, zones.get(view.notice.source_id))
                click.echo(json.dumps(record, ensure_ascii=False))
            return

        table = Table(title="notices")
        for column in ("id", "source", "published", "lang", "regions", "topics", "title"):
            table.add_column(column)
        for view in views:
            table.add_row(
                view.id[:12], view.notice.source_id, view.published_iso(zones.get(view.notice.source_id)) or "-",
                view.notice.language or "-",
                ",".join(view.regions), ",".join(view.topics), view.notice.title[:70],
            )
        Console(width=220).print(table)


def _source_zones(app: AppContext) -> dict[str, str]:
    """Time zones of the catalog's sources; empty when the catalog cannot be read."""
    try:
        return {source.id: source.timezone for source in app.catalog().sources.values()}
    except NoticeboardError as error:
        logger.warning("catalog_unavailable error=%s; times are shown in UTC", error)
        return {}


def _explain(store: Any, notice_id: str) -> None:
    from sqlalchemy import select

    from noticeboard.store.tables import Notice
    from noticeboard.views import load_views

    with store.session() as session:
        matches = session.scalars(select(Notice).where(Notice.id.startswith(notice_id)).limit(2)).all()
        if len(matches) != 1:
            problem = "no notice" if not matches else "more than one notice"
            raise click.ClickException(f"{problem} has an id starting with {notice_id!r}; run `noticeboard notices` to list ids")
        view = load_views(session, matches)[0]

    notice = view.notice
    click.echo(f"notice {notice.id} ({notice.source_id}) version {notice.version}")
    click.echo(f"  title: {notice.title}")
    click.echo(
        f"  language: {notice.language} (method {notice.language_method}, "
        f"confidence {notice.language_confidence if notice.language_confidence is not None else '-'})"
    )
    click.echo(
        f"  published: {view.published_iso() or '-'} (raw {notice.published_raw!r}, precision "
        f"{notice.published_precision}, zone {'assumed' if notice.published_zone_assumed else 'given'})"
    )
    for tag in view.tag_rules:
        detail = f": {tag.detail}" if tag.detail else ""
        click.echo(f"  {tag.kind} {tag.value} <- {tag.rule}{detail}")


@cli.command()
@catalog_option
@click.option("--pending", is_flag=True, required=True, help="Retry every pending translation that is due.")
@click.option("--limit", type=int, default=None, help="Translate at most this many notices.")
@click.pass_obj
def translate(app: AppContext, pending: bool, limit: int | None) -> None:  # noqa: ARG001
    """Translate notices whose translation is still pending."""
    from noticeboard.pipeline import Runner

    runner = Runner(settings=app.settings, store=app.open_store(), catalog=app.catalog())
    report = runner.translate_pending(limit=limit)
    click.echo(
        f"translated={report.translated} deferred={report.deferred} failed={report.failed} "
        f"skipped={report.skipped} provider_calls={report.provider_calls} memory_hits={report.memory_hits}"
    )
    if report.deferred_until is not None:
        click.echo(f"deferred translations are retried after {report.deferred_until.isoformat(timespec='seconds')}")


@cli.command()
@click.pass_obj
def migrate(app: AppContext) -> None:
    """Create or upgrade the database schema (every command also does this itself)."""
    store = app.open_store()
    click.echo(f"database {store.url} is up to date")


@cli.command("config")
@click.pass_obj
def show_config(app: AppContext) -> None:
    """Print the settings in use, with secrets masked."""
    shown = app.settings.redacted()
    shown["database_url"] = mask_url(app.database_url)
    shown["catalog_path"] = str(app.catalog_path or app.settings.catalog_path or PACKAGED_CATALOG)
    for name, value in shown.items():
        click.echo(f"{name} = {value}")


def _register_plugins() -> None:
    """Add the commands that the publisher packages define."""
    from publishers.cli_commands import deliveries, feed, serve

    for command in (feed, serve, deliveries):
        cli.add_command(command)

    from publishers.newsletter.cli import newsletter_group, subscribers_group

    cli.add_command(subscribers_group)
    cli.add_command(newsletter_group)


def _check_source_ids(app: AppContext, store: Store, source_ids: tuple[str, ...]) -> None:
    """Raise CatalogError for an id that is neither in the catalog nor on any stored notice."""
    from sqlalchemy import select

    from noticeboard.store.tables import Notice

    unknown = [source_id for source_id in source_ids if source_id not in app.catalog().sources]
    if not unknown:
        return
    with store.session() as session:
        query = select(Notice.source_id).where(Notice.source_id.in_(unknown)).distinct()
        stored = set(session.scalars(query))
    missing = [source_id for source_id in unknown if source_id not in stored]
    if missing:
        raise CatalogError(
            f"unknown source id {', '.join(missing)}: not in the catalog and on no stored "
            "notice; run `noticeboard sources` to list the ids"
        )


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def main() -> None:
    """Entry point of the `noticeboard` script."""
    try:
        _register_plugins()
    except ImportError as error:
        logger.debug("plugin commands unavailable: %s", error)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_UNUSABLE)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_UNUSABLE)
    except NoticeboardError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_UNUSABLE)
    except SQLAlchemyError as error:
        click.echo(f"error: the database failed: {_first_line(error)}; check NOTICEBOARD_DATABASE_URL and the server", err=True)
        sys.exit(EXIT_UNUSABLE)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
