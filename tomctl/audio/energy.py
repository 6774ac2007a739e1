"""A loudness onset detector for one 20 ms frame at a time (pure, stateful).

The VAD needs a full 32 ms chunk, and often a second one, before it is sure a consonant is
speech; a jump in loudness over the line's noise floor is visible in the first frame. TOM
uses it only to pause its own audio (which is undone if the VAD does not confirm speech),
never to end a turn.

A frame is LOUD well above the floor, and SOFT a little above it. Only an answer the caller
has not heard a word of yet waits on a soft frame: there is no echo of TOM's voice then to
mistake for the caller, and a caller going on after a pause with a fricative ("… Ford", "…
for") rises over 60–100 ms, through soft frames, before one is loud.
"""

from __future__ import annotations

import enum
import math

import numpy as np

# Loud means this far above the line's noise floor, and never quieter than MIN_LOUD_RMS
# (-40 dBFS: below any voice, above the echo of TOM's own voice on a handset).
_ABOVE_FLOOR = 4.0          # +12 dB
MIN_LOUD_RMS = 0.01
_INITIAL_FLOOR = 0.002
_FLOOR_RISE = 0.05          # the floor follows quiet frames slowly upwards …
_FLOOR_FALL = 0.3           # … quickly downwards …
_FLOOR_CREEP = 0.01         # … and loud ones very slowly, so steady noise stops being loud
# Soft: +8 dB over the floor and never quieter than -48 dBFS. Steady line noise stays under
# it (a 20 ms frame's level wanders by well under 1 dB); a consonant's onset does not.
_SOFT_ABOVE_FLOOR = 2.5
_MIN_SOFT_RMS = 0.004


class Sound(enum.Enum):
    QUIET = 0
    SOFT = 1
    LOUD = 2


def frame_rms(samples: np.ndarray) -> float:
    """Root mean square of float32 samples. One dot product: a listening call pays for
    this 50 times a second, and np.mean's Python layers cost several times the arithmetic."""
    if not len(samples):
        return 0.0
    return math.sqrt(float(np.dot(samples, samples)) / len(samples))


class EnergyOnset:
    def __init__(self) -> None:
        self.floor = _INITIAL_FLOOR

    def hear(self, samples: np.ndarray) -> Sound:
        """How much louder than the line's noise this frame is."""
        rms = frame_rms(samples)
        loud = rms >= max(MIN_LOUD_RMS, self.floor * _ABOVE_FLOOR)
        soft = rms >= max(_MIN_SOFT_RMS, self.floor * _SOFT_ABOVE_FLOOR)
        rate = _FLOOR_CREEP if loud else _FLOOR_RISE if rms > self.floor else _FLOOR_FALL
        self.floor += (rms - self.floor) * rate
        return Sound.LOUD if loud else Sound.SOFT if soft else Sound.QUIET
