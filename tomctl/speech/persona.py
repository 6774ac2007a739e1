"""The assistant's persona: system prompt and fixed phrases, from per-language templates.

Templates live in ``prompts/`` (English and German are bundled) or in TOM_PROMPT_DIR:
``system.<lang>.txt`` and ``phrases.<lang>.json``; ``{assistant_name}`` and
``{business_name}`` are filled in from the settings.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from tomctl.config import PersonaSettings
from tomctl.errors import ConfigError

BUNDLED_DIR = Path(__file__).parent / "prompts"
PHRASES = ("greeting", "fallback", "reprompt", "goodbye", "handover", "holding",
           "consent_question", "consent_given", "consent_refused", "rating_question")
# A greeting that says, in some words, that a machine answers (EU AI Act, Art. 50).
DISCLOSURE = {
    "en": r"\b(automated|automatic|virtual|digital|ai|artificial intelligence|bot|robot|"
          r"machine|computer)\b",
    "de": r"(automatisch|automatisiert|virtuell|digital|\bKI\b|künstliche|\bBot\b|"
          r"Sprachcomputer|Maschine|Computer)",
}


# A small LLM may say it is a person (SmolLM2-135M, to a misheard reply: "I'm not a
# chatbot. I'm a human."): a claim to be a person, or to be no machine.
HUMAN_CLAIMS = {
    "en": r"\bi(?:'m| am)\s+(?:(?:just|only|really|actually)\s+)?(?:(?:a|an)\s+)?(?:\w+\s+)?"
          r"(?:human|person|human being|man|woman|guy|lady|employee|member of staff)\b"
          r"|\bi(?:'m| am)\s+not\s+(?:(?:a|an)\s+)?(?:\w+\s+)?(?:bot|chatbot|robot|machine|ai|"
          r"computer|program|automated|artificial|virtual)\b",
    "de": r"\bich bin\s+(?:(?:nur|wirklich|tatsächlich)\s+)?(?:(?:ein|eine)\s+)?(?:\w+\s+)?"
          r"(?:mensch|person|mann|frau|mitarbeiter|mitarbeiterin)\b"
          r"|\bich bin\s+(?:kein|keine)\s+(?:\w+\s+)?(?:bot|chatbot|roboter|maschine|ki|"
          r"computer|programm|automat)\b",
}
# What TOM says instead: the truth (EU AI Act, Art. 50).
NOT_HUMAN = {"en": "I am an automated assistant.", "de": "Ich bin ein automatischer Assistent."}


@dataclasses.dataclass(frozen=True)
class Persona:
    language: str
    system_prompt: str
    phrases: dict[str, str]


def fill(template: str, settings: PersonaSettings, where: object) -> str:
    """``template`` with the assistant's and the business's names; ``where`` (a file, a
    variant) is named if a placeholder is unknown."""
    try:
        return template.format(assistant_name=settings.assistant_name,
                               business_name=settings.business_name).strip()
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"{where}: bad placeholder {exc}; only {{assistant_name}} and "
                          "{business_name} are known") from None


def load_persona(settings: PersonaSettings) -> Persona:
    directory = Path(settings.prompt_dir).expanduser() if settings.prompt_dir else BUNDLED_DIR
    system_file = directory / f"system.{settings.language}.txt"
    phrases_file = directory / f"phrases.{settings.language}.json"
    try:
        system = system_file.read_text(encoding="utf-8")
        phrases = json.loads(phrases_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"TOM_PROMPT_DIR: cannot read {exc.filename}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TOM_PROMPT_DIR: {phrases_file} is not valid JSON: {exc}") from None
    missing = [name for name in PHRASES if not isinstance(phrases.get(name), str)]
    if missing:
        raise ConfigError(f"TOM_PROMPT_DIR: {phrases_file} lacks the phrases {missing}")
    persona = Persona(settings.language, fill(system, settings, system_file),
                      {name: fill(phrases[name], settings, phrases_file) for name in PHRASES})
    if settings.ai_disclosure and not discloses_automation(persona.phrases["greeting"],
                                                           settings.language):
        raise ConfigError(f"{phrases_file}: the greeting must tell callers they talk to an "
                          "automated assistant (e.g. \"the automated assistant\"); set "
                          "TOM_AI_DISCLOSURE=false only where the law does not ask for it")
    return persona


def discloses_automation(text: str, language: str) -> bool:
    return bool(re.search(DISCLOSURE.get(language, DISCLOSURE["en"]), text, re.IGNORECASE))


def honest(piece: str, language: str) -> str:
    """``piece`` of an LLM answer as TOM may say it: unchanged, or, where it claims that a
    person speaks, the truth instead."""
    if not re.search(HUMAN_CLAIMS.get(language, HUMAN_CLAIMS["en"]), piece, re.IGNORECASE):
        return piece
    return NOT_HUMAN.get(language, NOT_HUMAN["en"])
