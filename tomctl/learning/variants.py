"""The variants TOM tries on callers, from a TOML file (``TOM_VARIANTS_FILE``).

    [[variant]]
    id = "base"
    description = "The bundled persona and settings."

    [[variant]]
    id = "brief"
    description = "A shorter greeting, a slightly faster pace."
    greeting = "Hi, {assistant_name} here, the automated assistant of {business_name}."
    voice = "/opt/voices/en_US-amy-medium.onnx"   # a Piper voice, its .onnx.json beside it
    length_scale = 0.9        # Piper's pace: below 1 faster
    temperature = 0.5         # the LLM's
    turn_ask_after_ms = 160   # end-of-turn timing
    turn_max_silence_ms = 1200
    system_prompt = "..."     # with {assistant_name} and {business_name}

Every field but ``id`` and ``description`` is optional: what a variant does not set is
the settings' own. Errors name the file, the variant and the field. Without a file, TOM
runs ``base`` alone.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from tomctl.config import PersonaSettings, read_toml
from tomctl.errors import ConfigError
from tomctl.speech.persona import discloses_automation, fill

BASE = "base"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# field → (type, low, high)
NUMBERS = {"length_scale": (float, 0.5, 2.0), "temperature": (float, 0.0, 2.0),
           "turn_ask_after_ms": (int, 50, 2000), "turn_max_silence_ms": (int, 300, 5000)}
TEXTS = ("greeting", "system_prompt")


@dataclasses.dataclass(frozen=True)
class Variant:
    id: str
    description: str = ""
    greeting: str | None = None
    system_prompt: str | None = None
    voice: str | None = None
    length_scale: float | None = None
    temperature: float | None = None
    turn_ask_after_ms: int | None = None
    turn_max_silence_ms: int | None = None

    def overrides(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if field.name not in ("id", "description") and getattr(self, field.name)
                is not None}


DEFAULT = (Variant(BASE, "The bundled persona and settings."),)


def speaks_its_own(variant: Variant) -> bool:
    """A variant whose fixed phrases sound different from the base's (its voice or pace),
    so they are synthesised for it at start."""
    return bool(variant.greeting or variant.voice or variant.length_scale is not None)


def phrase_name(phrase: str, variant: Variant) -> str:
    """The engine's name for ``phrase`` as ``variant`` says it."""
    return f"{phrase}:{variant.id}" if speaks_its_own(variant) else phrase


def load(path: str, persona: PersonaSettings) -> tuple[Variant, ...]:
    if not path:
        return DEFAULT
    data = read_toml(path, "TOM_VARIANTS_FILE")
    entries = data.get("variant")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: no [[variant]] tables")
    unknown = set(data) - {"variant"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}")
    variants, seen = [], set()
    for number, entry in enumerate(entries, 1):
        variants.append(_variant(path, number, entry, persona))
        if variants[-1].id in seen:
            raise ConfigError(f"{path}: variant {variants[-1].id!r} is defined twice")
        seen.add(variants[-1].id)
    return tuple(variants)


def _variant(path: str, number: int, entry: Any, persona: PersonaSettings) -> Variant:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: variant {number} is not a table")
    ident = entry.get("id")
    if not isinstance(ident, str) or not _ID.match(ident):
        raise ConfigError(f"{path}: variant {number}: id must be 1-32 lower-case letters, "
                          f"digits, - or _ (got {ident!r})")
    where = f"{path}: variant {ident!r}"
    known = {field.name for field in dataclasses.fields(Variant)}
    for key in entry:
        if key not in known:
            raise ConfigError(f"{where}: unknown field {key!r} (known: {sorted(known)})")
    values: dict[str, Any] = {"id": ident}
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description must be a string")
    values["description"] = description
    for name in TEXTS:
        if name in entry:
            values[name] = _text(where, name, entry[name], persona)
    if "voice" in entry:
        values["voice"] = _voice(where, entry["voice"])
    if "greeting" in values and persona.ai_disclosure and not discloses_automation(
            values["greeting"], persona.language):
        raise ConfigError(f"{where}: greeting must tell callers they talk to an automated "
                          "assistant (TOM_AI_DISCLOSURE)")
    for name, (kind, low, high) in NUMBERS.items():
        if name in entry:
            value = entry[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (kind is int and not isinstance(value, int)) or not low <= value <= high:
                raise ConfigError(f"{where}: {name} must be {kind.__name__} between {low} "
                                  f"and {high} (got {value!r})")
            values[name] = kind(value)
    return Variant(**values)


def _voice(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.endswith(".onnx"):
        raise ConfigError(f"{where}: voice must be the path of a Piper .onnx file")
    path = os.path.expanduser(value)
    if not os.path.isfile(path) or not os.path.isfile(f"{path}.json"):
        raise ConfigError(f"{where}: voice {path} and {path}.json are both needed")
    return path


def _text(where: str, name: str, value: Any, persona: PersonaSettings) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {name} must be a non-empty string")
    return fill(value, persona, f"{where}: {name}")
