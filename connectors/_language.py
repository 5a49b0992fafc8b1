"""Language tags as documents declare them."""

from __future__ import annotations

import re

SUBTAG_SEPARATOR = re.compile(r"[-_]")


def primary_language(tag: str | None) -> str | None:
    """Return the primary subtag of a language tag in lower case: `fi-FI` gives `fi`."""
    if not tag or not tag.strip():
        return None
    return SUBTAG_SEPARATOR.split(tag.strip())[0].lower() or None
