"""Documentation stays complete: every setting and every catalog field is documented."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from noticeboard.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [f.name for f in fields(Settings) if f.name != "extra" and f"NOTICEBOARD_{f.name.upper()}" not in text]
    assert missing == []


def test_every_catalog_field_documented() -> None:
    from noticeboard import catalog

    text = (DOCS / "catalog.md").read_text(encoding="utf-8")
    names = [f.name for f in fields(catalog.Source)] + list(catalog.SELECTOR_FIELDS)
    missing = [name for name in names if f"`{name}`" not in text]
    assert missing == []
