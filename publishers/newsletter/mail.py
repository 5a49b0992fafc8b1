"""Building newsletter messages: multipart text and HTML from Jinja2 templates, with list headers.

Messages are `email.message.EmailMessage` objects under the default policy, so non-ASCII subjects
and display names are written as RFC 2047 encoded-words and each body part declares
`Content-Transfer-Encoding: quoted-printable`. A hand-built string would go out raw, and
smtplib rejects it with `UnicodeEncodeError` on the first "ö". Newsletters carry the RFC 2369
`List-Unsubscribe` header with an https URL (and a mailto URL when configured) and the RFC 8058
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import quote, urlsplit

from noticeboard.settings import Settings
from publishers.newsletter.i18n import environment
from publishers.newsletter.tables import Subscriber
from publishers.newsletter.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, TokenSigner

MAX_SUBJECT_CHARS = 160
# Headers given with `set_raw` are written exactly as given; all others fold as usual.
MESSAGE_POLICY = policy.default.clone(refold_source="none")
ROUTE_PREFIX = "/newsletter"
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Links:
    """The signed links of one subscriber."""

    preferences: str
    unsubscribe: str
    unsubscribe_mailto: str | None


def page_url(settings: Settings, path: str) -> str:
    return settings.public_base_url.rstrip("/") + ROUTE_PREFIX + path


def subscriber_links(settings: Settings, signer: TokenSigner, subscriber: Subscriber) -> Links:
    """Return the preferences and unsubscribe links of `subscriber`."""
    mailto = None
    if settings.unsubscribe_mailto:
        subject = quote(f"unsubscribe {signer.sign(UNSUBSCRIBE, subscriber.key)}")
        mailto = f"mailto:{settings.unsubscribe_mailto}?subject={subject}"
    return Links(
        preferences=page_url(settings, f"/preferences/{signer.sign(MANAGE, subscriber.key)}"),
        unsubscribe=page_url(settings, f"/unsubscribe/{signer.sign(UNSUBSCRIBE, subscriber.key)}"),
        unsubscribe_mailto=mailto,
    )


def confirmation_url(settings: Settings, signer: TokenSigner, subscriber: Subscriber) -> str:
    return page_url(settings, f"/confirm/{signer.sign(CONFIRM, subscriber.key)}")


def header_text(text: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    """Collapse line breaks and runs of spaces, and shorten to `limit` characters.

    Titles come from outside sources, and a line break inside a header would either be rejected
    by the email package or let the source inject headers.
    """
    flat = _WHITESPACE.sub(" ", text).strip()
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rstrip() + "…"


def render(language: str, name: str, context: dict[str, Any]) -> tuple[str, str]:
    """Render the `.txt` and `.html` templates `name` in `language`."""
    env = environment(language, "mail")
    text = env.get_template(f"{name}.txt").render(**context)
    html = env.get_template(f"{name}.html").render(**context)
    return text, html


def build_message(
    settings: Settings,
    subscriber: Subscriber,
    *,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    links: Links | None = None,
) -> EmailMessage:
    """Assemble a multipart/alternative message to `subscriber`.

    With `links`, the message is a newsletter and gets the unsubscribe headers. Confirmation
    mails go without, because they are not part of a list the reader joined.
    """
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = settings.mail_from
    message["To"] = Address(addr_spec=subscriber.email)
    message["Subject"] = header_text(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=_sender_domain(settings))
    message["Auto-Submitted"] = "auto-generated"

    if links is not None:
        targets = [f"<{links.unsubscribe}>"]
        if links.unsubscribe_mailto:
            targets.insert(0, f"<{links.unsubscribe_mailto}>")
        # Stored raw and folded between the URLs: the email package would otherwise turn a URL
        # longer than a line into RFC 2047 encoded-words, which no mailbox provider decodes here.
        message.set_raw("List-Unsubscribe", ",\n ".join(targets))
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["List-Id"] = f"Noticeboard <newsletter.{_sender_domain(settings)}>"

    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    # Set last: `set_content` clears every Content-* header and `add_alternative` moves them into
    # the first body part, so an earlier Content-Language never reached the top of the message.
    message["Content-Language"] = subscriber.language
    return message


def _sender_domain(settings: Settings) -> str:
    address = parseaddr(settings.mail_from)[1]
    domain = address.rpartition("@")[2]
    return domain or urlsplit(settings.public_base_url).hostname or "localhost"
