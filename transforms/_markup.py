"""Text nodes of sanitised HTML, so that only text is translated and markup stays as it was."""

from __future__ import annotations

import re
from collections.abc import Callable

from bs4 import BeautifulSoup, NavigableString
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

# Elements whose text is code or data, never prose.
_UNTRANSLATED_PARENTS = frozenset({"script", "style", "code", "kbd", "samp", "var"})
_BLOCKS = frozenset(
    {
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "table",
        "tr",
        "section",
        "article",
        "header",
        "footer",
        "figure",
        "figcaption",
        "dl",
        "dt",
        "dd",
    }
)
_NON_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_NEWLINES = re.compile(r"\s*\n\s*\n\s*")


def has_letters(text: str) -> bool:
    """Tell whether `text` contains at least one letter."""
    return any(character.isalpha() for character in text)


def translate_text_nodes(html: str, translate_all: Callable[[list[str]], list[str]]) -> str:
    """Return `html` with every prose text node replaced by its translation.

    `translate_all` gets the node texts in document order and must return as many texts. Tags,
    attributes (link targets included) and text without letters are left untouched.
    """
    soup = BeautifulSoup(html, "html.parser")
    nodes = [node for node in soup.find_all(string=True) if _is_prose(node)]
    if not nodes:
        return html

    translated = translate_all([str(node) for node in nodes])
    if len(translated) != len(nodes):
        raise ValueError(f"got {len(translated)} translated text nodes for {len(nodes)} nodes")

    for node, text in zip(nodes, translated, strict=True):
        node.replace_with(NavigableString(text))
    return str(soup)


def html_to_text(html: str) -> str:
    """Return the text of `html` with a blank line between block elements."""
    soup = BeautifulSoup(html, "html.parser")
    for line_break in soup.find_all("br"):
        line_break.replace_with("\n")
    for block in soup.find_all(_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")

    text = _SPACES.sub(" ", soup.get_text())
    text = _NEWLINES.sub("\n\n", text)
    lines = [line.strip() for line in text.split("\n")]
    return "\n".join(lines).strip()


def _is_prose(node: NavigableString) -> bool:
    if isinstance(node, _NON_TEXT):
        return False
    if node.parent is not None and node.parent.name in _UNTRANSLATED_PARENTS:
        return False
    return has_letters(str(node))
