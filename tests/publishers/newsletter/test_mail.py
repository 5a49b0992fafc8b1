"""Message headers on the wire: RFC 2047 subjects, RFC 8058 one-click, transfer encodings."""

from __future__ import annotations

import re
from datetime import timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter import send_digests
from tests.publishers.newsletter.conftest import NOW, RecordingHandler, add_notice, add_subscriber

WEEKLY_SUBJECT = "Viikon tiedotteet: Tietyö päättyy – Vägarbetet avslutas – Teetööd lõpevad"


def _weekly_digest(store: Store, settings: Settings) -> None:
    add_subscriber(store, "aino@example.fi", language="fi", frequency="weekly")
    add_notice(store, "n1", "Tietyö päättyy", first_seen_at=NOW)
    add_notice(
        store,
        "n2",
        "Vägarbetet avslutas",
        language="sv",
        regions=["SE-AB"],
        first_seen_at=NOW + timedelta(minutes=1),
    )
    add_notice(
        store,
        "n3",
        "Teetööd lõpevad",
        language="et",
        regions=["EE-37"],
        first_seen_at=NOW + timedelta(minutes=2),
    )
    send_digests(store, settings, "weekly", now=NOW + timedelta(hours=1))


def _raw_header(data: bytes, name: str) -> str:
    text = data.decode("ascii")
    match = re.search(rf"^{name}: (.*?)\r?\n(?=\S)", text, flags=re.MULTILINE | re.DOTALL)
    assert match is not None, f"header {name} missing"
    return match.group(1)


def test_subject_encoded_words_decode_exactly(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    _weekly_digest(store, settings)

    raw_subject = _raw_header(smtp.received[0].data, "Subject")
    decoded = str(make_header(decode_header(re.sub(r"\r?\n ", " ", raw_subject))))

    assert "=?utf-8?" in raw_subject
    assert decoded == WEEKLY_SUBJECT


def test_wire_message_is_ascii(store: Store, settings: Settings, smtp: RecordingHandler) -> None:
    _weekly_digest(store, settings)

    smtp.received[0].data.decode("ascii")


def test_body_parts_declare_transfer_encoding(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    _weekly_digest(store, settings)
    message = smtp.received[0].message()

    parts = [part for part in message.walk() if not part.is_multipart()]
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64", "8bit")


def test_list_unsubscribe_headers(store: Store, settings: Settings, smtp: RecordingHandler) -> None:
    _weekly_digest(store, settings)
    message = smtp.received[0].message()

    targets = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert targets[0].startswith("mailto:leave@news.example.org?subject=unsubscribe")
    assert targets[1].startswith("https://news.example.org/newsletter/unsubscribe/")
    assert "=?" not in _raw_header(smtp.received[0].data, "List-Unsubscribe")


def test_content_language_on_wire(store: Store, settings: Settings, smtp: RecordingHandler) -> None:
    _weekly_digest(store, settings)

    assert smtp.received[0].message()["Content-Language"] == "fi"


def test_footer_links_preferences(store: Store, settings: Settings, smtp: RecordingHandler) -> None:
    _weekly_digest(store, settings)
    message = smtp.received[0].message()

    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "https://news.example.org/newsletter/preferences/" in html
    assert "https://news.example.org/newsletter/preferences/" in text


def test_non_ascii_display_name_encoded(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    _weekly_digest(store, settings)

    raw_from = _raw_header(smtp.received[0].data, "From")
    decoded = str(make_header(decode_header(raw_from)))

    assert decoded == "Tiedotteet – Noticeboard <news@news.example.org>"


def test_title_line_break_flattened(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "aino@example.fi", frequency="immediate")
    add_notice(store, "n1", "Tietyö\r\nBcc: victim@example.org päättyy")

    from publishers.newsletter import send_immediate

    send_immediate(store, settings, now=NOW + timedelta(minutes=1))
    message = smtp.received[0].message()

    assert message["Bcc"] is None
    assert message["Subject"] == "Tietyö Bcc: victim@example.org päättyy"


def test_translation_labelled_and_original_linked(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "eve@example.org", language="sv", frequency="daily")
    add_notice(store, "n1", "Tietyö päättyy", translations={"sv": "Vägarbetet avslutas"})
    add_notice(store, "n2", "Asuntotuki muuttuu", topics=["housing"])

    send_digests(store, settings, "daily", now=NOW + timedelta(hours=1))
    html = smtp.received[0].message().get_body(("html",)).get_content()

    assert "Vägarbetet avslutas" in html
    assert "Maskinöversättning (google)" in html
    assert "Original (finska):" in html
    assert 'lang="fi"' in html
    assert "Tietyö päättyy" in html
    assert "Asuntotuki muuttuu" in html
    assert html.count("https://agency.example.fi/tiedotteet/n1") == 2


def test_recorded_subject_survives(
    cases_dir: Path, store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    """The subject of the field case survives the trip through our builder and SMTP."""
    from email import message_from_bytes, policy

    raw = (cases_dir / "BR-18.eml").read_bytes()
    expected = str(message_from_bytes(raw, policy=policy.default)["Subject"])
    if expected != WEEKLY_SUBJECT:
        pytest.skip(f"BR-18.eml subject changed to {expected!r}")
    _weekly_digest(store, settings)

    decoded = str(
        make_header(
            decode_header(re.sub(r"\r?\n ", " ", _raw_header(smtp.received[0].data, "Subject")))
        )
    )
    assert decoded == expected
