"""Silero VAD (the ONNX file that ships inside faster-whisper), run streaming.

One :class:`SileroVad` per process holds the ONNX session; each conversation gets a
:class:`VadStream` with its own recurrent state and 64-sample context. The model scores
512-sample chunks (32 ms) of 16 kHz audio; a chunk costs well under a millisecond, so streams
run on the gevent hub, inline with the audio they score.

A listening call must cost next to nothing, and the model is most of that cost: once a line
has been quieter than QUIET_RMS (-50 dBFS, far below any voice on a phone line, above its
noise) for SETTLE_CHUNKS, further quiet chunks are scored 0 without running the model, whose
state stays the settled silence it had.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tomctl.audio.energy import frame_rms
from tomctl.errors import ModelError

CHUNK_SAMPLES = 512
CHUNK_MS = 32
_CONTEXT_SAMPLES = 64
QUIET_RMS = 10 ** (-50 / 20)
SETTLE_CHUNKS = 8           # 256 ms of quiet scored by the model before it may rest


def bundled_model_path() -> Path:
    import faster_whisper

    return Path(os.path.dirname(faster_whisper.__file__)) / "assets" / "silero_vad_v6.onnx"


class SileroVad:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or bundled_model_path()
        self._session = None

    def load(self) -> None:
        import onnxruntime

        if not self.path.is_file():
            raise ModelError(f"Silero VAD model not found at {self.path} "
                             "(it ships inside the faster-whisper package; reinstall it)")
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"Silero VAD model at {self.path} could not be loaded: {exc}") from exc

    def stream(self) -> "VadStream":
        if self._session is None:
            raise RuntimeError("SileroVad.load() has not run")
        return VadStream(self._session)


class VadStream:
    """Scores a continuous 16 kHz float32 stream in 32 ms chunks."""

    def __init__(self, session) -> None:
        self._session = session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._quiet_chunks = 0
        self.model_runs = 0

    def process(self, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Return (speech probability, chunk samples) for every complete chunk now available."""
        self._pending = np.concatenate([self._pending, samples])
        scored = []
        while len(self._pending) >= CHUNK_SAMPLES:
            chunk, self._pending = self._pending[:CHUNK_SAMPLES], self._pending[CHUNK_SAMPLES:]
            quiet = frame_rms(chunk) < QUIET_RMS
            self._quiet_chunks = self._quiet_chunks + 1 if quiet else 0
            if self._quiet_chunks > SETTLE_CHUNKS:
                self._context = chunk[-_CONTEXT_SAMPLES:]
                scored.append((0.0, chunk))
                continue
            self.model_runs += 1
            window = np.concatenate([self._context, chunk])[np.newaxis, :]
            probability, self._h, self._c = self._session.run(
                None, {"input": window, "h": self._h, "c": self._c})
            self._context = chunk[-_CONTEXT_SAMPLES:]
            scored.append((float(np.ravel(probability)[0]), chunk))
        return scored
