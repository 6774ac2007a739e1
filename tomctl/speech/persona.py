"""The assistant's persona: system prompt and fixed phrases, from per-language templates.

Templates live in ``prompts/`` (English and German are bundled) or in TOM_PROMPT_DIR:
``system.<lang>.txt`` and ``phrases.<lang>.json``; ``{assistant_name}`` and
``{business_name}`` are filled in from the settings.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tomctl.config import PersonaSettings
from tomctl.errors import ConfigError

BUNDLED_DIR = Path(__file__).parent / "prompts"
PHRASES = ("greeting", "fallback", "reprompt", "goodbye", "handover", "holding")


@dataclasses.dataclass(frozen=True)
class Persona:
    language: str
    system_prompt: str
    phrases: dict[str, str]


def _fill(template: str, settings: PersonaSettings, source: Path) -> str:
    try:
        return template.format(assistant_name=settings.assistant_name,
                               business_name=settings.business_name).strip()
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"{source}: bad placeholder {exc}; only {{assistant_name}} and "
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
    return Persona(settings.language, _fill(system, settings, system_file),
                   {name: _fill(phrases[name], settings, phrases_file) for name in PHRASES})
