"""Measure what a pass over unchanged sources costs compared with a pass where every source changed.

    .venv/bin/python benchmarks/fetch_incremental.py [--sources N] [--repeat N] [--database-url URL]

A server on 127.0.0.1 serves one RSS feed per source. After an initial load of 200 items per source,
each repetition runs three passes through `connectors.ingest_source` and times each one:

- `changed`: every feed responds with 200 and 250 items, 50 of them new and 200 already stored;
- `not-modified`: every feed responds with 304 to the stored ETag;
- `same-body`: every feed responds with 200 and the unchanged body and no validators, so only the
  body hash tells that nothing changed.

Time is wall-clock time of the whole pass (HTTP on loopback, parsing, database writes), median over
`--repeat` repetitions. The host interval is set to 0, because every source is on 127.0.0.1 and the
politeness pause would otherwise dominate; robots.txt is fetched once, in the initial load. The
store is a new SQLite file unless `--database-url` names another database.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors import HttpFetcher, ingest_source  # noqa: E402
from connectors.budget import StoreHostBudget  # noqa: E402
from noticeboard.catalog import Source  # noqa: E402
from noticeboard.settings import Settings  # noqa: E402
from noticeboard.store import open_store  # noqa: E402

STORED_ITEMS = 200
NEW_ITEMS = 50


class FeedServer:
    """Serves `/feeds/<n>.xml` for every source; `mode` and `generation` select the response."""

    def __init__(self, sources: int) -> None:
        self.sources = sources
        self.mode = "changed"
        self.generation = 0
        self._bodies: dict[tuple[int, int], bytes] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def url(self, number: int) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/feeds/{number}.xml"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def body(self, number: int) -> bytes:
        key = (number, self.generation)
        if key not in self._bodies:
            self._bodies[key] = _feed(number, self.generation)
        return self._bodies[key]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in one write without Nagle's delay, so that loopback
            # round trips do not add the 40 ms delayed-ACK wait to every 200 response.
            disable_nagle_algorithm = True
            wbufsize = -1

            def do_GET(self) -> None:  # noqa: N802
                if not self.path.startswith("/feeds/"):
                    self._reply(404, b"", {})
                    return
                number = int(self.path.rsplit("/", 1)[1].split(".")[0])
                etag = f'"{number}-{feeds.generation}"'
                if feeds.mode == "not-modified" and self.headers.get("If-None-Match") == etag:
                    self._reply(304, b"", {"ETag": etag})
                    return
                headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
                if feeds.mode != "same-body":
                    headers["ETag"] = etag
                self._reply(200, feeds.body(number), headers)

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler


def _feed(number: int, generation: int) -> bytes:
    """Build a feed whose newest items belong to `generation`, after the items of older ones."""
    newest = STORED_ITEMS + generation * NEW_ITEMS
    count = STORED_ITEMS if generation == 0 else STORED_ITEMS + NEW_ITEMS
    entries = []
    for index in range(newest, newest - count, -1):
        published = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=index)
        entries.append(
            f"<item><title>Tiedote {number}-{index}: katutyöt Koulukadulla</title>"
            f"<link>/tiedotteet/{number}/{index}</link><guid>urn:bench:{number}:{index}</guid>"
            f"<pubDate>{published.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
            f"<description>Liikenne ohjataan kiertotielle. Kohde {index}.</description>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Lähde {number}</title><link>/</link><language>fi</language>"
        + "".join(entries)
        + "</channel></rss>"
    ).encode("utf-8")


def _source(number: int, url: str) -> Source:
    return Source(
        id=f"bench-{number:03d}",
        authority="Benchmark",
        country="FI",
        regions=("FI",),
        languages=("fi",),
        timezone="Europe/Helsinki",
        kind="rss",
        urls=(url,),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=50, help="number of sources (default 50)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="repetitions of the three passes (default 3)"
    )
    parser.add_argument(
        "--database-url", default=None, help="database to use (default: a new SQLite file)"
    )
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = open_store(arguments.database_url or f"sqlite:///{Path(folder) / 'bench.db'}")
        feeds = FeedServer(arguments.sources)
        settings = Settings(host_min_interval=0.0, max_retries=0)
        fetcher = HttpFetcher(settings, StoreHostBudget(store))
        sources = [_source(number, feeds.url(number)) for number in range(arguments.sources)]
        now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)

        def run_pass(mode: str) -> tuple[float, int]:
            nonlocal now
            feeds.mode = mode
            now += timedelta(hours=1)
            started = time.perf_counter()
            new = sum(
                ingest_source(store, source, fetcher, settings, now=now, force=True).new_items
                for source in sources
            )
            return time.perf_counter() - started, new

        initial, loaded = run_pass("changed")
        timings: dict[str, list[float]] = {"changed": [], "not-modified": [], "same-body": []}
        new_per_pass: list[int] = []
        for _ in range(arguments.repeat):
            feeds.generation += 1
            seconds, new = run_pass("changed")
            timings["changed"].append(seconds)
            new_per_pass.append(new)
            timings["not-modified"].append(run_pass("not-modified")[0])
            timings["same-body"].append(run_pass("same-body")[0])

        feeds.stop()
        store.dispose()

    changed = statistics.median(timings["changed"])
    print(f"initial load: {initial:.2f} s, {loaded} items")
    print(f"new items per changed pass: {new_per_pass}")
    print("| pass | median seconds | share of the changed pass |")
    print("|---|---|---|")
    for mode, values in timings.items():
        median = statistics.median(values)
        print(f"| {mode} | {median:.3f} | {median / changed:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
