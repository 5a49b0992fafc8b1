"""Choosing the character encoding of a fetched document and decoding it.

The order follows the HTML living standard's encoding sniffing, extended to XML: a byte-order mark
wins over everything, then the `charset` parameter of the HTTP Content-Type, then the XML
declaration, then an HTML `<meta charset>` or `<meta http-equiv="Content-Type">`, then UTF-8.
A Content-Type without a charset declares nothing. RFC 2616 gave `text/*` an ISO-8859-1 default,
and requests 2.x still applies it, but here it is never used, so that the XML declaration or the
meta tag inside the body decides.

Bytes that the chosen encoding cannot decode are replaced with U+FFFD and counted. The document is
not re-decoded in another encoding because of a few bad bytes, which would garble every correct
character. The one exception is a document labelled (or defaulted to) UTF-8 that contains no valid
multi-byte UTF-8 sequence at all but does contain high bytes: such a document is in a legacy
single-byte encoding, so it is decoded as windows-1252 and the mismatch is reported.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass
from email.message import Message

BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
SNIFF_BYTES = 4096
FALLBACK_CHARSET = "utf-8"
LEGACY_CHARSET = "windows-1252"

XML_DECLARATION = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
HIGH_BYTE = re.compile(rb"[\x80-\xff]")
UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]"
    rb"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)

# ISO-8859-1 labels are read as windows-1252, as the WHATWG Encoding standard maps them, and
# Python's name for windows-1252 is shown under its IANA name.
SUPERSETS = {"iso8859-1": LEGACY_CHARSET, "latin-1": LEGACY_CHARSET, "cp1252": LEGACY_CHARSET}
# A US-ASCII label does not cover bytes above 0x7F, so it is skipped like a missing declaration.
# Servers send it as the RFC 3023 default for text/xml in front of UTF-8 bodies.
UNINFORMATIVE = frozenset({"ascii"})

_COUNTING_HANDLER = "noticeboard-count-replace"
_replacements = threading.local()


def _count_and_replace(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    _replacements.count = getattr(_replacements, "count", 0) + (error.end - error.start)
    return "\ufffd", error.end


codecs.register_error(_COUNTING_HANDLER, _count_and_replace)


@dataclass(frozen=True)
class DecodedText:
    """A document's text, the encoding used, where it came from and how many bytes were replaced."""

    text: str
    charset: str
    declared_by: str
    decode_errors: int
    warning: str | None = None


def decode_document(body: bytes, content_type: str | None) -> DecodedText:
    """Decode `body` with the encoding that its BOM, header, XML declaration or meta tag names."""
    for bom, bom_charset in BOMS:
        if body.startswith(bom):
            return _decode(body[len(bom) :], bom_charset, "bom")

    for declared_by, label in _declarations(body, content_type):
        charset = normalise_charset(label)
        if charset is not None and charset not in UNINFORMATIVE:
            return _decode(body, charset, declared_by)

    return _decode(body, FALLBACK_CHARSET, "default")


def normalise_charset(label: str) -> str | None:
    """Return Python's codec name for a charset label, or None when Python has no such codec."""
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    return SUPERSETS.get(name, name)


def header_charset(content_type: str | None) -> str | None:
    """Return the `charset` parameter of a Content-Type header value, if any."""
    if not content_type:
        return None
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    return charset if isinstance(charset, str) and charset.strip() else None


def _declarations(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    from_header = header_charset(content_type)
    if from_header:
        found.append(("header", from_header))

    head = body[:SNIFF_BYTES]
    xml = XML_DECLARATION.match(head)
    if xml:
        found.append(("xml-declaration", xml.group(1).decode("ascii")))
    meta = META_CHARSET.search(head)
    if meta:
        found.append(("meta", meta.group(1).decode("ascii")))
    return found


def _decode(body: bytes, charset: str, declared_by: str) -> DecodedText:
    if charset.replace("_", "-").startswith("utf-8") and _is_legacy_single_byte(body):
        text, errors = _decode_counting(body, LEGACY_CHARSET)
        mismatch = (
            f"{declared_by} declares {charset} but the body has no valid UTF-8 multi-byte "
            f"sequence, so it was decoded as {LEGACY_CHARSET}"
        )
        return DecodedText(text, LEGACY_CHARSET, declared_by, errors, mismatch)

    text, errors = _decode_counting(body, charset)
    if not errors:
        return DecodedText(text, charset, declared_by, 0)
    replaced = f"{errors} bytes invalid in {charset} (declared by {declared_by}) were replaced"
    return DecodedText(text, charset, declared_by, errors, replaced)


def _decode_counting(body: bytes, charset: str) -> tuple[str, int]:
    _replacements.count = 0
    text = body.decode(charset, errors=_COUNTING_HANDLER)
    return text, _replacements.count


def _is_legacy_single_byte(body: bytes) -> bool:
    if HIGH_BYTE.search(body) is None or UTF8_MULTIBYTE.search(body) is not None:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
