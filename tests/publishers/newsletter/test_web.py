"""The newsletter pages: double opt-in, preferences, one-click unsubscribe, CSRF, rate limits."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter.tables import Subscriber
from publishers.newsletter.web import RateLimits, routes
from tests.publishers.newsletter.conftest import RecordingHandler

LINK = re.compile(r"https://news\.example\.org(/newsletter/[a-z]+/[A-Za-z0-9_.\-]+)")


@pytest.fixture
def client(store: Store, settings: Settings) -> Iterator[TestClient]:
    app = Starlette(routes=routes(store, settings, limits=RateLimits(per_address=2, per_client=4)))
    with TestClient(app, base_url="https://news.example.org") as test_client:
        yield test_client


def _csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None, f"no CSRF field on {path}"
    return match.group(1)


def _subscribe(client: TestClient, address: str, **fields: object) -> object:
    token = _csrf(client, "/newsletter/subscribe")
    data = {"email": address, "language": "en", "frequency": "daily", "csrf_token": token} | fields
    return client.post("/newsletter/subscribe", data=data)


def _links(smtp: RecordingHandler, address: str) -> list[str]:
    message = smtp.messages_to(address)[-1]
    return LINK.findall(message.get_body(("plain",)).get_content())


def _subscriber(store: Store, address: str) -> Subscriber:
    with store.session() as session:
        return session.scalars(select(Subscriber).where(Subscriber.email == address)).one()


def _confirm(client: TestClient, smtp: RecordingHandler, address: str) -> None:
    confirm_path = next(link for link in _links(smtp, address) if "/confirm/" in link)
    client.post(confirm_path, data={"csrf_token": _csrf(client, confirm_path)})


def test_subscribe_sends_confirmation_only(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    response = _subscribe(client, "Anna@Example.ORG", regions=["FI-18"], topics=["housing"])

    messages = smtp.messages_to("anna@example.org")
    assert response.status_code == 200
    assert len(messages) == 1
    assert messages[0]["Subject"] == "Confirm your Noticeboard subscription"
    assert messages[0]["List-Unsubscribe"] is None
    assert _subscriber(store, "anna@example.org").status == "pending"


def test_confirm_get_does_not_confirm(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    _subscribe(client, "anna@example.org")
    confirm_path = next(link for link in _links(smtp, "anna@example.org") if "/confirm/" in link)

    page = client.get(confirm_path)

    assert page.status_code == 200
    assert _subscriber(store, "anna@example.org").status == "pending"


def test_confirm_post_activates(client: TestClient, store: Store, smtp: RecordingHandler) -> None:
    _subscribe(client, "anna@example.org")

    _confirm(client, smtp, "anna@example.org")

    assert _subscriber(store, "anna@example.org").status == "active"


def test_repeated_subscription_same_subscriber(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    _subscribe(client, "anna@example.org")
    _confirm(client, smtp, "anna@example.org")

    _subscribe(client, " ANNA@example.org ", frequency="weekly")

    with store.session() as session:
        rows = session.scalars(select(Subscriber)).all()
    manage_mail = smtp.messages_to("anna@example.org")[-1]
    assert len(rows) == 1
    assert rows[0].frequency == "daily"
    assert manage_mail["Subject"] == "Your Noticeboard subscription"


def test_invalid_address_rejected(client: TestClient, smtp: RecordingHandler) -> None:
    response = _subscribe(client, "not an address")

    assert response.status_code == 422
    assert smtp.received == []


def test_unknown_topic_rejected(client: TestClient, smtp: RecordingHandler) -> None:
    response = _subscribe(
        client, "anna@example.org", topics=["gardening", "housing"], frequency="weekly"
    )

    assert response.status_code == 422
    assert "Choose the language, frequency, regions and topics" in response.text
    assert 'value="housing" aria-describedby="topics-hint" checked' in response.text
    assert 'value="weekly" checked' in response.text
    assert smtp.received == []


def test_form_error_localised(client: TestClient, smtp: RecordingHandler) -> None:
    response = _subscribe(client, "not an address", language="fi")

    assert response.status_code == 422
    assert "Anna kelvollinen sähköpostiosoite" in response.text
    assert 'aria-invalid="true" aria-describedby="form-error"' in response.text
    assert "@-sign" not in response.text


def test_non_ascii_local_part_rejected(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    response = _subscribe(client, "äijä@example.fi")

    with store.session() as session:
        rows = session.scalars(select(Subscriber)).all()
    assert response.status_code == 422
    assert rows == []
    assert smtp.received == []


def test_idn_domain_stored_as_ascii(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    response = _subscribe(client, "Aino@Ääkkönen.fi")

    assert response.status_code == 200
    assert _subscriber(store, "aino@xn--kknen-fraa0m.fi").status == "pending"
    assert len(smtp.messages_to("aino@xn--kknen-fraa0m.fi")) == 1


def test_preferences_error_keeps_choices(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    _subscribe(client, "anna@example.org")
    _confirm(client, smtp, "anna@example.org")
    _subscribe(client, "anna@example.org")
    preferences_path = next(
        link for link in _links(smtp, "anna@example.org") if "/preferences/" in link
    )

    response = client.post(
        preferences_path,
        data={
            "csrf_token": _csrf(client, preferences_path),
            "language": "sv",
            "frequency": "hourly",
            "regions": ["FI-18"],
        },
    )

    assert response.status_code == 422
    assert "Choose the language, frequency, regions and topics" in response.text
    assert '<option value="sv" lang="sv" selected>' in response.text
    assert 'value="FI-18" aria-describedby="regions-hint" checked' in response.text
    assert _subscriber(store, "anna@example.org").frequency == "daily"


def test_subscribe_without_csrf_rejected(client: TestClient, smtp: RecordingHandler) -> None:
    client.get("/newsletter/subscribe")

    response = client.post(
        "/newsletter/subscribe", data={"email": "anna@example.org", "frequency": "daily"}
    )

    assert response.status_code == 403
    assert smtp.received == []


def test_csrf_token_from_other_cookie_rejected(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    app = Starlette(routes=routes(store, settings))
    with TestClient(app, base_url="https://news.example.org") as attacker:
        stolen = _csrf(attacker, "/newsletter/subscribe")
    with TestClient(app, base_url="https://news.example.org") as victim:
        victim.get("/newsletter/subscribe")
        response = victim.post(
            "/newsletter/subscribe",
            data={"email": "anna@example.org", "frequency": "daily", "csrf_token": stolen},
        )

    assert response.status_code == 403


def test_rate_limit_per_address(client: TestClient, smtp: RecordingHandler) -> None:
    statuses = [_subscribe(client, "anna@example.org").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert len(smtp.received) == 2


def test_rate_limit_per_client(client: TestClient, smtp: RecordingHandler) -> None:
    statuses = [
        _subscribe(client, f"reader{number}@example.org").status_code for number in range(5)
    ]

    assert statuses == [200, 200, 200, 200, 429]


def test_rate_limited_response_has_retry_after(client: TestClient) -> None:
    for _ in range(2):
        _subscribe(client, "anna@example.org")

    response = _subscribe(client, "anna@example.org")

    assert response.headers["Retry-After"] == "3600"


def test_preferences_saved_through_link(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    _subscribe(client, "anna@example.org")
    _confirm(client, smtp, "anna@example.org")
    _subscribe(client, "anna@example.org")
    preferences_path = next(
        link for link in _links(smtp, "anna@example.org") if "/preferences/" in link
    )

    token = _csrf(client, preferences_path)
    response = client.post(
        preferences_path,
        data={
            "csrf_token": token,
            "language": "fi",
            "frequency": "weekly",
            "regions": ["EE"],
            "topics": ["housing", "education"],
        },
    )

    saved = _subscriber(store, "anna@example.org")
    assert response.status_code == 200
    assert "Asetuksesi on tallennettu." in response.text
    assert (saved.language, saved.frequency, saved.regions, saved.topics) == (
        "fi",
        "weekly",
        ["EE"],
        ["education", "housing"],
    )


def test_forged_link_rejected(client: TestClient) -> None:
    response = client.get("/newsletter/preferences/forged.token.value")

    assert response.status_code == 404


def test_one_click_unsubscribe_post(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    _subscribe(client, "anna@example.org")
    _confirm(client, smtp, "anna@example.org")
    _subscribe(client, "anna@example.org")
    header = str(smtp.messages_to("anna@example.org")[-1]["List-Unsubscribe"])
    url = re.findall(r"<(https://[^>]+)>", header)[0]

    # Mailbox providers send this request without cookies and follow no page.
    fresh = TestClient(client.app, base_url="https://news.example.org")
    first = fresh.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    again = fresh.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert first.status_code in (200, 202, 204)
    assert again.status_code in (200, 202, 204)
    assert _subscriber(store, "anna@example.org").status == "unsubscribed"


def test_one_click_after_removal_succeeds(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    from publishers.newsletter.subscribers import remove

    _subscribe(client, "anna@example.org")
    _confirm(client, smtp, "anna@example.org")
    _subscribe(client, "anna@example.org")
    unsubscribe_path = next(
        link for link in _links(smtp, "anna@example.org") if "/unsubscribe/" in link
    )
    with store.session() as session:
        remove(session, session.merge(_subscriber(store, "anna@example.org")))

    response = client.post(unsubscribe_path, content=b"List-Unsubscribe=One-Click")

    assert response.status_code == 200


def test_one_click_forged_link_rejected(client: TestClient) -> None:
    response = client.post(
        "/newsletter/unsubscribe/forged.token.value", content=b"List-Unsubscribe=One-Click"
    )

    assert response.status_code == 404


def test_unsubscribe_get_keeps_subscription(
    client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    _subscribe(client, "anna@example.org")
    _confirm(client, smtp, "anna@example.org")
    _subscribe(client, "anna@example.org")
    unsubscribe_path = next(
        link for link in _links(smtp, "anna@example.org") if "/unsubscribe/" in link
    )

    page = client.get(unsubscribe_path)

    assert page.status_code == 200
    assert "<form" in page.text
    assert _subscriber(store, "anna@example.org").status == "active"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Subscribe to the newsletter"),
        ("fi", "Tilaa uutiskirje"),
        ("sv", "Prenumerera på nyhetsbrevet"),
        ("et", "Telli uudiskiri"),
        ("lv", "Abonēt jaunumus"),
        ("ru", "Подписаться на рассылку"),
    ],
)
def test_subscribe_page_localised(client: TestClient, language: str, expected: str) -> None:
    page = client.get(f"/newsletter/subscribe?lang={language}")

    assert f'<html lang="{language}">' in page.text
    assert expected in page.text


def test_accept_language_picks_page_language(client: TestClient) -> None:
    page = client.get(
        "/newsletter/subscribe", headers={"Accept-Language": "de, sv;q=0.8, en;q=0.5"}
    )

    assert page.headers["Content-Language"] == "sv"


def test_form_fields_have_labels(client: TestClient) -> None:
    page = client.get("/newsletter/subscribe").text

    field_ids = re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', page)
    assert "<script" not in page
    for field_id in field_ids:
        assert f'<label for="{field_id}"' in page


def test_confirmation_mail_localised(client: TestClient, smtp: RecordingHandler) -> None:
    _subscribe(client, "aino@example.fi", language="fi")

    message = smtp.messages_to("aino@example.fi")[0]
    assert message["Subject"] == "Vahvista Noticeboard-tilauksesi"
    assert "Vahvista tilaus" in message.get_body(("html",)).get_content()


def test_provider_one_click_request(
    cases_dir: Path, client: TestClient, store: Store, smtp: RecordingHandler
) -> None:
    """The provider's POST from the field case, aimed at our own unsubscribe link."""
    raw = (cases_dir / "BR-19.http").read_bytes()
    head, _, body = raw.partition(b"\n\n")
    content_type = re.search(rb"(?im)^content-type:\s*(.+)$", head)
    _subscribe(client, "anna@example.org")
    _confirm(client, smtp, "anna@example.org")
    _subscribe(client, "anna@example.org")
    url = re.findall(
        r"<(https://[^>]+)>", str(smtp.messages_to("anna@example.org")[-1]["List-Unsubscribe"])
    )[0]

    fresh = TestClient(client.app, base_url="https://news.example.org")
    headers = {"Content-Type": content_type.group(1).decode().strip()} if content_type else {}
    response = fresh.post(url, content=body.strip(), headers=headers)

    assert body.strip() == b"List-Unsubscribe=One-Click"
    assert response.status_code in (200, 202, 204)
    assert _subscriber(store, "anna@example.org").status == "unsubscribed"


def test_pages_log_no_address(
    client: TestClient, smtp: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    _subscribe(client, "secret.person@example.org")
    _subscribe(client, "secret.person@@example.org")
    _confirm(client, smtp, "secret.person@example.org")

    ours = [
        record.getMessage() for record in caplog.records if not record.name.startswith("mail.log")
    ]
    assert ours
    assert not [message for message in ours if "secret.person" in message]
