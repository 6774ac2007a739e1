"""Smart Turn v3.2: an ONNX audio classifier that says whether the caller has finished.

Its input contract (pipecat's local_smart_turn_v3.py): the turn's last 8 s at 16 kHz, zero
padded at the start, normalised to zero mean and unit variance, as Whisper's 80-band log-mel
features (800 frames). Those come from faster-whisper's own feature extractor, which gives
the same features as pipecat's numpy copy of transformers' (checked to 1e-5), so neither
torch nor transformers is needed. One inference costs about 100 ms of one core, so it runs
as a scheduled job, never on the hub.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tomctl.errors import ModelError

RATE = 16000
WINDOW_SAMPLES = 8 * RATE
_NORMALISE_EPS = 1e-7


def model_input(audio: np.ndarray, extractor) -> np.ndarray:
    """(1, 80, 800) features of the last 8 s of ``audio`` (16 kHz float32)."""
    window = audio[-WINDOW_SAMPLES:].astype(np.float32)
    window = np.pad(window, (WINDOW_SAMPLES - len(window), 0))
    window = (window - window.mean()) / np.sqrt(window.var() + _NORMALISE_EPS)
    return extractor(window, padding=0)[np.newaxis].astype(np.float32)


class SmartTurn:
    def __init__(self, path: Path, threads: int) -> None:
        self.path = path
        self._threads = threads
        self._session = None
        self._extractor = None

    def load(self) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        if not self.path.is_file():
            raise ModelError(f"Smart Turn model not found at {self.path} (TOM_TURN_MODEL)")
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = self._threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 4
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"])
            self._extractor = FeatureExtractor(feature_size=80, chunk_length=8)
            self.complete_probability(np.zeros(RATE, np.float32))   # the input contract holds
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"Smart Turn model at {self.path} could not be loaded "
                             f"(set TOM_TURN_MODEL to a Smart Turn v3 ONNX file): {exc}") from exc

    def complete_probability(self, audio: np.ndarray) -> float:
        """How sure the model is that the turn in ``audio`` (16 kHz float32, ending now) is
        complete. Blocking: call it in a worker."""
        if self._session is None:
            raise RuntimeError("SmartTurn.load() has not run")
        (probability,) = self._session.run(None, {"input_features":
                                                  model_input(audio, self._extractor)})
        return float(np.ravel(probability)[0])
