"""Objective audio checks of a WAV file, per channel (pure, apart from reading the file).

Figures are in 16-bit sample units, as the seeds give their thresholds:

- ``rms``: loudness of the speech (without the DC offset), over the *active* 20 ms frames (RMS at least twice the
  noise floor's and at least 10), or over the whole channel when none is: a conversation is
  half silence, and that must not make a good recording look quiet.
- ``clipping``: share of samples at full scale (|x| ≥ 32766).
- ``dc_offset``: |mean|.
- ``snr_db``: the active frames' mean power over the noise floor's, the mean power of the
  quietest 10 % of frames (speech by energy against non-speech, in dB, capped at 99; a floor
  of digital silence is 99).
- ``duration_s``.

Each figure is judged pass, warn or fail: fail beyond the seeds' limits (RMS 300–9000,
clipping < 0.001, DC < 200, SNR > 20 dB), warn inside them but close (the ``WARN`` bands).
A file that is not a 16-bit PCM WAV, or shorter than its header says, is a QcError.
"""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import wave
from typing import BinaryIO

import numpy as np

from tomctl.errors import TomError

PASS, WARN, FAIL = "pass", "warn", "fail"
RANK = {PASS: 0, WARN: 1, FAIL: 2}
FRAME_S = 0.02
FULL_SCALE = 32766
ACTIVE_OVER_FLOOR = 2.0
ACTIVE_MIN_RMS = 10.0
NOISE_SHARE = 0.10
SNR_CAP_DB = 99.0
MAX_CHANNELS = 8
MAX_RATE = 384000
# (fail below, warn below, warn above, fail above): None where a side has no limit.
LIMITS = {
    "rms": (300.0, 450.0, 7500.0, 9000.0),
    "clipping": (None, None, 0.0002, 0.001),
    "dc_offset": (None, None, 100.0, 200.0),
    "snr_db": (20.0, 25.0, None, None),
    "duration_s": (0.02, 1.0, None, None),
}


class QcError(TomError):
    """The file cannot be checked: not a WAV, not 16-bit PCM, truncated."""

    fault = "operator"


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    value: float
    verdict: str


@dataclasses.dataclass(frozen=True)
class ChannelReport:
    channel: int
    checks: list[Check]

    @property
    def verdict(self) -> str:
        return worst(check.verdict for check in self.checks)


def worst(verdicts) -> str:
    return max(verdicts, key=RANK.__getitem__, default=PASS)


def judge(name: str, value: float) -> str:
    fail_low, warn_low, warn_high, fail_high = LIMITS[name]
    if (fail_low is not None and value < fail_low) or (fail_high is not None
                                                       and value >= fail_high):
        return FAIL
    if (warn_low is not None and value < warn_low) or (warn_high is not None
                                                       and value >= warn_high):
        return WARN
    return PASS


def measure(samples: np.ndarray, rate: int) -> dict[str, float]:
    """The figures of one channel of int16 samples."""
    x = samples.astype(np.float64)
    figures = {"duration_s": round(len(x) / rate, 3)}
    if not len(x):
        return {**figures, "rms": 0.0, "clipping": 0.0, "dc_offset": 0.0, "snr_db": 0.0}
    dc = float(np.mean(x))
    ac = x - dc                 # loudness and noise without the offset, which is its own check
    size = max(1, int(rate * FRAME_S))
    frames = ac[:len(ac) - len(ac) % size].reshape(-1, size) if len(ac) >= size else ac[None, :]
    power = np.mean(frames ** 2, axis=1)
    quiet = np.sort(power)[:max(1, int(len(power) * NOISE_SHARE))]
    floor = float(np.mean(quiet))
    active = power[(power >= floor * ACTIVE_OVER_FLOOR ** 2) & (power >= ACTIVE_MIN_RMS ** 2)]
    signal = float(np.mean(active)) if len(active) else float(np.mean(ac ** 2))
    if floor <= 0:
        snr = SNR_CAP_DB
    elif signal <= floor:
        snr = 0.0
    else:
        snr = min(SNR_CAP_DB, 10 * np.log10((signal - floor) / floor))
    return {**figures, "rms": round(float(np.sqrt(signal)), 1),
            "clipping": round(float(np.mean(np.abs(x) >= FULL_SCALE)), 6),
            "dc_offset": round(abs(dc), 1), "snr_db": round(float(snr), 1)}


def check_samples(channels: np.ndarray, rate: int) -> list[ChannelReport]:
    """``channels``: int16, shape (samples, channels)."""
    return [ChannelReport(n, [Check(name, value, judge(name, value)) for name, value in
                              measure(channels[:, n], rate).items()])
            for n in range(channels.shape[1])]


def read_wav(path: str, raw: BinaryIO | None = None) -> tuple[np.ndarray, int]:
    """(samples as int16 of shape (n, channels), rate) of the WAV at ``path`` (or in
    ``raw``, named ``path``); QcError for anything else."""
    try:
        with (open(path, "rb") if raw is None else contextlib.nullcontext(raw)) as raw:
            size = raw.seek(0, 2)
            raw.seek(0)
            with wave.open(raw, "rb") as wav:
                width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
                declared = wav.getnframes()
                data = wav.readframes(declared)
    # What the wave module raises on malformed files: a bad channel count is a ValueError,
    # a chunk running past the end a RuntimeError (both found by tests/fuzz).
    except (wave.Error, EOFError, ValueError, RuntimeError, struct.error) as exc:
        raise QcError(f"{path}: not a PCM WAV file ({exc or type(exc).__name__})") from None
    except OSError as exc:
        raise QcError(f"{path}: {exc.strerror or exc}") from None
    if width != 2:
        raise QcError(f"{path}: {8 * width}-bit samples; only 16-bit PCM is checked")
    if not 1 <= channels <= MAX_CHANNELS or not 1000 <= rate <= MAX_RATE:
        raise QcError(f"{path}: {channels} channels at {rate} Hz is not a recording")
    got = len(data) // (2 * channels)
    if got < declared:
        raise QcError(f"{path}: truncated: the header says {declared} frames, the file "
                      f"({size} bytes) holds {got}")
    samples = np.frombuffer(data[:got * 2 * channels], dtype="<i2").reshape(-1, channels)
    return samples, rate


def check_file(path: str) -> dict:
    samples, rate = read_wav(path)
    reports = check_samples(samples, rate)
    return {"file": path, "rate": rate, "verdict": worst(r.verdict for r in reports),
            "channels": [{"channel": r.channel, "verdict": r.verdict,
                          "checks": {c.name: {"value": c.value, "verdict": c.verdict}
                                     for c in r.checks}} for r in reports]}
