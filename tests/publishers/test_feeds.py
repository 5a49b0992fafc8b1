"""Feed files: JSON Feed 1.1 and Atom validity, selections, pagination and rewrites."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from lxml import etree

from noticeboard.catalog import Catalog
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice
from publishers.feeds import write_feeds
from publishers.jsonfeed import public_url
from tests.publishers.conftest import add_notice

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
ATOM = "{http://www.w3.org/2005/Atom}"
STRING_ITEM_FIELDS = ("id", "url", "title", "content_html", "content_text", "summary", "language")


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str) or not RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_absolute_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def jsonfeed_errors(document: Any) -> list[str]:
    """Return every way `document` breaks JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/)."""
    errors: list[str] = []
    if not isinstance(document, dict):
        return ["top level is not an object"]
    if document.get("version") != "https://jsonfeed.org/version/1.1":
        errors.append(f"version is {document.get('version')!r}")
    if not isinstance(document.get("title"), str):
        errors.append("title missing or not a string")
    for key in ("home_page_url", "feed_url", "next_url"):
        if key in document and not _is_absolute_url(document[key]):
            errors.append(f"{key} is not an absolute URL")
    if "language" in document and not isinstance(document["language"], str):
        errors.append("language is not a string")
    if "next_url" in document and document["next_url"] == document.get("feed_url"):
        errors.append("next_url is the feed_url of this page")
    items = document.get("items")
    if not isinstance(items, list):
        return [*errors, "items missing or not a list"]

    ids: set[str] = set()
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{where} is not an object")
            continue
        if not isinstance(item.get("id"), str) or not item["id"]:
            errors.append(f"{where}.id missing or not a string")
        elif item["id"] in ids:
            errors.append(f"{where}.id {item['id']} repeated")
        else:
            ids.add(item["id"])
        if "content_html" not in item and "content_text" not in item:
            errors.append(f"{where} has neither content_html nor content_text")
        for key in STRING_ITEM_FIELDS:
            if key in item and not isinstance(item[key], str):
                errors.append(f"{where}.{key} is not a string")
        if "url" in item and not _is_absolute_url(item["url"]):
            errors.append(f"{where}.url is not an absolute URL")
        for key in ("date_published", "date_modified"):
            if key in item and not _is_rfc3339(item[key]):
                errors.append(f"{where}.{key} {item[key]!r} is not RFC 3339")
        tags = item.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            errors.append(f"{where}.tags is not a list of strings")
        authors = item.get("authors", [])
        if not isinstance(authors, list):
            errors.append(f"{where}.authors is not a list")
            authors = []
        for author in authors:
            if not isinstance(author, dict) or not isinstance(author.get("name"), str):
                errors.append(f"{where}.authors entry is not an object with a name")
        custom = [key for key in item if key.startswith("_")]
        if any(not isinstance(item[key], dict) for key in custom):
            errors.append(f"{where} extension is not an object")
    return errors


def atom_errors(data: bytes) -> list[str]:
    """Return every way an Atom document breaks RFC 4287's required elements."""
    root = etree.fromstring(data)
    errors: list[str] = []
    if root.tag != f"{ATOM}feed":
        return [f"root is {root.tag}"]
    for name in ("id", "title", "updated"):
        if root.find(f"{ATOM}{name}") is None:
            errors.append(f"feed lacks {name}")
    updated = root.findtext(f"{ATOM}updated")
    if updated and not _is_rfc3339(updated):
        errors.append(f"feed updated {updated!r} is not RFC 3339")
    feed_id = root.findtext(f"{ATOM}id")
    if feed_id is not None and not _is_absolute_url(feed_id):
        errors.append(f"feed id {feed_id!r} is not an absolute IRI")
    feed_has_author = root.find(f"{ATOM}author") is not None

    ids: set[str] = set()
    for index, entry in enumerate(root.iter(f"{ATOM}entry")):
        where = f"entry[{index}]"
        for name in ("id", "title", "updated"):
            if entry.find(f"{ATOM}{name}") is None:
                errors.append(f"{where} lacks {name}")
        entry_id = entry.findtext(f"{ATOM}id")
        if entry_id in ids:
            errors.append(f"{where} id {entry_id} repeated")
        ids.add(entry_id or "")
        for name in ("updated", "published"):
            value = entry.findtext(f"{ATOM}{name}")
            if value is not None and not _is_rfc3339(value):
                errors.append(f"{where} {name} {value!r} is not RFC 3339")
        if not feed_has_author and entry.find(f"{ATOM}author") is None:
            errors.append(f"{where} has no author")
        if entry_id is not None and not _is_absolute_url(entry_id):
            errors.append(f"{where} id {entry_id!r} is not an absolute IRI")
        if entry.find(f"{ATOM}link[@rel='alternate']") is None:
            errors.append(f"{where} has no alternate link")
    return errors


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _all_items(output: Path, stem: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = _load(output / f"{stem}.json")
    while True:
        items.extend(page["items"])
        if "next_url" not in page:
            return items
        relative = page["next_url"].removeprefix("https://noticeboard.example/")
        page = _load(output / relative)


def test_feed_files_valid_jsonfeed(
    store: Store, settings: Settings, catalog: Catalog, make_notice: Callable[..., str]
) -> None:
    for number in range(5):
        make_notice(f"n{number}", minutes=number, translations={"en": f"Notice {number}"})
    write_feeds(store, settings, settings.output_dir, catalog=catalog)

    paths = sorted(settings.output_dir.rglob("*.json"))
    assert paths
    for path in paths:
        assert jsonfeed_errors(_load(path)) == [], path


def test_feed_files_valid_atom(
    store: Store, settings: Settings, catalog: Catalog, make_notice: Callable[..., str]
) -> None:
    for number in range(5):
        make_notice(f"n{number}", minutes=number, title=f"Tiedote <{number}> & \x07muuta")
    write_feeds(store, settings, settings.output_dir, catalog=catalog)

    paths = sorted(settings.output_dir.rglob("*.xml"))
    assert paths
    for path in paths:
        assert atom_errors(path.read_bytes()) == [], path


def test_item_fields(
    store: Store, settings: Settings, catalog: Catalog, make_notice: Callable[..., str]
) -> None:
    make_notice("n1", regions=("FI", "FI-18"), topics=("roadworks",), variant_group="g1")
    write_feeds(store, settings, settings.output_dir, catalog=catalog)

    item = _load(settings.output_dir / "feed.json")["items"][0]
    assert item["id"] == "n1"
    assert item["url"] == "https://city.example.fi/tiedotteet/n1"
    assert item["content_html"] == "<p>Tie suljetaan <b>maanantaina</b>.</p>"
    assert item["content_text"] == "Tie suljetaan maanantaina."
    assert item["summary"] == "Tie suljetaan."
    assert item["date_published"] == "2026-03-04T08:00:00Z"
    assert item["language"] == "fi"
    assert item["authors"] == [{"name": "Esimerkkikaupunki"}]
    assert item["tags"] == ["FI", "FI-18", "roadworks"]
    assert item["_noticeboard"]["source"] == "fi-city"
    assert item["_noticeboard"]["original_language"] == "fi"
    assert item["_noticeboard"]["regions"] == ["FI", "FI-18"]
    assert item["_noticeboard"]["topics"] == ["roadworks"]
    assert item["_noticeboard"]["translation_provider"] is None
    assert item["_noticeboard"]["variant_group"] == "g1"


def test_author_without_catalog(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("n1")
    write_feeds(store, settings, settings.output_dir)

    assert _load(settings.output_dir / "feed.json")["items"][0]["authors"] == [{"name": "fi-city"}]


def test_selections_per_region_topic(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("fi1", regions=("FI",), topics=("roadworks",))
    make_notice("se1", regions=("SE",), topics=("elections",), language="sv")
    write_feeds(store, settings, settings.output_dir)

    assert [i["id"] for i in _all_items(settings.output_dir, "regions/FI")] == ["fi1"]
    assert [i["id"] for i in _all_items(settings.output_dir, "regions/SE")] == ["se1"]
    assert [i["id"] for i in _all_items(settings.output_dir, "topics/elections")] == ["se1"]
    assert (settings.output_dir / "topics/roadworks.xml").is_file()


def test_language_feed_translated(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("n1", translations={"en": "Road closed"})
    make_notice("n2", minutes=1)
    write_feeds(store, settings, settings.output_dir)

    english = _all_items(settings.output_dir, "languages/en")
    finnish = _all_items(settings.output_dir, "languages/fi")
    assert [item["id"] for item in english] == ["n1"]
    assert english[0]["title"] == "Road closed"
    assert english[0]["language"] == "en"
    assert english[0]["content_text"] == "The road is closed on Monday."
    assert english[0]["_noticeboard"]["translation_provider"] == "fake"
    assert english[0]["_noticeboard"]["original"]["language"] == "fi"
    assert english[0]["_noticeboard"]["original"]["title"] == "Tiedote n1"
    assert (
        english[0]["_noticeboard"]["original"]["feed_url"]
        == "https://noticeboard.example/languages/fi.json"
    )
    assert [item["id"] for item in finnish] == ["n2", "n1"]


def test_pagination_next_url(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    for number in range(7):
        make_notice(f"n{number}", minutes=number)
    write_feeds(store, settings, settings.output_dir)

    first = _load(settings.output_dir / "feed.json")
    third = _load(settings.output_dir / "feed-3.json")
    atom_first = etree.fromstring((settings.output_dir / "feed.xml").read_bytes())
    assert len(first["items"]) == 3
    assert first["next_url"] == "https://noticeboard.example/feed-2.json"
    assert "next_url" not in third
    assert [i["id"] for i in _all_items(settings.output_dir, "feed")] == [
        f"n{n}" for n in range(6, -1, -1)
    ]
    assert (
        atom_first.find(f"{ATOM}link[@rel='next']").get("href")
        == "https://noticeboard.example/feed-2.xml"
    )


def test_exact_page_size_no_next(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    for number in range(3):
        make_notice(f"n{number}", minutes=number)
    write_feeds(store, settings, settings.output_dir)

    assert "next_url" not in _load(settings.output_dir / "feed.json")
    assert not (settings.output_dir / "feed-2.json").exists()


def test_withdrawn_and_unready_left_out(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("kept")
    make_notice("gone", withdrawn=True)
    make_notice("raw", stage="normalised")
    write_feeds(store, settings, settings.output_dir)

    assert [i["id"] for i in _all_items(settings.output_dir, "feed")] == ["kept"]


def test_duplicate_group_once(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("a1", duplicate_group="d1")
    make_notice("a2", duplicate_group="d1", minutes=5)
    make_notice("b1", minutes=1)
    write_feeds(store, settings, settings.output_dir)

    ids = [i["id"] for i in _all_items(settings.output_dir, "feed")]
    assert ids == ["b1", "a1"]


def test_unchanged_not_rewritten(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("n1")
    first = write_feeds(store, settings, settings.output_dir)
    path = settings.output_dir / "feed.json"
    before = path.stat().st_mtime_ns

    second = write_feeds(store, settings, settings.output_dir)

    assert first.written > 0
    assert second.written == 0
    assert second.unchanged == first.written
    assert path.stat().st_mtime_ns == before


def test_change_rewrites_only_affected(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("n1", regions=("FI",))
    make_notice("s1", regions=("SE",), minutes=1)
    write_feeds(store, settings, settings.output_dir)

    make_notice("n2", regions=("FI",), minutes=2)
    report = write_feeds(store, settings, settings.output_dir)

    assert "regions/FI.json" in report.paths
    assert "regions/SE.json" not in report.paths


def test_stale_pages_removed(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    for number in range(4):
        make_notice(f"n{number}", minutes=number, regions=("FI",) if number else ("EE",))
    write_feeds(store, settings, settings.output_dir)
    assert (settings.output_dir / "feed-2.json").is_file()

    with store.session() as session:
        session.get(Notice, "n0").stage = "withdrawn"
    report = write_feeds(store, settings, settings.output_dir)

    assert not (settings.output_dir / "feed-2.json").exists()
    assert not (settings.output_dir / "regions/EE.json").exists()
    assert report.removed == 8


def test_no_temporary_files_left(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("n1")
    write_feeds(store, settings, settings.output_dir)

    assert [p.name for p in settings.output_dir.rglob(".*")] == []


def test_empty_store_writes_empty_feed(store: Store, settings: Settings) -> None:
    write_feeds(store, settings, settings.output_dir)

    document = _load(settings.output_dir / "feed.json")
    assert document["items"] == []
    assert jsonfeed_errors(document) == []
    assert atom_errors((settings.output_dir / "languages/en.xml").read_bytes()) == []


def test_page_names_not_region_codes(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("a", regions=("FI",))
    make_notice("b", regions=("FI",), minutes=1)
    make_notice("c", regions=("FI-2",), minutes=2)
    write_feeds(store, settings.replace(feed_page_size=1), settings.output_dir)

    assert [i["id"] for i in _load(settings.output_dir / "regions/FI-2.json")["items"]] == ["c"]
    assert [i["id"] for i in _all_items(settings.output_dir, "regions/FI")] == ["b", "a"]


VALID_ITEM = {
    "id": "n1",
    "url": "https://city.example.fi/n1",
    "title": "Tiedote",
    "content_text": "Tie suljetaan.",
    "date_published": "2026-03-04T08:00:00Z",
    "authors": [{"name": "Esimerkkikaupunki"}],
    "tags": ["FI"],
    "_noticeboard": {"source": "fi-city"},
}
VALID_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Noticeboard",
    "feed_url": "https://noticeboard.example/feed.json",
    "items": [VALID_ITEM],
}


def test_jsonfeed_validator_accepts_valid() -> None:
    assert jsonfeed_errors(VALID_FEED) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"version": "https://jsonfeed.org/version/1"}, "version is"),
        ({"title": None}, "title missing"),
        ({"next_url": "https://noticeboard.example/feed.json"}, "next_url is the feed_url"),
        ({"next_url": "feed-2.json"}, "next_url is not an absolute URL"),
        ({"items": {}}, "items missing"),
        ({"items": [VALID_ITEM, VALID_ITEM]}, "repeated"),
        ({"items": [{**VALID_ITEM, "id": 1}]}, ".id missing"),
        ({"items": [{"id": "n1", "title": "No content"}]}, "neither content_html"),
        ({"items": [{**VALID_ITEM, "content_html": None}]}, "content_html is not a string"),
        ({"items": [{**VALID_ITEM, "date_published": "2026-03-04 08:00"}]}, "not RFC 3339"),
        ({"items": [{**VALID_ITEM, "date_modified": "2026-13-04T08:00:00Z"}]}, "not RFC 3339"),
        ({"items": [{**VALID_ITEM, "authors": ["Esimerkkikaupunki"]}]}, "authors entry"),
        ({"items": [{**VALID_ITEM, "authors": {"name": "x"}}]}, "authors is not a list"),
        ({"items": [{**VALID_ITEM, "tags": "FI"}]}, "tags is not a list"),
        ({"items": [{**VALID_ITEM, "_noticeboard": "fi-city"}]}, "extension is not an object"),
    ],
)
def test_jsonfeed_validator_rejects(change: dict[str, Any], expected: str) -> None:
    errors = jsonfeed_errors({**VALID_FEED, **change})

    assert any(expected in error for error in errors), errors


ATOM_ENTRY = (
    "<entry><id>https://noticeboard.example/notices/n1</id><title>Tiedote</title>"
    '<link rel="alternate" href="https://city.example.fi/n1"/>'
    "<updated>2026-03-04T08:00:00Z</updated></entry>"
)


def _atom(head: str, entries: str = ATOM_ENTRY) -> bytes:
    return ('<feed xmlns="http://www.w3.org/2005/Atom">' + head + entries + "</feed>").encode()


ATOM_HEAD = (
    "<id>https://noticeboard.example/feed.xml</id><title>Noticeboard</title>"
    "<updated>2026-03-04T08:00:00Z</updated><author><name>Noticeboard</name></author>"
)


def test_atom_validator_accepts_valid() -> None:
    assert atom_errors(_atom(ATOM_HEAD)) == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (_atom(ATOM_HEAD.replace("<title>Noticeboard</title>", "")), "feed lacks title"),
        (_atom(ATOM_HEAD.replace("2026-03-04T08:00:00Z", "4 March 2026")), "not RFC 3339"),
        (_atom(ATOM_HEAD.replace("https://noticeboard.example/feed.xml", "feed")), "feed id"),
        (_atom(ATOM_HEAD, ATOM_ENTRY.replace("<title>Tiedote</title>", "")), "lacks title"),
        (
            _atom(ATOM_HEAD, ATOM_ENTRY.replace("<updated>2026-03-04T08:00:00Z</updated>", "")),
            "lacks updated",
        ),
        (_atom(ATOM_HEAD, ATOM_ENTRY.replace('rel="alternate"', 'rel="via"')), "alternate link"),
        (_atom(ATOM_HEAD, ATOM_ENTRY * 2), "repeated"),
        (_atom(ATOM_HEAD.replace("<author><name>Noticeboard</name></author>", "")), "no author"),
    ],
)
def test_atom_validator_rejects(document: bytes, expected: str) -> None:
    errors = atom_errors(document)

    assert any(expected in error for error in errors), errors


def _check_regions_topics_translations(store: Store, settings: Settings) -> None:
    add_notice(store, "n1", regions=("FI-18", "FI"), topics=("roadworks", "health"))
    add_notice(store, "n2", minutes=1, translations={"en": "Road closed"})
    write_feeds(store, settings, settings.output_dir)

    items = {item["id"]: item for item in _all_items(settings.output_dir, "feed")}
    english = _all_items(settings.output_dir, "languages/en")
    assert items["n1"]["tags"] == ["FI", "FI-18", "health", "roadworks"]
    assert items["n2"]["tags"] == ["FI", "roadworks"]
    assert [item["id"] for item in english] == ["n2"]
    assert english[0]["title"] == "Road closed"


def test_views_loaded_sqlite(store: Store, settings: Settings) -> None:
    _check_regions_topics_translations(store, settings)


@pytest.mark.postgres
def test_views_loaded_postgres(postgres_store: Store, settings: Settings) -> None:
    _check_regions_topics_translations(postgres_store, settings)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://city.example.fi/a?b=1&c=2", "https://city.example.fi/a?b=1&c=2"),
        ('https://city.example.fi/tiedote ä"<x>', "https://city.example.fi/tiedote%20ä%22%3Cx%3E"),
        ("javascript:alert(1)", None),
        ("data:text/html,<b>x</b>", None),
        ("/tiedotteet/1", None),
        ("", None),
    ],
)
def test_public_url(url: str, expected: str | None) -> None:
    assert public_url(url) == expected


def test_unsafe_link_replaced(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("n1", url="javascript:alert(1)")
    write_feeds(store, settings, settings.output_dir)

    item = _load(settings.output_dir / "feed.json")["items"][0]
    assert item["url"] == "https://noticeboard.example/notices/n1"
    assert b"javascript:" not in (settings.output_dir / "feed.xml").read_bytes()


def test_author_kept_without_catalog(tmp_path: Path) -> None:
    """A notice names its authority in feeds written under a catalog that lacks its source."""
    from noticeboard.pipeline import Runner
    from noticeboard.settings import Settings

    root = Path(__file__).resolve().parents[2]
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'n.db'}", output_dir=tmp_path / "public",
                        translation_targets=())
    runner = Runner.from_env(root / "examples" / "replay-catalog.yaml", root / "examples" / "replay" / "manifest.json", settings)
    runner.run(["example-lv-social"])
    runner.close()

    from noticeboard.store import open_store
    from publishers.feeds import write_feeds

    store = open_store(settings.database_url)
    write_feeds(store, settings, tmp_path / "other", catalog=None)
    store.dispose()
    feed = json.loads((tmp_path / "other" / "feed.json").read_text(encoding="utf-8"))

    assert feed["items"][0]["authors"] == [{"name": "Example Social Insurance Agency"}]
