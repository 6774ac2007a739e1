"""PCM frames: 16-bit signed little-endian mono, 20 ms each, at 8 kHz (phone) or 16 kHz (browser).

All resampling goes through soxr. Inference works on float32 at 16 kHz (Silero, Whisper).
"""

from __future__ import annotations

import numpy as np
import soxr

FRAME_MS = 20
MODEL_RATE = 16000
SUPPORTED_RATES = (8000, 16000)


def frame_bytes(rate: int) -> int:
    """Bytes in one 20 ms frame of s16le mono at ``rate``."""
    return rate * FRAME_MS // 1000 * 2


def check_rate(rate: int) -> int:
    if rate not in SUPPORTED_RATES:
        raise ValueError(f"unsupported sample rate {rate}; expected one of {SUPPORTED_RATES}")
    return rate


def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class StreamResampler:
    """Streaming soxr resampler (keeps its filter state between chunks) from float32 to float32."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._same = in_rate == out_rate
        self._stream = None if self._same else soxr.ResampleStream(
            in_rate, out_rate, 1, dtype="float32", quality="HQ")

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        if self._same:
            return samples
        return self._stream.resample_chunk(samples, last=last)


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """One-shot resampling of a whole float32 clip."""
    if in_rate == out_rate:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples.astype(np.float32, copy=False), in_rate, out_rate, quality="HQ")


def to_frames(samples: np.ndarray, rate: int) -> list[bytes]:
    """Cut float32 audio into 20 ms s16le frames, zero-padding the last one."""
    pcm = float_to_pcm(samples)
    size = frame_bytes(rate)
    if len(pcm) % size:
        pcm += b"\x00" * (size - len(pcm) % size)
    return [pcm[i:i + size] for i in range(0, len(pcm), size)]
