"""Word tokens for the tagger: case and diacritics folded, with the facts the guards need."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

ADDRESS_SUFFIXES = r"(?:fi|se|ee|lv|eu|com|org|net|gov|info)"
# Web and e-mail addresses are removed before tokenising, so that "www.espoo.fi" or
# "Suomi.fi" does not read as a place name.
ADDRESS_PATTERN = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|\S+@\S+"
    rf"|\b[\w-]+(?:\.[\w-]+)*\.{ADDRESS_SUFFIXES}\b(?:/\S*)?",
    re.IGNORECASE,
)
# Every match of ADDRESS_PATTERN contains a match of this one, so a text without it skips the
# substitution. On 600-character notices without addresses, this search costs about a seventh
# of the substitution.
ADDRESS_HINT_PATTERN = re.compile(rf"://|www\.|@|\.{ADDRESS_SUFFIXES}\b", re.IGNORECASE)
WORD_PATTERN = re.compile(r"[^\W_]+")
# Words whose folded forms are remembered, because notices repeat most of their words.
WORD_CACHE_SIZE = 16_384
SENTENCE_BREAK_PATTERN = re.compile(r"[.!?:;\n\"«»“”|–—]")


@dataclass(frozen=True)
class Token:
    """One word of a notice.

    `folded` is case-folded without diacritics, `exact` is case-folded with them. `sentence_start`
    is true for the first word of the text and for a word after sentence punctuation.
    """

    text: str
    folded: str
    exact: str
    capitalised: bool
    sentence_start: bool

    @property
    def has_diacritics(self) -> bool:
        return self.folded != self.exact


def fold(text: str) -> str:
    """Case-fold a text and strip its diacritics ("Rīgā" and "RIGA" both give "riga")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def exact_form(text: str) -> str:
    """Case-fold a text and keep its diacritics in composed form."""
    return unicodedata.normalize("NFC", text.casefold())


def split_words(text: str) -> list[str]:
    """Split a name or keyword into words on the same boundaries as `tokenise`."""
    return WORD_PATTERN.findall(text)


def tokenise(text: str) -> list[Token]:
    """Split a text into word tokens, after removing web and e-mail addresses."""
    cleaned = unicodedata.normalize("NFC", text)
    if ADDRESS_HINT_PATTERN.search(cleaned):
        cleaned = ADDRESS_PATTERN.sub(" . ", cleaned)
    tokens: list[Token] = []
    previous_end = 0

    for match in WORD_PATTERN.finditer(cleaned):
        gap = cleaned[previous_end : match.start()]
        word = match.group()
        folded, exact = _word_forms(word)
        tokens.append(
            Token(
                text=word,
                folded=folded,
                exact=exact,
                capitalised=word[0].isupper(),
                sentence_start=not tokens or bool(SENTENCE_BREAK_PATTERN.search(gap)),
            )
        )
        previous_end = match.end()

    return tokens


@functools.lru_cache(maxsize=WORD_CACHE_SIZE)
def _word_forms(word: str) -> tuple[str, str]:
    return fold(word), exact_form(word)
