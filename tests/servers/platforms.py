"""Fake Mastodon, Discourse and webhook servers on 127.0.0.1, for publisher tests and drills.

Each fake keeps what it was sent in plain attributes, checks credentials like the real platform,
and can return a failure for the next requests (`fail_next`). Start one with
`with MastodonServer(token="t") as server: ...`; `server.url` is its base URL on a free port.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

URL_PATTERN = re.compile(r"https?://[^\s<]+")


@dataclass
class Reply:
    """An HTTP response of a fake."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    """One request as a fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakePlatform:
    """Base of the fakes: a threaded HTTP server that passes each request to `handle`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.failures: list[Reply] = []
        self.rate_limit_exhausted = False
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Respond to the next `times` requests with `status` instead of handling them."""
        for _ in range(times):
            self.failures.append(
                Reply(status, body or {"error": f"injected {status}"}, headers or {})
            )

    def start(self) -> FakePlatform:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Received(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={key: value for key, value in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with platform.lock:
                    platform.received.append(request)
                    if platform.failures:
                        reply = platform.failures.pop(0)
                    else:
                        reply = platform.handle(request)
                    if platform.rate_limit_exhausted and 200 <= reply.status < 300:
                        reply.headers.setdefault("X-RateLimit-Remaining", "0")
                        reply.headers.setdefault("X-RateLimit-Reset", "120")
                self._answer(reply)

            def _answer(self, reply: Reply) -> None:
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, request: Received) -> Reply:
        raise NotImplementedError


class MastodonServer(FakePlatform):
    """Mastodon API v1 subset: create, edit and list statuses, with Idempotency-Key."""

    ACCOUNT_ID = "1"

    def __init__(self, token: str = "mastodon-token") -> None:
        super().__init__()
        self.token = token
        self.statuses: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, str] = {}
        self.ids = itertools.count(1000)

    def handle(self, request: Received) -> Reply:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "The access token is invalid"})
        if request.method == "POST" and request.path == "/api/v1/statuses":
            return self._create(request)
        match = re.fullmatch(r"/api/v1/statuses/(\d+)", request.path)
        if request.method == "PUT" and match:
            return self._edit(match.group(1), request)
        if request.method == "GET" and request.path == "/api/v1/accounts/verify_credentials":
            return Reply(200, {"id": self.ACCOUNT_ID, "username": "noticeboard"})
        if (
            request.method == "GET"
            and request.path == f"/api/v1/accounts/{self.ACCOUNT_ID}/statuses"
        ):
            limit = int(request.query.get("limit", ["20"])[0])
            newest = sorted(self.statuses.values(), key=lambda s: int(s["id"]), reverse=True)[
                :limit
            ]
            return Reply(200, newest)
        return Reply(404, {"error": "Record not found"})

    def _create(self, request: Received) -> Reply:
        fields = request.json()
        key = request.headers.get("Idempotency-Key")
        if key and key in self.idempotency:
            return Reply(200, self.statuses[self.idempotency[key]])
        if not fields.get("status"):
            return Reply(422, {"error": "Validation failed: Text can't be blank"})
        status_id = str(next(self.ids))
        self.statuses[status_id] = {
            "id": status_id,
            "edits": 0,
            **fields,
            "content": _render(fields["status"]),
        }
        if key:
            self.idempotency[key] = status_id
        return Reply(200, self.statuses[status_id])

    def _edit(self, status_id: str, request: Received) -> Reply:
        if status_id not in self.statuses:
            return Reply(404, {"error": "Record not found"})
        fields = request.json()
        status = self.statuses[status_id]
        status.update(fields)
        status["content"] = _render(fields["status"])
        status["edits"] += 1
        return Reply(200, status)


def _render(text: str) -> str:
    escaped = html.escape(text)
    linked = URL_PATTERN.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
    return "<p>" + linked.replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"


class DiscourseServer(FakePlatform):
    """Discourse API subset: topics with external_id, first-post and title edits."""

    def __init__(self, api_key: str = "discourse-key", username: str = "system") -> None:
        super().__init__()
        self.api_key = api_key
        self.username = username
        self.topics: dict[int, dict[str, Any]] = {}
        self.posts: dict[int, dict[str, Any]] = {}
        self.ids = itertools.count(10)

    def handle(self, request: Received) -> Reply:
        if (
            request.headers.get("Api-Key") != self.api_key
            or request.headers.get("Api-Username") != self.username
        ):
            return Reply(403, {"errors": ["You are not permitted to view the requested resource."]})
        if request.method == "POST" and request.path == "/posts.json":
            return self._create(request.json())
        match = re.fullmatch(r"/t/external_id/(.+)\.json", request.path)
        if request.method == "GET" and match:
            topic = next(
                (t for t in self.topics.values() if t["external_id"] == match.group(1)), None
            )
            if topic is None:
                return Reply(404, {"errors": ["The requested URL or resource could not be found."]})
            return Reply(301, None, {"Location": f"/t/{topic['slug']}/{topic['id']}.json"})
        match = re.fullmatch(r"/t/[^/]+/(\d+)\.json", request.path)
        if request.method == "GET" and match and int(match.group(1)) in self.topics:
            return Reply(200, self._topic_view(self.topics[int(match.group(1))]))
        match = re.fullmatch(r"/posts/(\d+)\.json", request.path)
        if request.method == "PUT" and match and int(match.group(1)) in self.posts:
            post = self.posts[int(match.group(1))]
            post["raw"] = request.json()["post"]["raw"]
            post["edits"] += 1
            return Reply(200, {"post": post})
        match = re.fullmatch(r"/t/-/(\d+)\.json", request.path)
        if request.method == "PUT" and match and int(match.group(1)) in self.topics:
            self.topics[int(match.group(1))]["title"] = request.json()["title"]
            return Reply(200, {"basic_topic": self.topics[int(match.group(1))]})
        return Reply(404, {"errors": ["The requested URL or resource could not be found."]})

    def _create(self, fields: dict[str, Any]) -> Reply:
        external = fields.get("external_id")
        if external and any(t["external_id"] == external for t in self.topics.values()):
            return Reply(422, {"errors": ["External ID has already been taken"]})
        if len(fields.get("title", "")) < 5:
            return Reply(422, {"errors": ["Title is too short"]})
        topic_id, post_id = next(self.ids), next(self.ids)
        self.topics[topic_id] = {
            "id": topic_id,
            "slug": f"topic-{topic_id}",
            "title": fields["title"],
            "category_id": fields.get("category"),
            "tags": fields.get("tags", []),
            "external_id": external,
            "first_post_id": post_id,
        }
        self.posts[post_id] = {
            "id": post_id,
            "topic_id": topic_id,
            "raw": fields["raw"],
            "edits": 0,
        }
        return Reply(200, {"id": post_id, "topic_id": topic_id})

    def _topic_view(self, topic: dict[str, Any]) -> dict[str, Any]:
        return {**topic, "post_stream": {"posts": [self.posts[topic["first_post_id"]]]}}


class WebhookReceiver(FakePlatform):
    """A receiver that checks signatures and timestamps and drops repeated delivery ids."""

    def __init__(self, secret: str = "webhook-secret", tolerance: float = 300) -> None:
        super().__init__()
        self.secret = secret
        self.tolerance = tolerance
        self.accepted: dict[str, dict[str, Any]] = {}
        self.repeats = 0
        self.rejected = 0

    def handle(self, request: Received) -> Reply:
        timestamp = request.headers.get("X-Noticeboard-Timestamp", "")
        signature = request.headers.get("X-Noticeboard-Signature", "")
        expected = (
            "sha256="
            + hmac.new(
                self.secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
            ).hexdigest()
        )
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= self.tolerance
        if not fresh or not hmac.compare_digest(expected, signature):
            self.rejected += 1
            return Reply(401, {"error": "invalid signature"})

        delivery = request.headers.get("X-Noticeboard-Delivery", "")
        if delivery in self.accepted:
            self.repeats += 1
            return Reply(200, {"status": "duplicate"})
        self.accepted[delivery] = {
            "event": request.headers.get("X-Noticeboard-Event"),
            "item": request.json(),
        }
        return Reply(202, {"status": "accepted"})
