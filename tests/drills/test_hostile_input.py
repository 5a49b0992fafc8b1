"""Drill: hostile documents from sources stay within limits and never reach a published channel."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import func, select

from noticeboard.catalog import load_catalog
from noticeboard.pipeline import Runner
from noticeboard.settings import Settings
from noticeboard.store import open_store
from noticeboard.store.tables import Notice, RawItem, SourceState
from publishers.newsletter.subscribers import Preferences, confirm, sign_up
from tests.drills.conftest import (
    Page,
    drill_items,
    pipeline_environment,
    rss,
    run_pipeline,
    write_catalog,
)
from tests.servers.platforms import MastodonServer, WebhookReceiver

pytestmark = pytest.mark.slow

BODY_LIMIT = 5 * 1024 * 1024
MEGABYTE = b"<!-- " + b"x" * (1024 * 1024 - 9) + b" -->"

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>Laughs</title><link>http://127.0.0.1/</link><description>x</description>
<item><title>Naurua &lol9;</title><link>http://127.0.0.1/laughs/1</link><guid>laughs-1</guid>
<description>Kaupunki tiedottaa &lol9; katutöistä.</description></item>
</channel></rss>""".encode()

# Script-injection vectors, each inside an item body of an otherwise valid feed.
INJECTIONS = (
    "<script>alert('script')</script>",
    "<SCRIPT SRC=//127.0.0.1/x.js></SCRIPT>",
    "<img src=x onerror=alert('onerror')>",
    "<img src=\"javascript:alert('img')\">",
    "<a href=\"javascript:alert('href')\">linkki</a>",
    "<a href=\"JaVaScRiPt&#58;alert('entity')\">linkki</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">koodattu</a>",
    "<a href=\" java\tscript:alert('tab')\">tabulaattori</a>",
    "<a href=\"vbscript:msgbox('vb')\">vb</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">data</a>",
    "<svg onload=alert('svg')><circle r=1 /></svg>",
    "<svg><script>alert('svg-script')</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')></style></mglyph></table></mtext></math>",
    "<iframe src=\"javascript:alert('iframe')\"></iframe>",
    "<iframe srcdoc=\"<script>alert('srcdoc')</script>\"></iframe>",
    "<object data=\"javascript:alert('object')\"></object>",
    "<embed src=\"javascript:alert('embed')\">",
    "<body onload=alert('body')>",
    "<div style=\"background:url(javascript:alert('style'))\">tyyli</div>",
    "<div style=\"width: expression(alert('expression'))\">ie</div>",
    "<style>@import 'javascript:alert(1)';</style>",
    "<link rel=stylesheet href=\"javascript:alert('link')\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert('meta')\">",
    "<base href=\"javascript:alert('base')//\">",
    "<form action=\"javascript:alert('form')\"><button>nappi</button></form>",
    "<input onfocus=alert('focus') autofocus>",
    "<details open ontoggle=alert('toggle')>",
    "<video><source onerror=alert('video')></video>",
    "<a href=\"#\" onclick=\"alert('click')\">klikkaa</a>",
    "<p onmouseover=alert('hover')>hiiri</p>",
    "<template><script>alert('template')</script></template>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert('noscript')>\"></noscript>",
    "<scr<script>ipt>alert('nested')</scr</script>ipt>",
    "<<script>alert('double');//<</script>",
    "<img src=`javascript:alert('backtick')`>",
    "<a href=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">svgdata</a>",
    "<!--<script>alert('comment')</script>-->",
    "<![CDATA[<script>alert('cdata')</script>]]>",
)

# Elements that must never be live in published HTML. `meta` is checked by attribute instead,
# because the mail template has its own charset and viewport tags.
FORBIDDEN_ELEMENTS = frozenset(
    {"script", "iframe", "object", "embed", "svg", "math", "style", "link", "base", "form", "input",
     "video", "audio", "source", "template", "frame", "frameset", "applet"}
)
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data", "srcdoc", "background", "poster", "xlink:href"})
HOSTILE_SCHEMES = ("javascript:", "vbscript:", "data:")


class LiveMarkupFinder(HTMLParser):
    """Collects what in an HTML document could run script when a browser renders it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN_ELEMENTS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            compact = re.sub(r"[\x00-\x20]+", "", value or "").lower()
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            elif name in URL_ATTRIBUTES and compact.startswith(HOSTILE_SCHEMES):
                self.found.append(f"{tag} {name}={compact[:30]}")
            elif name == "style" and ("javascript:" in compact or "expression(" in compact):
                self.found.append(f"{tag} style={compact[:30]}")
            elif tag == "meta" and name == "http-equiv":
                self.found.append(f"meta http-equiv={value}")


def live_markup(html: str) -> list[str]:
    """Return each script-capable element, event handler or script URL of `html`."""
    finder = LiveMarkupFinder()
    finder.feed(html)
    finder.close()
    return finder.found


def _deep_nesting(depth: int) -> bytes:
    return (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Deep</title><item><title>Syva</title>'
        b"<guid>deep-1</guid><description>"
        + b"<div>" * depth
        + b"x"
        + b"</div>" * depth
        + b"</description></item></channel></rss>"
    )


def _huge_body() -> object:
    def chunks():
        yield b'<?xml version="1.0"?><rss version="2.0"><channel>'
        for _ in range(50):
            yield MEGABYTE
        yield b"</channel></rss>"

    return chunks


def _injection_items(site_url: str) -> list[dict[str, str]]:
    items = drill_items(site_url, "xss", len(INJECTIONS))
    for item, vector in zip(items, INJECTIONS, strict=True):
        item["body"] = f"<p>Kaupunki tiedottaa katutöistä {item['guid']}.</p>{vector}<p>Loppu.</p>"
        item["title"] = f"{item['title']} {vector}"
    return items


def _published_html(tmp_path: Path, webhook, mail_sink) -> dict[str, str]:
    """Every HTML document or fragment that a channel published, by where it was found."""
    documents = {}
    for path in sorted((tmp_path / "public").rglob("*.json")):
        feed = json.loads(path.read_text(encoding="utf-8"))
        for item in feed.get("items", []):
            documents[f"{path.name}:{item['id']}"] = item.get("content_html") or ""
    for path in sorted((tmp_path / "public").rglob("*.xml")):
        for number, content in enumerate(re.findall(r"<content[^>]*>(.*?)</content>", path.read_text(encoding="utf-8"), re.S)):
            documents[f"{path.name}:{number}"] = unescape(content)
    for delivery, entry in webhook.accepted.items():
        documents[f"webhook:{delivery}"] = entry["item"].get("content_html") or ""
    for number, mail in enumerate(mail_sink.messages):
        for part in mail.message.walk():
            if part.get_content_type() == "text/html":
                documents[f"mail:{number}"] = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    return documents


def _mastodon_html(mastodon) -> dict[str, str]:
    """The statuses as the fake platform renders them (escaped text, linked URLs)."""
    return {f"mastodon:{status['id']}": status["content"] for status in mastodon.statuses.values()}


def test_hostile_sources(tmp_path, feed_site, mail_sink):
    site = feed_site.url
    feed_site.pages.update(
        {
            "/good.xml": Page(rss(drill_items(site, "good", 3))),
            "/huge.xml": Page(_huge_body()),
            "/deep.xml": Page(_deep_nesting(100_000)),
            "/laughs.xml": Page(BILLION_LAUGHS),
            "/xss.xml": Page(rss(_injection_items(site))),
            "/garbage.xml": Page(bytes(range(256)) * 4096),
        }
    )
    names = ("good", "huge", "deep", "laughs", "xss", "garbage")
    catalog = write_catalog(tmp_path / "catalog.yaml", site, {f"hostile-{name}": f"/{name}.xml" for name in names})
    database_url = f"sqlite:///{tmp_path / 'noticeboard.db'}"
    store = open_store(database_url)
    with store.session() as session:
        now = datetime.now(UTC)
        confirm(sign_up(session, "reader@example.org", Preferences(language="fi", frequency="immediate"), now=now).subscriber, now=now)
    store.dispose()

    with MastodonServer(token="hostile-token") as mastodon, WebhookReceiver(secret="hostile-secret") as webhook:
        environment = pipeline_environment(
            database_url,
            tmp_path / "public",
            publishers="mastodon,webhook",
            mastodon_url=mastodon.url,
            mastodon_token=mastodon.token,
            webhook_url=f"{webhook.url}/hook",
            webhook_secret=webhook.secret,
            smtp_host="127.0.0.1",
            smtp_port=str(mail_sink.port),
            immediate_daily_limit="1000",
            max_body_bytes=str(BODY_LIMIT),
        )
        runs = [run_pipeline(catalog, environment, tmp_path) for _ in range(2)]
        published = {**_published_html(tmp_path, webhook, mail_sink), **_mastodon_html(mastodon)}

    store = open_store(database_url)
    with store.session() as session:
        states = {state.source_id: state for state in session.scalars(select(SourceState))}
        stored = {
            source_id: count
            for source_id, count in session.execute(select(Notice.source_id, func.count()).group_by(Notice.source_id))
        }
        longest_title = session.scalar(select(func.max(func.length(Notice.title)))) or 0
        longest_body = session.scalar(select(func.max(func.length(Notice.body_text)))) or 0
    store.dispose()

    offending = {key: found for key, html in published.items() if (found := live_markup(html))}
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    assert stored.get("hostile-good") == 3
    assert stored.get("hostile-xss") == len(INJECTIONS)
    assert states["hostile-huge"].last_status == "failed"
    assert str(BODY_LIMIT) in (states["hostile-huge"].last_error or "")
    assert states["hostile-garbage"].last_status == "failed"
    assert states["hostile-garbage"].last_error
    assert states["hostile-deep"].last_status in ("ok", "not-modified", "failed")
    assert "hostile-huge" not in stored
    assert "hostile-garbage" not in stored
    assert longest_title < 10_000
    assert longest_body < 100_000
    assert published
    assert offending == {}


def test_billion_laughs_never_expanded(tmp_path, feed_site):
    feed_site.pages["/laughs.xml"] = Page(BILLION_LAUGHS)
    catalog = write_catalog(tmp_path / "catalog.yaml", feed_site.url, {"hostile-laughs": "/laughs.xml"})
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'nb.db'}", host_min_interval=0.0, respect_robots=False, max_retries=0)
    runner = Runner(settings=settings, store=open_store(settings.database_url), catalog=load_catalog(catalog))
    try:
        reports = runner.ingest(force=True)
        with runner.store.session() as session:
            payloads = [json.dumps(raw.payload) for raw in session.scalars(select(RawItem))]
    finally:
        runner.close()

    assert len(reports) == 1
    assert reports[0].status in ("ok", "failed")
    assert all("lollollol" not in payload for payload in payloads)
    assert all(len(payload) < 10_000 for payload in payloads)


def test_ten_thousand_items_ingested(tmp_path, feed_site):
    feed_site.pages["/big.xml"] = Page(rss(drill_items(feed_site.url, "big", 10_000)))
    catalog = write_catalog(tmp_path / "catalog.yaml", feed_site.url, {"hostile-big": "/big.xml"})
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'nb.db'}", host_min_interval=0.0, respect_robots=False, max_retries=0)
    runner = Runner(settings=settings, store=open_store(settings.database_url), catalog=load_catalog(catalog))
    try:
        reports = runner.ingest(force=True)
        with runner.store.session() as session:
            raw_items = session.scalar(select(func.count()).select_from(RawItem))
    finally:
        runner.close()

    assert reports[0].status == "ok"
    assert reports[0].fetched_items == 10_000
    assert raw_items == 10_000


def test_detector_finds_raw_vectors():
    detected = [vector for vector in INJECTIONS if live_markup(vector)]

    assert len(detected) >= len(INJECTIONS) - 6
