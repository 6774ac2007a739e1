"""What a caller's words ask for beyond an answer (pure)."""

from __future__ import annotations

import re

# Asking for a person: the words callers use, per language. A whole-word match on the
# transcript; the LLM is not trusted to decide a transfer.
_HUMAN = {
    "en": r"\b(human|real person|a person|someone real|operator|agent|representative|"
          r"colleague|transfer me|talk to a man|talk to a woman)\b",
    "de": r"\b(mensch|menschen|mitarbeiter|mitarbeiterin|kollege|kollegin|person|"
          r"jemand(en)?|berater|beraterin|durchstellen|verbinden sie mich)\b",
}


def wants_human(text: str, language: str) -> bool:
    pattern = _HUMAN.get(language, _HUMAN["en"])
    return re.search(pattern, text.lower()) is not None
