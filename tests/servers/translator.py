"""A LibreTranslate-compatible translation server on 127.0.0.1, run in a thread.

It "translates" deterministically: every blank-line separated paragraph of the text gets the
prefix `[<target>] `, and everything else (markup, tokens, numbers) is returned unchanged. Tests
and benchmarks can count requests, script failures (HTTP 429 with `Retry-After`, 500), delay
responses past a client's timeout, and take the server down and bring it back on the same port.

    with TranslatorServer() as server:
        server.fail_next(429, retry_after=120)
        ...  # point NOTICEBOARD_TRANSLATOR_URL at server.url
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n)")


@dataclass
class _Failure:
    status: int
    retry_after: str | None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and closed the socket is expected in timeout tests.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class TranslatorServer:
    """The server, its request log and the scripted failures still to send."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.delay_seconds = 0.0
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._port = 0
        self._httpd: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL with a trailing slash, as deep-translator's LibreTranslator expects it."""
        return f"http://127.0.0.1:{self._port}/"

    @property
    def calls(self) -> int:
        """Number of /translate requests received, failed ones included."""
        with self._lock:
            return len(self.requests)

    def start(self) -> TranslatorServer:
        """Start listening (on a free port the first time, on the same port afterwards)."""
        handler = _make_handler(self)
        self._httpd = _QuietServer(("127.0.0.1", self._port), handler)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="translator-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, so connections are refused until `start` is called again."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def fail_next(
        self, status: int, *, times: int = 1, retry_after: float | str | None = None
    ) -> None:
        """Respond to the next `times` /translate requests with `status` (and `Retry-After`)."""
        header = None
        if isinstance(retry_after, float):
            header = str(int(retry_after))
        elif retry_after is not None:
            header = str(retry_after)
        with self._lock:
            self._failures.extend(_Failure(status, header) for _ in range(times))

    def received_texts(self) -> list[str]:
        """The `q` texts of every /translate request, in order."""
        with self._lock:
            return [request.get("q", "") for request in self.requests]

    def __enter__(self) -> TranslatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _record(self, fields: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(fields)


def fake_translate(text: str, target: str) -> str:
    """Prefix every blank-line separated paragraph of `text` with `[target] `."""
    parts = _PARAGRAPH_BREAK.split(text)
    for index in range(0, len(parts), 2):
        if parts[index].strip():
            parts[index] = f"[{target}] {parts[index]}"
    return "".join(parts)


def _make_handler(server: TranslatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            return None

        def do_GET(self) -> None:
            if urlsplit(self.path).path.rstrip("/") == "/languages":
                codes = ["en", "fi", "sv", "et", "lv", "lt", "ru", "uk", "de"]
                self._send_json(
                    200, [{"code": code, "name": code, "targets": codes} for code in codes]
                )
                return
            self._send_json(404, {"error": "Not Found"})

        def do_POST(self) -> None:
            if urlsplit(self.path).path.rstrip("/") != "/translate":
                self._send_json(404, {"error": "Not Found"})
                return

            fields = self._read_fields()
            server._record(fields)
            if server.delay_seconds:
                time.sleep(server.delay_seconds)

            failure = server._next_failure()
            if failure is not None:
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                self._send_json(
                    failure.status, {"error": f"scripted failure {failure.status}"}, headers
                )
                return

            if not fields.get("q") or not fields.get("target"):
                self._send_json(400, {"error": "Invalid request: missing q or target parameter"})
                return
            self._send_json(200, {"translatedText": fake_translate(fields["q"], fields["target"])})

        def _read_fields(self) -> dict[str, str]:
            fields = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                body = self.rfile.read(length).decode("utf-8")
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    fields.update({key: str(value) for key, value in json.loads(body).items()})
                else:
                    fields.update({key: values[0] for key, values in parse_qs(body).items()})
            return fields

        def _send_json(
            self, status: int, payload: Any, headers: dict[str, str] | None = None
        ) -> None:
            body = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler
