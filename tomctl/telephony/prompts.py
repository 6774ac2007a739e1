"""Prompts FreeSWITCH plays itself with ``uuid_broadcast``: only those that end a conversation.

Any playback stops the unicast fork for good (CAPTURES.md 6.3), so the goodbye, the
hand-over announcement and the last-resort fallback are the only prompts played this way;
everything else TOM says streams over the fork. They are synthesised once at start into
the spool directory, named by a hash of voice and text so a changed text never plays stale
audio, and written atomically so FreeSWITCH never reads half a file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import wave
from typing import Any

from tomctl.errors import ConfigError
from tomctl.telephony import wire

ENDING_PROMPTS = ("goodbye", "handover", "fallback")
RATE = 8000


class PromptSpool:
    def __init__(self, directory: str, engine: Any) -> None:
        self.directory = directory
        self._engine = engine
        self._files: dict[str, tuple[str, float]] = {}   # name → (path, seconds)

    def start(self) -> None:
        try:
            os.makedirs(self.directory, mode=0o755, exist_ok=True)
            for name in ENDING_PROMPTS:
                self._files[name] = self._write(name)
        except OSError as exc:
            raise ConfigError(f"cannot write prompts to TOM_SPOOL_DIR={self.directory!r}: "
                              f"{exc.strerror or exc}") from None

    def _write(self, name: str) -> tuple[str, float]:
        text = self._engine.persona.phrases[name]
        voice = self._engine.settings.speech.tts_voice or "default"
        digest = hashlib.sha256(f"{voice}\n{text}".encode()).hexdigest()[:12]
        path = wire.spool_path(self.directory, f"{name}-{digest}.wav")
        pcm = b"".join(self._engine.phrase(name, RATE))
        if not os.path.exists(path):
            self._save(path, pcm)
        return path, len(pcm) / 2 / RATE

    def question_wav(self, text: str, lead_silence_s: float, tail_s: float) -> str:
        """A caller's question for synthetic calls, between two silences, made once."""
        digest = hashlib.sha256(f"{lead_silence_s}\n{tail_s}\n{text}".encode()).hexdigest()[:12]
        path = wire.spool_path(self.directory, f"synthetic-{digest}.wav")
        if not os.path.exists(path):
            self._save(path, b"\0\0" * int(lead_silence_s * RATE)
                       + b"".join(self._engine.synthesize(text, RATE))
                       + b"\0\0" * int(tail_s * RATE))
        return path

    def _save(self, path: str, pcm: bytes) -> None:
        """Write atomically: FreeSWITCH never reads half a file."""
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as raw, wave.open(raw, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(RATE)
                out.writeframes(pcm)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise

    def broadcast_arg(self, name: str) -> tuple[str, str, float]:
        """(prompt id, file argument with the id tag, duration in seconds) for one playback;
        the id comes back on PLAYBACK_START/STOP as the header ``tom_prompt_id``."""
        path, seconds = self._files[name]
        prompt_id = wire.check_token(f"{name}-{secrets.token_hex(4)}")
        return prompt_id, f"{{tom_prompt_id={prompt_id}}}{wire.check_value(path)}", seconds
