"""Charset choice: BOM, header, XML declaration, meta tag, then UTF-8."""

from __future__ import annotations

import pytest

from connectors._charset import decode_document

TITLE = "Tietyö päättyy Esimerkkitiellä"


def test_bom_wins_over_header() -> None:
    body = b"\xef\xbb\xbf" + TITLE.encode()

    decoded = decode_document(body, "text/html; charset=iso-8859-1")

    assert decoded.text == TITLE
    assert decoded.declared_by == "bom"


def test_utf16_bom() -> None:
    decoded = decode_document(b"\xff\xfe" + TITLE.encode("utf-16-le"), "text/xml")

    assert decoded.text == TITLE


def test_header_before_xml_declaration() -> None:
    body = f'<?xml version="1.0" encoding="utf-8"?><t>{TITLE}</t>'.encode("iso-8859-15")

    decoded = decode_document(body, "application/xml; charset=ISO-8859-15")

    assert TITLE in decoded.text
    assert decoded.charset == "iso8859-15"


def test_xml_declaration_used() -> None:
    body = f'<?xml version="1.0" encoding="windows-1252"?><t>{TITLE}</t>'.encode("cp1252")

    decoded = decode_document(body, "application/rss+xml")

    assert TITLE in decoded.text
    assert decoded.declared_by == "xml-declaration"


def test_meta_charset_used() -> None:
    body = f'<html><head><meta charset="iso-8859-1"></head><p>{TITLE}</p></html>'.encode("latin-1")

    decoded = decode_document(body, "text/html")

    assert TITLE in decoded.text
    assert decoded.declared_by == "meta"


def test_meta_http_equiv_used() -> None:
    head = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1257">'
    body = f"<html><head>{head}</head><p>Ūdens padeve</p></html>".encode("cp1257")

    decoded = decode_document(body, "text/html")

    assert "Ūdens padeve" in decoded.text


def test_no_declaration_is_utf8() -> None:
    decoded = decode_document(f"<p>{TITLE}</p>".encode(), "text/html")

    assert TITLE in decoded.text
    assert "Ã" not in decoded.text
    assert decoded.charset == "utf-8"


def test_us_ascii_header_ignored_for_utf8() -> None:
    body = f'<?xml version="1.0" encoding="utf-8"?><t>{TITLE}</t>'.encode()

    decoded = decode_document(body, "text/xml; charset=us-ascii")

    assert TITLE in decoded.text
    assert decoded.decode_errors == 0


def test_bad_byte_replaced_and_counted() -> None:
    body = f"<p>{TITLE}</p>".encode() + b"<p>\xff</p>" + "<p>Vägarbete</p>".encode()

    decoded = decode_document(body, "text/html; charset=utf-8")

    assert TITLE in decoded.text
    assert "Vägarbete" in decoded.text
    assert decoded.decode_errors == 1
    assert "\ufffd" in decoded.text
    assert decoded.charset == "utf-8"


def test_windows_1252_claiming_utf8() -> None:
    body = f'<?xml version="1.0" encoding="utf-8"?><t>{TITLE} – loppu</t>'.encode("cp1252")

    decoded = decode_document(body, "application/rss+xml; charset=utf-8")

    assert f"{TITLE} – loppu" in decoded.text
    assert decoded.charset == "windows-1252"
    assert decoded.warning is not None


@pytest.mark.parametrize("label", ["no-such-charset", "x-unknown"])
def test_unknown_label_falls_through(label: str) -> None:
    decoded = decode_document(TITLE.encode(), f"text/html; charset={label}")

    assert decoded.text == TITLE
