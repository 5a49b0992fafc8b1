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
# Every match of ADDRESS_PATTERN contains "://", "@" or a match of this pattern, so a text
# without any of them skips the substitution (see `_may_contain_address`). The pattern starts
# with a literal dot, which lets the regex engine jump from dot to dot.
ADDRESS_DOT_PATTERN = re.compile(rf"\.(?:{ADDRESS_SUFFIXES}\b|(?<=www\.))", re.IGNORECASE)
WORD_PATTERN = re.compile(r"[^\W_]+")
SENTENCE_BREAK_CHARACTERS = ".!?:;\n\"«»“”|–—"
SENTENCE_BREAKS = frozenset(SENTENCE_BREAK_CHARACTERS)
# A word, or one character that ends a sentence. No break character is a word character, so
# `tokenise` reads the words and the breaks between them in one scan.
WORD_OR_BREAK_PATTERN = re.compile(rf"[^\W_]+|[{re.escape(SENTENCE_BREAK_CHARACTERS)}]")
# Tokens that are remembered, by word and sentence start, because notices repeat most of their
# words.
WORD_CACHE_SIZE = 16_384


@dataclass(frozen=True, slots=True)
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
    """Split a text into word tokens, after removing web and e-mail addresses.

    Equal words at equal sentence positions get the same `Token` object, which is safe because
    tokens are frozen.
    """
    cleaned = unicodedata.normalize("NFC", text)
    if _may_contain_address(cleaned):
        cleaned = ADDRESS_PATTERN.sub(" . ", cleaned)

    tokens: list[Token] = []
    sentence_start = True
    for word in WORD_OR_BREAK_PATTERN.findall(cleaned):
        if word in SENTENCE_BREAKS:
            sentence_start = True
            continue
        tokens.append(_token(word, sentence_start))
        sentence_start = False

    return tokens


def _may_contain_address(text: str) -> bool:
    # On the benchmark's 700-character notices, which have no addresses, these checks took about
    # 3 µs and the substitution about 110 µs.
    return "://" in text or "@" in text or ADDRESS_DOT_PATTERN.search(text) is not None


@functools.lru_cache(maxsize=WORD_CACHE_SIZE)
def _token(word: str, sentence_start: bool) -> Token:
    return Token(
        text=word,
        folded=fold(word),
        exact=exact_form(word),
        capitalised=word[0].isupper(),
        sentence_start=sentence_start,
    )
