"""Replay: serve HTTP requests from recorded responses instead of the network.

A manifest is a JSON file `{"captures": [{"url", "file", "status", "headers", ...}]}`; `file` is
relative to the manifest's folder and holds the body exactly as the server sent it. A request for a
URL the manifest lacks fails like a network error, so the source reports a clear failure. A request
for `/robots.txt` that the manifest lacks gets 404, which robots.txt rules read as "allow all".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from noticeboard.errors import ReplayError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Capture:
    """One recorded response."""

    url: str
    path: Path
    status: int
    headers: dict[str, str]


class ReplayMiss(requests.ConnectionError):
    """The manifest has no capture for the requested URL."""


def normalise_url(url: str) -> str:
    """Lower-case the scheme and host so that recorded and requested URLs compare equal."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def load_manifest(path: str | Path) -> dict[str, Capture]:
    """Read a replay manifest and check that every file it names exists."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ReplayError(f"cannot read replay manifest {path}: {error.strerror}; check the path") from error
    except json.JSONDecodeError as error:
        raise ReplayError(f"replay manifest {path} is not valid JSON: {error}") from error

    entries = document.get("captures") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ReplayError(f"replay manifest {path} must be an object with a `captures` list")

    captures: dict[str, Capture] = {}
    for index, entry in enumerate(entries):
        capture = _parse_capture(entry, index, path)
        captures[normalise_url(capture.url)] = capture
    return captures


def _parse_capture(entry: Any, index: int, manifest: Path) -> Capture:
    where = f"replay manifest {manifest}: capture #{index + 1}"
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not isinstance(entry.get("file"), str):
        raise ReplayError(f"{where} needs string fields `url` and `file`")

    folder = manifest.parent.resolve()
    body = (folder / entry["file"]).resolve()
    if not body.is_relative_to(folder):
        # A manifest must not make the pipeline read files elsewhere on the machine.
        raise ReplayError(f"{where} names {entry['file']!r}, which is outside the manifest's folder {folder}; keep captures beside the manifest")
    if not body.is_file():
        raise ReplayError(f"{where} names {entry['file']!r}, which does not exist at {body}; fix the manifest or restore the file")

    status = entry.get("status", 200)
    headers = entry.get("headers") or {}
    if not isinstance(status, int) or not isinstance(headers, dict):
        raise ReplayError(f"{where}: `status` must be a number and `headers` an object")
    return Capture(url=entry["url"], path=body, status=status, headers={str(k): str(v) for k, v in headers.items()})


class ReplayAdapter(BaseAdapter):
    """A requests transport adapter that serves recorded captures and never opens a socket."""

    def __init__(self, captures: dict[str, Capture]) -> None:
        super().__init__()
        self.captures = captures
        self.requests_served = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        capture = self.captures.get(normalise_url(url))
        if capture is None:
            if urlsplit(url).path == "/robots.txt":
                return self._response(request, 404, {}, b"")
            logger.warning("replay_miss url=%s", url)
            raise ReplayMiss(f"no recorded response for {url} in the replay manifest", request=request)

        self.requests_served += 1
        return self._response(request, capture.status, capture.headers, capture.path.read_bytes())

    def _response(
        self, request: requests.PreparedRequest, status: int, headers: dict[str, str], body: bytes
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response.url = request.url or ""
        response.request = request
        response.raw = _BodyStream(body)
        response.reason = "Replayed"
        return response

    def close(self) -> None:
        pass


class _BodyStream:
    """The minimal file-like `raw` that requests reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._offset = 0

    def read(self, amount: int | None = None, decode_content: bool = False) -> bytes:  # noqa: ARG002
        if amount is None or amount < 0:
            amount = len(self._body) - self._offset
        chunk = self._body[self._offset : self._offset + amount]
        self._offset += len(chunk)
        return chunk

    def stream(self, amount: int = 65536, decode_content: bool = False):  # type: ignore[no-untyped-def]  # noqa: ARG002
        while True:
            chunk = self.read(amount)
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def replay_session(manifest: str | Path) -> requests.Session:
    """Return a requests session that serves every http(s) request from `manifest`."""
    adapter = ReplayAdapter(load_manifest(manifest))
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
