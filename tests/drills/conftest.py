"""Fixtures of the reliability drills: a feed site, an SMTP sink and the pipeline as a process.

Every server listens on 127.0.0.1 on a free port. The pipeline runs as `python -m noticeboard.cli`
in a child process, configured only through `NOTICEBOARD_*` variables, as operators run it.
"""

from __future__ import annotations

import asyncio
import email
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "drill-secret-key-0123456789abcdef0123456789abcdef"
RUN_TIMEOUT_SECONDS = 120


@dataclass
class Page:
    """One document of the feed site: status, headers and body (bytes, or chunks to stream)."""

    body: bytes | Callable[[], Iterator[bytes]]
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class FeedSite:
    """An HTTP server on 127.0.0.1 that serves `pages` by path and counts the requests."""

    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.requests: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _site_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FeedSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _site_handler(site: FeedSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            site.requests.append(self.path)
            page = site.pages.get(self.path.split("?")[0])
            if page is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(page.status)
            self.send_header("Content-Type", page.content_type)
            for name, value in page.headers.items():
                self.send_header(name, value)
            try:
                if isinstance(page.body, bytes):
                    self.send_header("Content-Length", str(len(page.body)))
                    self.end_headers()
                    self.wfile.write(page.body)
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in page.body():
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading, as it should past its size limit

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def feed_site() -> Iterator[FeedSite]:
    """A started feed site with no pages."""
    site = FeedSite().start()
    yield site
    site.stop()


@dataclass
class ReceivedMail:
    """One message the SMTP sink accepted."""

    recipients: list[str]
    message: email.message.Message

    def text(self) -> str:
        """Every text part of the message, decoded and joined."""
        parts = []
        for part in self.message.walk():
            if part.get_content_maintype() == "text":
                payload = part.get_payload(decode=True) or b""
                parts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
        return "\n".join(parts)


class MailSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message; `delay` slows each one down."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self.delay = 0.0
        self.port = free_port()
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content)
        self.messages.append(ReceivedMail(list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def start(self) -> MailSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink().start()
    yield sink
    sink.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss(items: list[dict[str, str]], *, title: str = "Drill feed", language: str = "fi") -> bytes:
    """Render an RSS 2.0 document; each item needs guid, title, link, body and date."""
    entries = "".join(
        "<item>"
        f"<title>{escape(item['title'])}</title><link>{escape(item['link'])}</link>"
        f'<guid isPermaLink="false">{escape(item["guid"])}</guid>'
        f"<description>{escape(item['body'])}</description><pubDate>{item['date']}</pubDate>"
        "</item>"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://127.0.0.1/</link><description>drill</description>"
        f"<language>{language}</language>{entries}</channel></rss>"
    ).encode()


FINNISH_WORDS = (
    "kaupunki tiedottaa että katu suljetaan liikenteeltä maanantaista alkaen asiakaspalvelu on "
    "suljettu juhlapyhän vuoksi lisätietoja saa verkkopalvelusta vesijohtotöiden kiinteistöissä "
    "voi olla katkoja iltapäivällä hakemus käsitellään määräajassa päätös tulee voimaan "
    "kirjasto uimahalli koulu päiväkoti terveysasema pysäköinti lumityöt jätehuolto kaavoitus"
).split()


def finnish_text(seed: str, words: int = 30) -> str:
    """Return a distinct Finnish word sequence for `seed`, so notices are not near-duplicates."""
    rng = random.Random(seed)
    return " ".join(rng.choice(FINNISH_WORDS) for _ in range(words)).capitalize() + "."


def drill_items(site_url: str, prefix: str, count: int, *, now: datetime | None = None) -> list[dict[str, str]]:
    """Return `count` Finnish items whose titles carry the unique marker `<prefix>-<n>`."""
    now = now or datetime.now(UTC)
    items = []
    for number in range(count):
        marker = f"{prefix}-{number:03d}"
        items.append(
            {
                "guid": marker,
                "title": f"Tiedote {marker}: katutyöt Helsingissä",
                "link": f"{site_url}/notices/{marker}",
                "body": f"<p>{finnish_text(marker)} Viite {marker}.</p>",
                "date": format_datetime(now - timedelta(minutes=5 + number)),
            }
        )
    return items


def write_catalog(path: Path, site_url: str, feeds: dict[str, str]) -> Path:
    """Write a catalog of Finnish RSS sources, `feeds` mapping source id to path on the site."""
    entries = "".join(
        f"  - id: {source_id}\n"
        f"    authority: Drill authority {source_id}\n"
        "    country: FI\n    regions: [FI]\n    languages: [fi]\n"
        "    timezone: Europe/Helsinki\n    kind: rss\n"
        f'    urls: ["{site_url}{feed_path}"]\n'
        for source_id, feed_path in feeds.items()
    )
    path.write_text("sources:\n" + entries, encoding="utf-8")
    return path


def pipeline_environment(database_url: str, output_dir: Path, **settings: str) -> dict[str, str]:
    """Environment of a pipeline child process: no politeness pause, no translation."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("NOTICEBOARD_")
    }
    environment.update(
        {
            "NOTICEBOARD_DATABASE_URL": database_url,
            "NOTICEBOARD_OUTPUT_DIR": str(output_dir),
            "NOTICEBOARD_SECRET_KEY": SECRET_KEY,
            "NOTICEBOARD_HOST_MIN_INTERVAL": "0",
            "NOTICEBOARD_RESPECT_ROBOTS": "false",
            "NOTICEBOARD_MAX_RETRIES": "0",
            "NOTICEBOARD_TRANSLATION_TARGETS": "",
            "NOTICEBOARD_PUBLIC_BASE_URL": "http://127.0.0.1:9/noticeboard",
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONPATH": str(ROOT),
        }
    )
    environment.update({f"NOTICEBOARD_{name.upper()}": value for name, value in settings.items()})
    return environment


def pipeline_command(catalog: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "noticeboard.cli", "--catalog", str(catalog), *arguments]


def start_pipeline(catalog: Path, environment: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start `noticeboard run` in a child process."""
    return subprocess.Popen(
        pipeline_command(catalog, "run"),
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_pipeline(catalog: Path, environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `noticeboard run` to the end and return its exit status and output."""
    return subprocess.run(
        pipeline_command(catalog, "run"),
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


def wait_until(condition: Callable[[], bool], timeout: float, process: subprocess.Popen[str] | None = None) -> bool:
    """Poll `condition` every 10 ms; stop early when `process` has ended. Return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process is not None and process.poll() is not None:
            return condition()
        time.sleep(0.01)
    return condition()
