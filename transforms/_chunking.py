"""Splitting long text into requests a translation provider accepts, and joining the results.

deep-translator 1.11.4 rejects text of 5,000 characters or more for Google (`NotValidLength`,
raised before any request) and of 500 or more for MyMemory. Text is cut at paragraph breaks first,
then at sentence ends, then at spaces, and only a single word longer than the limit is cut inside.
Every piece keeps the whitespace that followed it, so `join_chunks` restores the layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n\s*)")
_SENTENCE_END = re.compile(r"(?<=[.!?…:;])(\s+)")
_SPACE = re.compile(r"(\s+)")


@dataclass(frozen=True)
class Chunk:
    """A piece of text to translate and the whitespace that followed it in the original."""

    text: str
    separator: str


def split_text(text: str, limit: int) -> list[Chunk]:
    """Split `text` into chunks shorter than `limit` characters, at the largest boundary."""
    if limit < 2:
        raise ValueError(f"chunk limit {limit} is too small; use at least a few hundred characters")

    pieces = _split_keeping(text, _PARAGRAPH_BREAK)
    pieces = _refine(pieces, limit, _SENTENCE_END)
    pieces = _refine(pieces, limit, _SPACE)
    pieces = _cut_long_words(pieces, limit)
    return _pack(pieces, limit)


def join_chunks(translated: list[str], chunks: list[Chunk]) -> str:
    """Join translated chunk texts with the separators of the original chunks."""
    if len(translated) != len(chunks):
        raise ValueError(f"got {len(translated)} translated chunks for {len(chunks)} chunks")
    return "".join(text + chunk.separator for text, chunk in zip(translated, chunks, strict=True))


def _split_keeping(text: str, boundary: re.Pattern[str]) -> list[Chunk]:
    parts = boundary.split(text)
    chunks: list[Chunk] = []
    for index in range(0, len(parts), 2):
        separator = parts[index + 1] if index + 1 < len(parts) else ""
        chunks.append(Chunk(parts[index], separator))
    return chunks


def _refine(pieces: list[Chunk], limit: int, boundary: re.Pattern[str]) -> list[Chunk]:
    refined: list[Chunk] = []
    for piece in pieces:
        if len(piece.text) + len(piece.separator) < limit:
            refined.append(piece)
            continue
        inner = _split_keeping(piece.text, boundary)
        inner[-1] = Chunk(inner[-1].text, inner[-1].separator + piece.separator)
        refined.extend(inner)
    return refined


def _cut_long_words(pieces: list[Chunk], limit: int) -> list[Chunk]:
    cut: list[Chunk] = []
    size = limit - 1
    for piece in pieces:
        if len(piece.text) < limit:
            cut.append(piece)
            continue
        starts = range(0, len(piece.text), size)
        for start in starts:
            is_last = start + size >= len(piece.text)
            cut.append(Chunk(piece.text[start : start + size], piece.separator if is_last else ""))
    return cut


def _pack(pieces: list[Chunk], limit: int) -> list[Chunk]:
    """Merge neighbouring pieces while the merged text stays under `limit`."""
    packed: list[Chunk] = []
    for piece in pieces:
        if packed:
            previous = packed[-1]
            merged_text = previous.text + previous.separator + piece.text
            if len(merged_text) < limit:
                packed[-1] = Chunk(merged_text, piece.separator)
                continue
        packed.append(piece)
    return packed
