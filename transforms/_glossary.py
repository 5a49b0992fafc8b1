"""A glossary of names that machine translation must not change.

Before text goes to the provider, each glossary term (or one of its inflected forms) is replaced
by a numbered token such as `⟦3⟧`. After translation the token becomes the term again, or the
term's official English name when the target is English.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import yaml

from noticeboard.errors import ConfigError

logger = logging.getLogger(__name__)

# NOTE: the token shape is tested only against the local test server. Providers that rewrite
# brackets or digits would lose a token; `restore` logs each lost token so that shows up.
_TOKEN = re.compile(r"⟦\s*(\d+)\s*⟧")


@dataclass(frozen=True)
class GlossaryTerm:
    """A protected name, the inflected forms that also count as it, and its English name."""

    term: str
    forms: tuple[str, ...] = ()
    english: str | None = None

    def replacement(self, target: str) -> str:
        """Return the text that stands for this term in a translation into `target`."""
        if target == "en" and self.english:
            return self.english
        return self.term


@dataclass(frozen=True)
class Protected:
    """Text with glossary terms replaced by tokens, and the term behind each token."""

    text: str
    terms: tuple[GlossaryTerm, ...] = field(default_factory=tuple)


class Glossary:
    """The configured terms, matched as whole words and longest first."""

    def __init__(self, terms: list[GlossaryTerm]) -> None:
        self.terms = terms
        spellings: list[tuple[str, GlossaryTerm]] = []
        for term in terms:
            spellings.extend((spelling, term) for spelling in (term.term, *term.forms))
        spellings.sort(key=lambda item: len(item[0]), reverse=True)
        self._by_spelling = dict(spellings)

        if spellings:
            alternatives = "|".join(re.escape(spelling) for spelling, _ in spellings)
            self._pattern: re.Pattern[str] | None = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
        else:
            self._pattern = None

    def protect(self, text: str) -> Protected:
        """Replace every glossary term in `text` by a numbered token."""
        if self._pattern is None:
            return Protected(text)

        found: list[GlossaryTerm] = []

        def tokenise(match: re.Match[str]) -> str:
            found.append(self._by_spelling[match.group(0)])
            return f"⟦{len(found) - 1}⟧"

        return Protected(self._pattern.sub(tokenise, text), tuple(found))

    def restore(self, translated: str, protected: Protected, target: str) -> str:
        """Put the terms back where the provider kept the tokens."""
        if not protected.terms:
            return translated

        seen: set[int] = set()

        def untokenise(match: re.Match[str]) -> str:
            index = int(match.group(1))
            if index >= len(protected.terms):
                return match.group(0)
            seen.add(index)
            return protected.terms[index].replacement(target)

        restored = _TOKEN.sub(untokenise, translated)
        lost = len(protected.terms) - len(seen)
        if lost:
            logger.warning("glossary_tokens_lost count=%d target=%s", lost, target)
        return restored


def load_glossary(path: Path | None = None) -> Glossary:
    """Load the glossary from `path`, or the packaged default when `path` is None."""
    if path is None:
        document = (files("transforms") / "data" / "glossary.yaml").read_text(encoding="utf-8")
        shown = "packaged transforms/data/glossary.yaml"
    else:
        try:
            document = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(
                f"glossary {path} cannot be read: {error}; "
                "fix NOTICEBOARD_GLOSSARY_PATH or unset it"
            ) from error
        shown = str(path)

    try:
        data = yaml.safe_load(document) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"glossary {shown} is not valid YAML: {error}") from error
    return Glossary(_parse_terms(data, shown))


def _parse_terms(data: object, shown: str) -> list[GlossaryTerm]:
    entries = data.get("terms", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"glossary {shown} must contain a list under `terms`")

    terms = []
    for position, entry in enumerate(entries, start=1):
        if isinstance(entry, str):
            entry = {"term": entry}
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("term"), str)
            or not entry["term"].strip()
        ):
            raise ConfigError(f"glossary {shown}: entry {position} needs a non-empty `term`")
        forms = entry.get("forms") or []
        if not isinstance(forms, list) or not all(isinstance(form, str) for form in forms):
            raise ConfigError(
                f"glossary {shown}: `forms` of {entry['term']!r} must be a list of strings"
            )
        english = entry.get("english")
        if english is not None and not isinstance(english, str):
            raise ConfigError(f"glossary {shown}: `english` of {entry['term']!r} must be a string")
        terms.append(GlossaryTerm(term=entry["term"].strip(), forms=tuple(forms), english=english))
    return terms
