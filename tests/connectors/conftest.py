"""A scripted HTTP server on 127.0.0.1 for the connector tests.

Each path gets a queue of replies; the last reply repeats. A reply can also be a function of the
request, for servers that check conditional headers. Paths without replies return 404, so
robots.txt is absent unless a test sets one. Every request is recorded with its headers and time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from noticeboard.catalog import Selectors, Source
from noticeboard.settings import Settings


@dataclass
class Reply:
    """One scripted response; `length=False` sends the body without Content-Length.

    `delay` waits before the status line; `trickle` waits before each byte of the body.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    length: bool = True
    trickle: float = 0.0


@dataclass
class Recorded:
    """A request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


ReplyFactory = Callable[[Recorded], Reply]


class LocalServer:
    """The scripted server; `url(path)` gives an absolute URL on it."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply | ReplyFactory]] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, *replies: Reply | ReplyFactory) -> None:
        self.routes[path] = list(replies)

    def hits(self, path: str) -> list[Recorded]:
        return [request for request in self.requests if request.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self.routes.get(request.path)
            if not queue:
                return Reply(404, b"not found")
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply(request) if callable(reply) else reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                reply = server._next_reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.length:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self._write_body(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _write_body(self, reply: Reply) -> None:
                if not reply.trickle:
                    self.wfile.write(reply.body)
                    return
                for offset in range(len(reply.body)):
                    time.sleep(reply.trickle)
                    self.wfile.write(reply.body[offset : offset + 1])
                    self.wfile.flush()

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A started scripted server on a free port of 127.0.0.1."""
    local = LocalServer()
    local.start()
    yield local
    local.stop()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """URL of a socket on 127.0.0.1 that accepts connections but never responds."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
    listener.close()


@pytest.fixture
def settings() -> Settings:
    """Settings with short timeouts, fast retries and no host interval, for tests."""
    return Settings(
        user_agent_contact="https://noticeboard.example.org/contact",
        connect_timeout=1.0,
        read_timeout=0.5,
        max_retries=2,
        backoff_base=0.01,
        retry_after_ceiling=30.0,
        host_min_interval=0.0,
        max_body_bytes=64 * 1024,
    )


DATA_DIR = Path(__file__).resolve().parent / "data"
LISTING_SELECTORS = Selectors(
    item="li.news-item",
    title=".news-title",
    link=".news-title a",
    date="time",
    summary="p.lead",
    next_page="a.next",
)


def data(name: str) -> bytes:
    """The bytes of a fixture file in tests/connectors/data."""
    return (DATA_DIR / name).read_bytes()


def make_source(source_id: str, kind: str, *urls: str, **options: Any) -> Source:
    """A catalog source for tests; `options` set any other `Source` field."""
    values: dict[str, Any] = {
        "id": source_id,
        "authority": "Test authority",
        "country": "FI",
        "regions": ("FI",),
        "languages": ("fi",),
        "timezone": "Europe/Helsinki",
        "kind": kind,
        "urls": tuple(urls),
    }
    if kind == "html":
        values["selectors"] = LISTING_SELECTORS
    values.update(options)
    return Source(**values)
