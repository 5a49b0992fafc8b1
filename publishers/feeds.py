"""Writing the JSON Feed and Atom files: everything, and per region, topic and language.

One query pass streams the published notices (newest first) and hands each rendered item to the
writers of the selections it belongs to:

    feed.json, feed.xml                 every published notice, in its own language
    regions/<code>.json, .xml           notices tagged with that region
    topics/<slug>.json, .xml            notices tagged with that topic
    languages/<code>.json, .xml         notices written in or translated into that language,
                                        shown in that language

Each selection is split into pages of `settings.feed_page_size` items (`feed.json`,
`feed-2.json`, ...; `regions/FI.json`, `regions/FI.2.json`, ...) linked by `next_url` (JSON) and
`rel="next"` (Atom). A file is replaced
atomically (temporary file, then `os.replace`) and only when its bytes changed; files of
selections or pages that no longer exist are removed. Memory contains one page per open selection,
not the store.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noticeboard.catalog import Catalog
from noticeboard.errors import OutputError
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.views import NoticeView
from publishers import atom, jsonfeed
from publishers.jsonfeed import FeedContext
from publishers.selection import iter_published_views

logger = logging.getLogger(__name__)

FEED_TITLE = "Noticeboard"
ROOT_STEM = "feed"
GROUP_FOLDERS = ("regions", "topics", "languages")
FEED_SUFFIXES = (".json", ".xml")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ROOT_PAGE = re.compile(r"^feed-\d+\.(json|xml)$")
QUERY_BATCH_SIZE = 1000


@dataclass
class FeedReport:
    """Counts of one `write_feeds` call."""

    items: int = 0
    skipped: int = 0
    feeds: int = 0
    pages: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    paths: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the counts for run summaries (without the list of paths)."""
        return {
            "items": self.items,
            "skipped": self.skipped,
            "feeds": self.feeds,
            "pages": self.pages,
            "written": self.written,
            "unchanged": self.unchanged,
            "removed": self.removed,
        }


@dataclass(frozen=True)
class Selection:
    """One feed: its path stem under the output folder, its title and its display language."""

    stem: str
    title: str
    language: str | None = None


@dataclass(frozen=True)
class RenderedItem:
    """One item serialised for both formats, with its modification time for Atom `updated`."""

    json: bytes
    atom: bytes
    updated: str


class FeedFiles:
    """Writes files atomically and only when changed, and remembers which ones it touched."""

    def __init__(self, output_dir: Path, report: FeedReport) -> None:
        self.output_dir = output_dir
        self.report = report
        self.touched: set[Path] = set()

    def write(self, relative: str, data: bytes) -> None:
        """Replace the file at `relative` with `data` unless it already contains exactly those bytes."""
        path = self.output_dir / relative
        self.touched.add(path)
        if _same_bytes(path, data):
            self.report.unchanged += 1
            return

        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
        try:
            with handle:
                handle.write(data)
            os.chmod(handle.name, 0o644)
            os.replace(handle.name, path)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
        self.report.written += 1
        self.report.paths.append(relative)
        logger.debug("feed_file_written path=%s bytes=%d", relative, len(data))

    def remove_stale(self) -> None:
        """Delete feed files of pages and selections that this run did not produce."""
        candidates: list[Path] = []
        if self.output_dir.is_dir():
            candidates.extend(p for p in self.output_dir.iterdir() if ROOT_PAGE.match(p.name))
        for folder in GROUP_FOLDERS:
            directory = self.output_dir / folder
            if directory.is_dir():
                candidates.extend(p for p in directory.iterdir() if p.suffix in FEED_SUFFIXES)

        for path in candidates:
            if path not in self.touched and path.is_file():
                path.unlink()
                self.report.removed += 1
                logger.info("feed_file_removed path=%s", path.relative_to(self.output_dir))


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


class SelectionWriter:
    """Collects one selection's items into pages and writes each page in both formats.

    A full page is held back until the next item arrives, because only then is it known whether
    the page needs a link to a next one.
    """

    def __init__(
        self, selection: Selection, files: FeedFiles, context: FeedContext, page_size: int
    ) -> None:
        self.selection = selection
        self.files = files
        self.context = context
        self.page_size = page_size
        self.page_number = 1
        self.items: list[RenderedItem] = []

    def add(self, item: RenderedItem) -> None:
        """Append an item, writing the current page first when it is full."""
        if len(self.items) >= self.page_size:
            self._write_page(has_next=True)
            self.page_number += 1
            self.items = []
        self.items.append(item)

    def finish(self) -> None:
        """Write the last page (an empty feed when the selection has no items)."""
        self._write_page(has_next=False)

    def _page_path(self, number: int, suffix: str) -> str:
        if number == 1:
            return self.selection.stem + suffix
        if self.selection.stem == ROOT_STEM:
            return f"{ROOT_STEM}-{number}{suffix}"
        # A dot, not a hyphen, because region codes contain hyphens: page 11 of `regions/FI`
        # would otherwise be the file of region `FI-11`.
        return f"{self.selection.stem}.{number}{suffix}"

    def _write_page(self, *, has_next: bool) -> None:
        json_path = self._page_path(self.page_number, ".json")
        atom_path = self._page_path(self.page_number, ".xml")
        json_next = atom_next = None
        if has_next:
            json_next = self.context.feed_url(self._page_path(self.page_number + 1, ".json"))
            atom_next = self.context.feed_url(self._page_path(self.page_number + 1, ".xml"))

        meta: dict[str, Any] = {
            "title": self.selection.title,
            "home_page_url": self.context.base_url + "/",
            "feed_url": self.context.feed_url(json_path),
        }
        if self.selection.language:
            meta["language"] = self.selection.language
        self.files.write(
            json_path, jsonfeed.render_page(meta, [i.json for i in self.items], json_next)
        )

        updated = max((item.updated for item in self.items), default=None)
        atom_meta = {**meta, "feed_url": self.context.feed_url(atom_path)}
        atom_page = atom.render_page(atom_meta, [i.atom for i in self.items], updated, atom_next)
        self.files.write(atom_path, atom_page)
        self.files.report.pages += 1


class FeedDispatcher:
    """Sends each notice to the writers of the selections it belongs to, opening them on demand."""

    def __init__(self, files: FeedFiles, context: FeedContext, page_size: int) -> None:
        self.files = files
        self.context = context
        self.page_size = page_size
        self.writers: dict[str, SelectionWriter] = {}

    def writer(self, selection: Selection) -> SelectionWriter:
        """Return the open writer of a selection, creating it on first use."""
        found = self.writers.get(selection.stem)
        if found is None:
            found = SelectionWriter(selection, self.files, self.context, self.page_size)
            self.writers[selection.stem] = found
        return found

    def dispatch(self, view: NoticeView) -> None:
        """Render a notice once per language it is shown in and add it to its selections."""
        original = self._render(view, None)
        self.writer(Selection(ROOT_STEM, FEED_TITLE)).add(original)

        for region in view.regions:
            selection = _group_selection("regions", region, f"{FEED_TITLE}: region {region}")
            if selection:
                self.writer(selection).add(original)
        for topic in view.topics:
            selection = _group_selection("topics", topic, f"{FEED_TITLE}: topic {topic}")
            if selection:
                self.writer(selection).add(original)

        for language in jsonfeed.item_languages(view):
            selection = _group_selection(
                "languages", language, f"{FEED_TITLE}: notices in {language}", language
            )
            if selection is None:
                continue
            rendered = (
                original if language == view.notice.language else self._render(view, language)
            )
            self.writer(selection).add(rendered)

    def finish(self) -> None:
        """Write the last page of every open selection."""
        for writer in self.writers.values():
            writer.finish()

    def _render(self, view: NoticeView, language: str | None) -> RenderedItem:
        item = jsonfeed.build_item(view, self.context, language)
        return RenderedItem(
            json=jsonfeed.dumps_item(item),
            atom=atom.render_entry(item, self.context.base_url),
            updated=item["date_modified"],
        )


def _group_selection(
    folder: str, name: str, title: str, language: str | None = None
) -> Selection | None:
    if not SAFE_NAME.match(name):
        logger.warning("feed_name_skipped folder=%s name=%r reason=unsafe_file_name", folder, name)
        return None
    return Selection(f"{folder}/{name}", title, language)


def write_feeds(
    store: Store,
    settings: Settings,
    output_dir: Path,
    *,
    catalog: Catalog | None = None,
) -> FeedReport:
    """Write every JSON Feed and Atom file under `output_dir` in one pass over the store.

    A notice that cannot be rendered is logged and skipped; the other files are still written.
    Raises OutputError when the folder cannot be created or written.
    """
    output_dir = Path(output_dir)
    try:
        return _write_feeds(store, settings, output_dir, catalog)
    except OSError as error:
        raise OutputError(
            f"cannot write the feeds to {output_dir}: {error.strerror or error}; "
            "set NOTICEBOARD_OUTPUT_DIR or --output to a writable folder"
        ) from error


def _write_feeds(store: Store, settings: Settings, output_dir: Path, catalog: Catalog | None) -> FeedReport:
    output_dir.mkdir(parents=True, exist_ok=True)
    report = FeedReport()
    files = FeedFiles(output_dir, report)
    context = FeedContext.create(settings.public_base_url, catalog)
    page_size = max(1, settings.feed_page_size)
    dispatcher = FeedDispatcher(files, context, page_size)

    logger.info("feeds_started output=%s page_size=%d", output_dir, page_size)
    dispatcher.writer(Selection(ROOT_STEM, FEED_TITLE))
    for language in settings.translation_targets:
        selection = _group_selection(
            "languages", language, f"{FEED_TITLE}: notices in {language}", language
        )
        if selection:
            dispatcher.writer(selection)

    with store.session() as session:
        for view in iter_published_views(session, batch_size=QUERY_BATCH_SIZE):
            try:
                dispatcher.dispatch(view)
            except (ValueError, TypeError, KeyError) as error:
                report.skipped += 1
                logger.error(
                    "feed_item_skipped notice=%s source=%s error=%s",
                    view.id,
                    view.notice.source_id,
                    error,
                )
                continue
            report.items += 1
            if report.items % 10_000 == 0:
                logger.debug("feeds_progress items=%d", report.items)

    dispatcher.finish()
    files.remove_stale()
    report.feeds = len(dispatcher.writers)
    logger.info(
        "feeds_finished items=%d skipped=%d feeds=%d pages=%d written=%d unchanged=%d removed=%d",
        report.items,
        report.skipped,
        report.feeds,
        report.pages,
        report.written,
        report.unchanged,
        report.removed,
    )
    return report
