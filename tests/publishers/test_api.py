"""HTTP API: filters, cursor pagination, ETags, feed files and the OpenAPI description."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from noticeboard.catalog import Catalog
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.web import create_app
from publishers.feeds import write_feeds


@pytest.fixture
def client(store: Store, settings: Settings, catalog: Catalog) -> TestClient:
    secret_settings = settings.replace(
        mastodon_token="secret-token", webhook_secret="shared-secret"
    )
    return TestClient(create_app(store, secret_settings, catalog))


def _ids(response: object) -> list[str]:
    return [item["id"] for item in response.json()["items"]]  # type: ignore[attr-defined]


def test_notices_newest_first(client: TestClient, make_notice: Callable[..., str]) -> None:
    make_notice("old", minutes=0)
    make_notice("new", minutes=10)

    response = client.get("/notices")

    assert response.status_code == 200
    assert _ids(response) == ["new", "old"]
    assert response.json()["items"][0]["authors"] == [{"name": "Esimerkkikaupunki"}]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("region=SE", ["se"]),
        ("topic=elections", ["se"]),
        ("source=ee-agency", ["ee"]),
        ("language=et", ["ee"]),
        ("language=en", ["fi"]),
        ("since=2026-03-04T08:05:00Z", ["ee", "se"]),
        ("until=2026-03-04T10:05:00%2B02:00", ["fi"]),
        ("region=FI&topic=elections", []),
    ],
)
def test_notices_filters(
    client: TestClient, make_notice: Callable[..., str], query: str, expected: list[str]
) -> None:
    make_notice("fi", minutes=0, translations={"en": "Road closed"})
    make_notice("se", minutes=10, regions=("SE",), topics=("elections",), language="sv")
    make_notice("ee", minutes=20, regions=("EE",), source_id="ee-agency", language="et")

    assert _ids(client.get(f"/notices?{query}")) == expected


def test_language_shows_translation(client: TestClient, make_notice: Callable[..., str]) -> None:
    make_notice("fi", translations={"en": "Road closed"})

    item = client.get("/notices?language=en").json()["items"][0]

    assert item["title"] == "Road closed"
    assert item["language"] == "en"


def test_hidden_notices_left_out(client: TestClient, make_notice: Callable[..., str]) -> None:
    make_notice("kept")
    make_notice("gone", withdrawn=True)
    make_notice("dup", duplicate_group="g", minutes=1)
    make_notice("dup2", duplicate_group="g", minutes=2)

    assert _ids(client.get("/notices")) == ["dup", "kept"]
    assert client.get("/notices/gone").status_code == 404


def test_cursor_pagination(client: TestClient, make_notice: Callable[..., str]) -> None:
    for number in range(5):
        make_notice(f"n{number}", minutes=number)
    make_notice("same-a", published=datetime(2026, 3, 4, 9, 0, tzinfo=UTC))
    make_notice("same-b", published=datetime(2026, 3, 4, 9, 0, tzinfo=UTC))

    seen: list[str] = []
    url = "/notices?limit=2"
    while url:
        page = client.get(url.removeprefix("https://noticeboard.example")).json()
        seen.extend(item["id"] for item in page["items"])
        url = page["next_url"]

    assert seen == ["same-a", "same-b", "n4", "n3", "n2", "n1", "n0"]


def test_next_url_keeps_filters(client: TestClient, make_notice: Callable[..., str]) -> None:
    for number in range(3):
        make_notice(f"n{number}", minutes=number)

    page = client.get("/notices?limit=1&region=FI").json()

    assert "region=FI" in page["next_url"]
    assert "limit=1" in page["next_url"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1000",
        "limit=x",
        "since=yesterday",
        "since=2026-03-04T08:00:00",
        "cursor=%%%",
    ],
)
def test_invalid_parameters(client: TestClient, query: str) -> None:
    response = client.get(f"/notices?{query}")

    assert response.status_code == 400
    assert response.json()["error"]


def test_etag_not_modified(client: TestClient, make_notice: Callable[..., str]) -> None:
    make_notice("n1")
    first = client.get("/notices")

    again = client.get("/notices", headers={"If-None-Match": first.headers["etag"]})
    weak = client.get("/notices", headers={"If-None-Match": "W/" + first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert weak.status_code == 304


def test_etag_changes_with_data(client: TestClient, make_notice: Callable[..., str]) -> None:
    make_notice("n1")
    first = client.get("/notices")
    make_notice("n2", minutes=1)

    second = client.get("/notices", headers={"If-None-Match": first.headers["etag"]})

    assert second.status_code == 200
    assert second.headers["etag"] != first.headers["etag"]


def test_single_notice(client: TestClient, make_notice: Callable[..., str]) -> None:
    make_notice("n1")

    response = client.get("/notices/n1")

    assert response.status_code == 200
    assert response.json()["id"] == "n1"
    assert client.get("/notices/missing").status_code == 404


def test_feed_files_served(
    client: TestClient, store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("n1", regions=("FI",))
    write_feeds(store, settings, settings.output_dir)

    feed = client.get("/feed.json")
    region = client.get("/regions/FI.xml")
    cached = client.get("/feed.json", headers={"If-None-Match": feed.headers["etag"]})

    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/feed+json")
    assert feed.json()["items"][0]["id"] == "n1"
    assert region.headers["content-type"].startswith("application/atom+xml")
    assert cached.status_code == 304


@pytest.mark.parametrize(
    "path", ["/../noticeboard.db", "/regions/../../x.json", "/feed.txt", "/missing.json"]
)
def test_feed_paths_confined(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_health(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_openapi_document(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    assert document["openapi"] == "3.1.0"
    assert "/notices" in document["paths"]
    names = [p["name"] for p in document["paths"]["/notices"]["get"]["parameters"]]
    assert names == ["region", "topic", "language", "source", "since", "until", "limit", "cursor"]


@pytest.mark.parametrize("path", ["/", "/health", "/openapi.json", "/notices"])
def test_no_secret_exposed(client: TestClient, make_notice: Callable[..., str], path: str) -> None:
    make_notice("n1")
    body = client.get(path).text

    assert "secret-token" not in body
    assert "shared-secret" not in body
    assert "sqlite" not in body


def test_read_only(client: TestClient) -> None:
    assert client.post("/notices").status_code == 405
