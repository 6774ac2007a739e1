"""Cut a streaming LLM reply into speakable pieces (pure).

The first piece may end at a clause (comma, colon, semicolon) once it is long enough, so that
speech starts sooner; later pieces end at sentence punctuation followed by a space.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:]\s")
# Markdown, emoji and other symbols a small LLM likes to emit but a voice should not read.
_UNSPEAKABLE = re.compile(r"[*_#`~|<>\[\]{}\\^]|[\U0001F000-\U0001FAFF\u2600-\u27BF]")
_SPACES = re.compile(r"\s+")


def speakable(text: str) -> str:
    """Strip what a voice should not read aloud and normalise spaces."""
    return _SPACES.sub(" ", _UNSPEAKABLE.sub(" ", text)).strip()


class SentenceSplitter:
    """Feed text deltas with :meth:`push`; collect complete pieces; :meth:`flush` the rest."""

    def __init__(self, min_chars: int = 12, first_clause_words: int = 2) -> None:
        self._buffer = ""
        self._min_chars = min_chars
        self._first_clause_words = first_clause_words
        self._emitted = 0

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        pieces = []
        while (piece := self._next_piece()) is not None:
            pieces.append(piece)
        return pieces

    def flush(self) -> list[str]:
        rest = speakable(self._buffer)
        self._buffer = ""
        return [rest] if rest else []

    def _next_piece(self) -> str | None:
        for match in _SENTENCE_END.finditer(self._buffer):
            if match.end() >= self._min_chars:
                return self._cut(match.end())
        if self._emitted == 0:
            for match in _CLAUSE_END.finditer(self._buffer):
                if len(self._buffer[:match.end()].split()) >= self._first_clause_words:
                    return self._cut(match.end())
        return None

    def _cut(self, end: int) -> str | None:
        piece, self._buffer = speakable(self._buffer[:end]), self._buffer[end:]
        if not piece:
            return self._next_piece()
        self._emitted += 1
        return piece
