"""HttpFetcher against a scripted server on 127.0.0.1."""

from __future__ import annotations

import gzip
import time
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors._retry import RateLimitedError
from connectors._robots import ROBOTS_MAX_BYTES
from connectors.http import HttpFetcher
from noticeboard.errors import BlockedError, FetchError, ResponseError
from noticeboard.settings import Settings
from tests.connectors.conftest import LocalServer, Recorded, Reply

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def _fetcher(settings: Settings, sleeps: list[float] | None = None) -> HttpFetcher:
    recorder = sleeps if sleeps is not None else []
    return HttpFetcher(settings, sleep=recorder.append)


def test_user_agent_names_project(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", Reply(body=FEED))

    _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")

    agent = server.hits("/feed.xml")[0].headers["user-agent"]
    assert agent.startswith("Noticeboard/")
    assert "https://noticeboard.example.org/contact" in agent


def _etag_reply(request: Recorded) -> Reply:
    if request.headers.get("if-none-match") == '"v1"':
        return Reply(304)
    return Reply(body=FEED, headers={"ETag": '"v1"'})


def test_etag_gives_not_modified(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", _etag_reply)
    fetcher = _fetcher(settings)

    first = fetcher.fetch(server.url("/feed.xml"), source_id="s1")
    second = fetcher.fetch(server.url("/feed.xml"), source_id="s1", etag=first.etag)

    assert first.etag == '"v1"'
    assert second.not_modified
    assert second.body == b""


def test_last_modified_gives_not_modified(server: LocalServer, settings: Settings) -> None:
    stamp = "Wed, 04 Mar 2026 08:15:00 GMT"

    def reply(request: Recorded) -> Reply:
        if request.headers.get("if-modified-since") == stamp:
            return Reply(304)
        return Reply(body=FEED, headers={"Last-Modified": stamp})

    server.route("/feed.xml", reply)
    fetcher = _fetcher(settings)

    first = fetcher.fetch(server.url("/feed.xml"), source_id="s1")
    second = fetcher.fetch(
        server.url("/feed.xml"), source_id="s1", last_modified=first.last_modified
    )

    assert first.last_modified == stamp
    assert second.not_modified


def test_429_retry_after_seconds(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", Reply(429, headers={"Retry-After": "7"}), Reply(body=FEED))
    sleeps: list[float] = []

    document = _fetcher(settings, sleeps).fetch(server.url("/feed.xml"), source_id="s1")

    assert document.body == FEED
    assert sleeps == [7.0]


def test_429_retry_after_http_date(server: LocalServer, settings: Settings) -> None:
    later = datetime.now(UTC) + timedelta(seconds=20)
    server.route(
        "/feed.xml",
        Reply(429, headers={"Retry-After": format_datetime(later, usegmt=True)}),
        Reply(body=FEED),
    )
    sleeps: list[float] = []

    document = _fetcher(settings, sleeps).fetch(server.url("/feed.xml"), source_id="s1")

    assert document.status == 200
    assert len(sleeps) == 1
    assert 17 <= sleeps[0] <= 20


def test_retry_after_above_ceiling(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", Reply(503, headers={"Retry-After": "3600"}), Reply(body=FEED))

    with pytest.raises(RateLimitedError) as raised:
        _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")

    assert raised.value.retry_after == 3600
    assert len(server.hits("/feed.xml")) == 1


def test_503_then_success(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", Reply(503), Reply(body=FEED))
    sleeps: list[float] = []

    document = _fetcher(settings, sleeps).fetch(server.url("/feed.xml"), source_id="s1")

    assert document.body == FEED
    assert len(server.hits("/feed.xml")) == 2
    assert 0.005 <= sleeps[0] <= 0.01


def test_backoff_grows_between_retries(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", Reply(500))
    sleeps: list[float] = []

    with pytest.raises(FetchError, match="HTTP 500"):
        _fetcher(settings.replace(backoff_base=1.0), sleeps).fetch(
            server.url("/feed.xml"), source_id="s1"
        )

    assert len(server.hits("/feed.xml")) == 3
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0


def test_timeout_is_fetch_error(silent_url: str, settings: Settings) -> None:
    started = time.monotonic()

    with pytest.raises(FetchError, match="timed out") as raised:
        _fetcher(settings.replace(max_retries=1)).fetch(silent_url, source_id="s1")

    assert time.monotonic() - started < 5
    assert raised.value.source_id == "s1"
    assert raised.value.url == silent_url


def test_trickling_body_hits_deadline(server: LocalServer, settings: Settings) -> None:
    # Each byte arrives well within the 0.5 s read timeout, but the whole body would take 6 s.
    server.route("/feed.xml", Reply(body=b"x" * 60, trickle=0.1))
    started = time.monotonic()

    with pytest.raises(FetchError, match="not complete within 2s"):
        _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")

    assert time.monotonic() - started < 4
    assert len(server.hits("/feed.xml")) == 1


def test_slow_body_within_deadline(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", Reply(body=FEED[:10], trickle=0.05))

    document = _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")

    assert document.body == FEED[:10]


def test_redirect_followed(server: LocalServer, settings: Settings) -> None:
    server.route("/old", Reply(301, headers={"Location": "/feeds/rss.xml"}))
    server.route("/feeds/rss.xml", Reply(body=FEED))

    document = _fetcher(settings).fetch(server.url("/old"), source_id="s1")

    assert document.final_url == server.url("/feeds/rss.xml")


def test_redirect_loop_blocked(server: LocalServer, settings: Settings) -> None:
    server.route("/a", Reply(302, headers={"Location": "/b"}))
    server.route("/b", Reply(302, headers={"Location": "/a"}))

    with pytest.raises(BlockedError, match="more than 5 redirects"):
        _fetcher(settings).fetch(server.url("/a"), source_id="s1")

    assert len(server.requests) == 6 + 1  # robots.txt, then the first request and 5 redirects


def test_redirect_to_other_scheme_blocked(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", Reply(302, headers={"Location": "file:///etc/passwd"}))

    with pytest.raises(BlockedError, match="only http and https"):
        _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")


@pytest.mark.parametrize("location", ["http://[::1/feed.xml", "http://bad host.example/feed.xml"])
def test_redirect_to_invalid_url_blocked(
    server: LocalServer, settings: Settings, location: str
) -> None:
    server.route("/feed.xml", Reply(302, headers={"Location": location}))

    with pytest.raises(BlockedError, match="valid URL"):
        _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")


def test_oversized_body_declared(server: LocalServer, settings: Settings) -> None:
    server.route("/big", Reply(body=b"x" * (settings.max_body_bytes + 1)))

    with pytest.raises(ResponseError, match="exceeds the limit"):
        _fetcher(settings).fetch(server.url("/big"), source_id="s1")


def test_oversized_body_streamed(server: LocalServer, settings: Settings) -> None:
    server.route("/big", Reply(body=b"x" * (settings.max_body_bytes * 4), length=False))

    with pytest.raises(ResponseError, match="exceeds the limit"):
        _fetcher(settings).fetch(server.url("/big"), source_id="s1")


def test_gzip_bomb_stopped(server: LocalServer, settings: Settings) -> None:
    bomb = gzip.compress(b"\0" * (settings.max_body_bytes * 8))
    server.route("/big", Reply(body=bomb, headers={"Content-Encoding": "gzip"}))

    with pytest.raises(ResponseError, match="exceeds the limit"):
        _fetcher(settings).fetch(server.url("/big"), source_id="s1")


def test_gzip_body_decoded(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", Reply(body=gzip.compress(FEED), headers={"Content-Encoding": "gzip"}))

    document = _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")

    assert document.body == FEED


def test_deflate_body_decoded(server: LocalServer, settings: Settings) -> None:
    server.route(
        "/feed.xml", Reply(body=zlib.compress(FEED), headers={"Content-Encoding": "deflate"})
    )

    document = _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")

    assert document.body == FEED


def test_not_found_is_response_error(server: LocalServer, settings: Settings) -> None:
    with pytest.raises(ResponseError, match="HTTP 404") as raised:
        _fetcher(settings).fetch(server.url("/missing"), source_id="s1")

    assert "source s1" in str(raised.value)
    assert server.url("/missing") in str(raised.value)


def test_html_without_charset_is_utf8(server: LocalServer, settings: Settings) -> None:
    page = '<html lang="fi"><head><title>Tietyö päättyy</title></head></html>'.encode()
    server.route("/page", Reply(body=page, headers={"Content-Type": "text/html"}))

    document = _fetcher(settings).fetch(server.url("/page"), source_id="s1")

    assert "Tietyö päättyy" in document.text
    assert "Ã" not in document.text
    assert document.charset == "utf-8"


def test_bom_wins_over_header(server: LocalServer, settings: Settings) -> None:
    body = (
        b"\xef\xbb\xbf"
        + '<?xml version="1.0"?><rss><channel><title>Vägarbete</title></channel></rss>'.encode()
    )
    server.route(
        "/feed.xml",
        Reply(body=body, headers={"Content-Type": "application/rss+xml; charset=iso-8859-1"}),
    )

    document = _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")

    assert "Vägarbete" in document.text
    assert document.charset == "utf-8"


def test_robots_disallow_blocks(server: LocalServer, settings: Settings) -> None:
    server.route("/robots.txt", Reply(body=b"User-agent: *\nDisallow: /private/\n"))
    server.route("/private/feed.xml", Reply(body=FEED))

    with pytest.raises(BlockedError, match="robots.txt"):
        _fetcher(settings).fetch(server.url("/private/feed.xml"), source_id="s1")

    assert server.hits("/private/feed.xml") == []


def test_robots_fetched_once_per_host(server: LocalServer, settings: Settings) -> None:
    server.route("/robots.txt", Reply(body=b"User-agent: *\nDisallow: /private/\n"))
    server.route("/feed.xml", Reply(body=FEED))
    fetcher = _fetcher(settings)

    fetcher.fetch(server.url("/feed.xml"), source_id="s1")
    fetcher.fetch(server.url("/feed.xml"), source_id="s2")

    assert len(server.hits("/robots.txt")) == 1


def test_robots_server_error_defers(server: LocalServer, settings: Settings) -> None:
    server.route("/robots.txt", Reply(503))
    server.route("/feed.xml", Reply(body=FEED))

    with pytest.raises(FetchError, match="robots.txt"):
        _fetcher(settings).fetch(server.url("/feed.xml"), source_id="s1")

    assert server.hits("/feed.xml") == []


def test_robots_oversized_truncated(server: LocalServer, settings: Settings) -> None:
    padding = b"# " + b"x" * 70 + b"\n"
    rules = (
        b"User-agent: *\nDisallow: /private/\n"
        + padding * (ROBOTS_MAX_BYTES // len(padding) + 10)
        + b"Disallow: /late/\n"
    )
    server.route("/robots.txt", Reply(body=rules))
    server.route("/feed.xml", Reply(body=FEED))
    server.route("/late/feed.xml", Reply(body=FEED))
    server.route("/private/feed.xml", Reply(body=FEED))
    fetcher = _fetcher(settings.replace(max_body_bytes=4 * ROBOTS_MAX_BYTES))

    allowed = fetcher.fetch(server.url("/feed.xml"), source_id="s1")
    past_the_cut = fetcher.fetch(server.url("/late/feed.xml"), source_id="s1")
    with pytest.raises(BlockedError, match="robots.txt"):
        fetcher.fetch(server.url("/private/feed.xml"), source_id="s1")

    assert allowed.status == 200
    assert past_the_cut.status == 200
    assert len(server.hits("/robots.txt")) == 1


def test_robots_cut_line_ignored(server: LocalServer, settings: Settings) -> None:
    head = b"User-agent: *\nDisallow: /private/\n"
    cut_rule = b"Disallow: /late/\n"
    # The size limit falls right after "Disallow: /", which alone would disallow every path.
    filler = ROBOTS_MAX_BYTES - len(head) - len(b"Disallow: /") - len(b"#\n")
    rules = head + b"#" + b"x" * filler + b"\n" + cut_rule
    server.route("/robots.txt", Reply(body=rules))
    server.route("/feed.xml", Reply(body=FEED))
    fetcher = _fetcher(settings.replace(max_body_bytes=4 * ROBOTS_MAX_BYTES))

    document = fetcher.fetch(server.url("/feed.xml"), source_id="s1")

    assert document.status == 200


def test_robots_ignored_when_disabled(server: LocalServer, settings: Settings) -> None:
    server.route("/robots.txt", Reply(body=b"User-agent: *\nDisallow: /\n"))
    server.route("/feed.xml", Reply(body=FEED))

    document = _fetcher(settings.replace(respect_robots=False)).fetch(
        server.url("/feed.xml"), source_id="s1"
    )

    assert document.status == 200
    assert server.hits("/robots.txt") == []


def test_host_interval_spaces_requests(server: LocalServer, settings: Settings) -> None:
    server.route("/feed.xml", Reply(body=FEED))
    fetcher = HttpFetcher(settings.replace(host_min_interval=0.3))

    for source_id in ("s1", "s2", "s3"):
        fetcher.fetch(server.url("/feed.xml"), source_id=source_id)

    times = [request.at for request in server.requests]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert len(times) == 4  # robots.txt and three fetches
    assert min(gaps) >= 0.28
