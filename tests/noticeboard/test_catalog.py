"""Catalog loading: the shipped catalogs are valid, bad entries name entry, field and problem."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from noticeboard.catalog import load_catalog
from noticeboard.context import PACKAGED_CATALOG
from noticeboard.errors import CatalogError

ROOT = Path(__file__).resolve().parents[2]

VALID_ENTRY = """
sources:
  - id: city-news
    authority: Example City
    country: FI
    languages: [fi]
    timezone: Europe/Helsinki
    kind: rss
    urls: [https://city.example.fi/rss]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_catalog_covers_four_countries() -> None:
    catalog = load_catalog(PACKAGED_CATALOG)
    countries = Counter(source.country for source in catalog.sources.values())

    assert len(catalog.sources) >= 20
    assert set(countries) == {"FI", "SE", "EE", "LV"}
    assert min(countries.values()) >= 5


@pytest.mark.parametrize("name", ["examples/corpus-catalog.yaml", "examples/replay-catalog.yaml"])
def test_example_catalogs_load(name: str) -> None:
    assert load_catalog(ROOT / name).sources


def test_minimal_entry_gets_defaults(tmp_path: Path) -> None:
    source = load_catalog(_write(tmp_path, VALID_ENTRY)).sources["city-news"]

    assert source.regions == ("FI",)
    assert source.schedule == "@hourly"
    assert source.hosts == ("city.example.fi",)


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("country: FI", "country: DK", "field `country` is 'DK'"),
        ("country: FI", "country: NO", "field `country` is False, not text"),
        ("kind: rss", "kind: json", "field `kind` is 'json'"),
        ("timezone: Europe/Helsinki", "timezone: Helsinki", "field `timezone` is 'Helsinki'"),
        ("urls: [https://city.example.fi/rss]", "urls: [ftp://city.example.fi/rss]", "field `urls` has 'ftp://"),
        ("languages: [fi]", "languages: [finnish]", "field `languages` has 'finnish'"),
        ("kind: rss", "kind: html", "field `selectors` is missing"),
        ("country: FI", "country: FI\n    regions: [FI-atlantis]", "field `regions` is invalid"),
        ("    kind: rss", "    kind: rss\n    colour: blue", "field `colour` is not a known field"),
    ],
)
def test_invalid_entry_named(tmp_path: Path, replace: str, by: str, message: str) -> None:
    path = _write(tmp_path, VALID_ENTRY.replace(replace, by))

    with pytest.raises(CatalogError) as error:
        load_catalog(path)

    assert "source 'city-news'" in str(error.value)
    assert message in str(error.value)


def test_invalid_css_selector_named(tmp_path: Path) -> None:
    entry = VALID_ENTRY.replace("kind: rss", 'kind: html\n    selectors: {item: "article[", title: h2, link: a}')

    with pytest.raises(CatalogError, match="field `selectors.item` is 'article\\[', not valid CSS"):
        load_catalog(_write(tmp_path, entry))


def test_duplicate_id_rejected(tmp_path: Path) -> None:
    entry = VALID_ENTRY.split("sources:\n", 1)[1]
    path = _write(tmp_path, "sources:\n" + entry + entry)

    with pytest.raises(CatalogError, match="id is used twice"):
        load_catalog(path)


def test_unreadable_catalog_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read catalog"):
        load_catalog(tmp_path / "missing.yaml")


def test_invalid_yaml_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(_write(tmp_path, "sources: [unclosed"))
