"""Replay: recorded responses answer requests, and nothing else does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from noticeboard.errors import ReplayError
from noticeboard.replay import load_manifest, replay_session


def _manifest(tmp_path: Path, captures: list[dict[str, object]]) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"captures": captures}), encoding="utf-8")
    return path


def test_capture_served_with_headers(tmp_path: Path) -> None:
    (tmp_path / "feed.xml").write_bytes(b"<rss/>")
    manifest = _manifest(
        tmp_path,
        [{"url": "https://Agency.example.fi/rss", "file": "feed.xml", "status": 200, "headers": {"ETag": '"v1"'}}],
    )

    response = replay_session(manifest).get("https://agency.example.fi/rss")

    assert response.status_code == 200
    assert response.content == b"<rss/>"
    assert response.headers["etag"] == '"v1"'


def test_unknown_url_fails_like_network(tmp_path: Path) -> None:
    session = replay_session(_manifest(tmp_path, []))

    with pytest.raises(requests.ConnectionError, match="no recorded response"):
        session.get("https://agency.example.fi/other")


def test_missing_robots_is_not_found(tmp_path: Path) -> None:
    response = replay_session(_manifest(tmp_path, [])).get("https://agency.example.fi/robots.txt")

    assert response.status_code == 404


def test_missing_file_named(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [{"url": "https://a.example/x", "file": "gone.xml"}])

    with pytest.raises(ReplayError, match="'gone.xml', which does not exist"):
        load_manifest(manifest)


def test_file_outside_folder_rejected(tmp_path: Path) -> None:
    replay_dir = tmp_path / "replay"
    replay_dir.mkdir()
    (tmp_path / "secret.txt").write_text("not a capture", encoding="utf-8")
    manifest = _manifest(replay_dir, [{"url": "https://a.example/x", "file": "../secret.txt"}])

    with pytest.raises(ReplayError, match="outside the manifest's folder"):
        load_manifest(manifest)


def test_corpus_manifest_loads(corpus_dir: Path) -> None:
    assert len(load_manifest(corpus_dir / "manifest.json")) >= 10
