"""Speech for tests, generated on the spot: Piper (the bundled voice) and espeak-ng voices,
optionally with noise; and a word error rate to judge transcripts by."""

from __future__ import annotations

import re
import subprocess
import tempfile
import wave
from pathlib import Path

import functools

import gevent
import numpy as np

from tomctl.audio.frames import resample

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def off_hub(fn):
    """Generate speech in a real thread, so the tests' own work never blocks the hub."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return gevent.get_hub().threadpool.apply(fn, args, kwargs)
    return wrapper


@off_hub
def piper_say(engine, text: str, rate: int) -> np.ndarray:
    """float32 mono at ``rate`` spoken by the engine's Piper voice."""
    voice = engine.tts._voice
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text)])
    return resample(audio * 0.6, engine.tts.sample_rate, rate)


@off_hub
def espeak_say(text: str, rate: int, voice: str = "en-us", speed_wpm: int = 150) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-w", str(path), text],
                       check=True, timeout=30)
        with wave.open(str(path)) as wav:
            source_rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return resample(pcm.astype(np.float32) / 32768.0 * 0.8, source_rate, rate)


def with_noise(audio: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    power = float(np.mean(audio ** 2))
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), len(audio))
    return (audio + noise).astype(np.float32)


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def noise_burst(seconds: float, rate: int, level: float = 0.3, seed: int = 2) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, level, int(seconds * rate))).astype(np.float32)
