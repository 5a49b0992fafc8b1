"""normalise_item: links that are not absolute http(s) addresses never become a notice's URL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from noticeboard.models import RawItem
from noticeboard.settings import Settings
from tests.transforms.raw_items import make_source
from transforms.normalise import normalise_item

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,<script>x</script>", "/relative/path"])
def test_unsafe_link_dropped(link: str) -> None:
    raw = RawItem(source_id="s1", guid="g1", url=link, title="Tiedote", summary_html="<p>Teksti.</p>")

    notice = normalise_item(raw, make_source("s1"), settings=Settings(), now=NOW)

    assert notice.url is None
    assert notice.canonical_url is None
    assert notice.title == "Tiedote"


def test_http_link_kept() -> None:
    raw = RawItem(source_id="s1", guid="g1", url="https://agency.example.fi/a?utm_source=x", title="Tiedote")

    notice = normalise_item(raw, make_source("s1"), settings=Settings(), now=NOW)

    assert notice.url == "https://agency.example.fi/a"
