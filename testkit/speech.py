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
def espeak_say(text: str, rate: int, voice: str = "en-us", speed_wpm: int = 150,
               ssml: bool = False) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-w", str(path),
                        *(["-m"] if ssml else []), text], check=True, timeout=30)
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


def on_the_line(audio: np.ndarray, rate: int, snr_db: float, seed: int) -> np.ndarray:
    """A caller's words as a call carries them: the line open 0.3 s before, 50 ms after,
    with its noise."""
    return with_noise(np.concatenate([silence(0.3, rate), audio, silence(0.05, rate)]),
                      snr_db, seed=seed)


def noise_burst(seconds: float, rate: int, level: float = 0.3, seed: int = 2) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, level, int(seconds * rate))).astype(np.float32)


PAUSE = "|"   # where a sentence given to the paused-speech makers breaks off


def stretch_pause(audio: np.ndarray, rate: int, pause_s: float) -> np.ndarray:
    """``audio`` with its longest inner gap (quieter than -40 dBFS, in its middle 80 %)
    replaced by exactly ``pause_s`` of silence between the two audible samples around it."""
    loud = np.abs(audio) > 0.01
    step = max(1, rate // 100)                       # 10 ms blocks
    blocks = loud[:len(loud) // step * step].reshape(-1, step).any(axis=1)
    best, start = (0, 0), None
    for i, is_loud in enumerate(np.append(blocks, True)):
        if not is_loud and start is None:
            start = i
        elif is_loud and start is not None:
            inner = 0.1 * len(blocks) < start and i < 0.9 * len(blocks)
            if inner and i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    if best == (0, 0):
        raise ValueError("no pause to stretch in the audio")
    before = np.flatnonzero(loud[:best[0] * step])[-1] + 1
    after = best[1] * step + np.flatnonzero(loud[best[1] * step:])[0]
    return np.concatenate([audio[:before], np.zeros(int(pause_s * rate), np.float32),
                           audio[after:]])


def piper_say_paused(engine, text: str, rate: int, pause_s: float) -> np.ndarray:
    """Piper speaking ``text`` with a pause of ``pause_s`` at the PAUSE mark: the voice reads
    a comma there (the voice of a sentence going on), and its gap is stretched."""
    return stretch_pause(piper_say(engine, text.replace(f" {PAUSE}", ","), rate), rate, pause_s)


def espeak_say_paused(text: str, rate: int, pause_s: float, voice: str = "en-us") -> np.ndarray:
    """espeak-ng reading ``text`` as one sentence with an SSML break at the PAUSE mark."""
    ssml = "<speak>" + text.replace(PAUSE, f'<break time="{int(pause_s * 1000)}ms"/>') + \
        "</speak>"
    return stretch_pause(espeak_say(ssml, rate, voice, ssml=True), rate, pause_s)
