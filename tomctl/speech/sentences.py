"""Cut a streaming LLM reply into speakable pieces (pure).

The first piece may end at a clause (comma, colon, semicolon) once it is long enough, or
after ``first_max_words`` words at the latest, so that speech starts sooner: its audio costs
Piper about 35 ms of CPU per word, and the caller waits for all of it. Later pieces end at
sentence punctuation followed by a space. A small model sometimes loops ("No, no, no, …"
until its token limit): the splitter stops at the loop, and says what came before it.
"""

from __future__ import annotations

import re
import zlib

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:]\s")
_WORD_START = re.compile(r"(?<!\S)\S")
FIRST_MIN_WORDS = 4
# Prepositions and conjunctions (English and German): a first piece may end before one.
_PHRASE_STARTS = frozenset(
    "for with in on at to from about because but and or so if when that which who "
    "für mit in an auf bei von zu nach über weil aber und oder wenn dass damit".split())
# Markdown, emoji and other symbols a small LLM likes to emit but a voice should not read.
_UNSPEAKABLE = re.compile(r"[*_#`~|<>\[\]{}\\^]|[\U0001F000-\U0001FAFF\u2600-\u27BF]")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_MAX_COMPRESSION_RATIO = 2.4  # Whisper's own threshold for repetitive output


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


def repeats_itself(text: str) -> bool:
    """True for a loop: one word or phrase many times over (Whisper's on noise, a small
    LLM's on its own words)."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) >= 6 and len(set(words)) <= len(words) // 4:
        return True
    if len(words) >= 4 and len(set(words)) == 1:     # "Hello? Hello? Hello? Hello?"
        return True
    return _compression_ratio(text) > _MAX_COMPRESSION_RATIO


def speakable(text: str) -> str:
    """Strip what a voice should not read aloud and normalise spaces."""
    return _SPACES.sub(" ", _UNSPEAKABLE.sub(" ", text)).strip()


class SentenceSplitter:
    """Feed text deltas with :meth:`push`; collect complete pieces; :meth:`flush` the rest."""

    def __init__(self, min_chars: int = 12, first_clause_words: int = 2,
                 first_max_words: int = 6) -> None:
        self._buffer = ""
        self._min_chars = min_chars
        self._first_clause_words = first_clause_words
        self._first_max_words = first_max_words
        self._emitted = 0
        self._said = ""             # the pieces emitted so far
        self.sentences = 0          # complete sentences emitted (a first clause is not one)
        self.looping = False        # the text went into a loop: nothing more is said

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        # Across sentences too: "No, I'm sorry, I'm sorry. I'm sorry, I'm sorry." loops in
        # pieces that each look fine.
        if self.looping or repeats_itself(self._buffer) or \
                repeats_itself(self._said + self._buffer):
            self.looping, self._buffer = True, ""
            return []
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
                self.sentences += 1
                return self._cut(match.end())
        if self._emitted == 0:
            for match in _CLAUSE_END.finditer(self._buffer):
                if len(self._buffer[:match.end()].split()) >= self._first_clause_words:
                    return self._cut(match.end())
            cut = self._first_phrase_end()
            if cut is not None:
                return self._cut(cut)
        return None

    def _first_phrase_end(self) -> int | None:
        """Where a first piece without punctuation ends: before a word that starts a new
        phrase ("for", "with", "und"…) once it has FIRST_MIN_WORDS words, else after
        ``first_max_words``. A word is complete once the next one has begun."""
        starts = [m.start() for m in _WORD_START.finditer(self._buffer)]
        words = self._buffer.split()
        for index in range(FIRST_MIN_WORDS, min(len(starts) - 1, self._first_max_words + 1)):
            if words[index].lower() in _PHRASE_STARTS:
                return starts[index]
        if len(starts) > self._first_max_words + 1:
            return starts[self._first_max_words]
        return None

    def _cut(self, end: int) -> str | None:
        piece, self._buffer = speakable(self._buffer[:end]), self._buffer[end:]
        if not piece:
            return self._next_piece()
        self._emitted += 1
        self._said += piece + " "
        return piece
