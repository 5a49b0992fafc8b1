"""End-to-end in headless Chromium: subscribe, confirm by mail, change preferences, leave.

The app runs under uvicorn in a thread on 127.0.0.1 and mails go to the local SMTP server, so
the browser follows the links exactly as mailed. The tests skip, saying why, when the system
Chromium is missing.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter.tables import Subscriber
from publishers.newsletter.web import routes
from tests.publishers.newsletter.conftest import RecordingHandler

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"Chromium not found at {CHROMIUM}; install the Debian package chromium",
    ),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def site(store: Store, settings: Settings) -> Iterator[tuple[str, Settings]]:
    """The newsletter pages served by uvicorn; yields the base URL and the settings in use."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    served = settings.replace(public_base_url=base_url)
    app = Starlette(routes=routes(store, served))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {base_url}")
        time.sleep(0.05)
    try:
        yield base_url, served
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(site: tuple[str, Settings]) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()
        opened = context.new_page()
        try:
            yield opened
        finally:
            context.close()
            browser.close()


def _mailed_link(smtp: RecordingHandler, address: str, kind: str) -> str:
    text = smtp.messages_to(address)[-1].get_body(("plain",)).get_content()
    match = re.search(rf"(http://127\.0\.0\.1:\d+/newsletter/{kind}/\S+)", text)
    assert match is not None, f"no {kind} link in the last mail"
    return match.group(1)


def _status(store: Store, address: str) -> Subscriber:
    with store.session() as session:
        return session.scalars(select(Subscriber).where(Subscriber.email == address)).one()


def _journey(
    page, site, store: Store, smtp: RecordingHandler, *, language: str, texts: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    base_url, _ = site
    address = f"reader-{language}@example.org"

    page.goto(f"{base_url}/newsletter/subscribe?lang={language}")
    page.get_by_label(texts["email"]).fill(address)
    page.get_by_label(texts["weekly"]).check()
    page.keyboard.press("Tab")
    page.get_by_role("button", name=texts["subscribe"]).click()
    page.get_by_role("status").wait_for()
    assert _status(store, address).status == "pending"

    page.goto(_mailed_link(smtp, address, "confirm"))
    page.get_by_role("button", name=texts["confirm"]).focus()
    page.keyboard.press("Enter")
    page.get_by_text(texts["confirmed"]).wait_for()
    assert _status(store, address).status == "active"

    page.get_by_role("link", name=texts["preferences"]).click()
    page.get_by_label(texts["daily"]).check()
    page.get_by_role("button", name=texts["save"]).click()
    page.get_by_text(texts["saved"]).wait_for()
    assert _status(store, address).frequency == "daily"

    page.get_by_role("link", name=texts["unsubscribe"]).click()
    page.get_by_role("button", name=texts["unsubscribe"]).click()
    page.get_by_text(texts["unsubscribed"]).wait_for()
    assert _status(store, address).status == "unsubscribed"


def test_journey_english(page, site, store: Store, smtp: RecordingHandler) -> None:  # type: ignore[no-untyped-def]
    _journey(
        page,
        site,
        store,
        smtp,
        language="en",
        texts={
            "email": "E-mail address",
            "weekly": "Weekly digest",
            "daily": "Daily digest",
            "subscribe": "Subscribe",
            "confirm": "Confirm subscription",
            "confirmed": "Your subscription is confirmed.",
            "preferences": "Change your preferences",
            "save": "Save preferences",
            "saved": "Your preferences are saved.",
            "unsubscribe": "Unsubscribe",
            "unsubscribed": "You are unsubscribed.",
        },
    )


def test_journey_finnish(page, site, store: Store, smtp: RecordingHandler) -> None:  # type: ignore[no-untyped-def]
    _journey(
        page,
        site,
        store,
        smtp,
        language="fi",
        texts={
            "email": "Sähköpostiosoite",
            "weekly": "Viikoittainen kooste",
            "daily": "Päivittäinen kooste",
            "subscribe": "Tilaa",
            "confirm": "Vahvista tilaus",
            "confirmed": "Tilauksesi on vahvistettu.",
            "preferences": "Muuta asetuksiasi",
            "save": "Tallenna asetukset",
            "saved": "Asetuksesi on tallennettu.",
            "unsubscribe": "Peru tilaus",
            "unsubscribed": "Tilauksesi on peruttu.",
        },
    )
