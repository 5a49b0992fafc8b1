"""What a social channel receives and the interface every channel implements."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from publishers.ledger import Claim


@dataclass(frozen=True)
class Outgoing:
    """One notice version as channels post it; every text is the sanitised text from the store."""

    notice_id: str
    version: int
    title: str
    summary_text: str
    body_text: str
    body_html: str
    link: str
    language: str | None
    regions: tuple[str, ...]
    topics: tuple[str, ...]
    authority: str
    item: dict[str, Any]


class Channel(Protocol):
    """A platform that notices are posted to.

    `deliver` returns the platform's id of the post, which the ledger stores to edit it on the next
    version, and raises `DeliveryError` on failure. `withdraw` marks the post `remote_id` of a
    notice that the authority withdrew, and returns and raises the same way. After a call,
    `pause_seconds` is set when the platform's rate limit allows no more requests for that long.
    """

    name: str
    pause_seconds: float | None

    def deliver(self, message: Outgoing, claim: Claim) -> str: ...

    def withdraw(self, message: Outgoing, claim: Claim, remote_id: str | None) -> str: ...

    def close(self) -> None: ...


WITHDRAWN_LABEL = "Withdrawn"
WITHDRAWN_NOTE = "The authority no longer lists this notice."


def hashtag(value: str) -> str | None:
    """Turn a region code or topic slug into a hashtag: `FI-18` to `#FI_18`, `road-works` to `#RoadWorks`."""
    if re.fullmatch(r"[A-Z]{2}(-[A-Z0-9]+)?", value):
        return "#" + value.replace("-", "_")
    words = [word for word in re.split(r"[^\w]+", value) if word]
    if not words:
        return None
    return "#" + "".join(word[:1].upper() + word[1:] for word in words)
