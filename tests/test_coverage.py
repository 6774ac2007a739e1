"""The words-lost measure of bench/turns.py: a word is lost when its sound is missing from
the audio TOM transcribed, not when Whisper spells it differently."""

import gevent
import numpy as np

from testkit.coverage import Word, coverage
from tomctl.audio.frames import StreamResampler, resample

RATE = 8000


def _said():
    """Three "words" (distinct noise bursts) with pauses between them, on a quiet line."""
    rng = np.random.default_rng(5)
    quiet = lambda s: rng.normal(0, 0.001, int(s * RATE))      # noqa: E731
    parts, words, at = [], [], 0.0
    for name in ("one", "two", "three"):
        parts += [quiet(0.3), rng.normal(0, 0.2, int(0.25 * RATE))]
        words.append(Word(name, at + 0.3, at + 0.55))
        at += 0.55
    parts.append(quiet(0.3))
    return np.concatenate(parts).astype(np.float32), words


def _as_tom_hears(audio):
    """Through TOM's streaming resampler, 20 ms at a time, as a call carries it."""
    stream = StreamResampler(RATE, 16000)
    frames = [stream.process(audio[i:i + 160]) for i in range(0, len(audio), 160)]
    return np.concatenate(frames + [stream.process(np.zeros(0, np.float32), last=True)])


def _measure(said, words, kept):
    """coverage() of ``kept`` (None: TOM transcribed nothing), computed in a worker thread
    like the other tests' offline audio work: on the hub, tomctl's resampler once ran past
    the hub-block check's 50 ms in `make test`."""
    def measure():
        return coverage(resample(said, RATE, 16000), words,
                        None if kept is None else _as_tom_hears(kept))
    return gevent.get_hub().threadpool.apply(measure)


def test_every_word_tom_kept_is_found():
    said, words = _said()
    found = _measure(said, words, said)
    assert found.lost == [] and found.missing_ms == 0


def test_a_word_cut_from_what_tom_transcribed_is_lost():
    said, words = _said()
    # TOM kept the pause and "two" and "three", but not "one" (a restart that dropped it).
    kept = said[int(0.6 * RATE):]
    found = _measure(said, words, kept)
    assert found.lost == ["one"] and found.missing_ms >= 200


def test_nothing_transcribed_loses_every_word():
    said, words = _said()
    assert _measure(said, words, None).lost == ["one", "two", "three"]


def test_half_a_word_missing_is_counted_as_sound_lost():
    said, words = _said()
    kept = np.concatenate([said[:int(0.42 * RATE)], said[int(0.55 * RATE):]])  # "one" cut short
    found = _measure(said, words, kept)
    assert found.lost == [] or found.lost == ["one"]
    assert 60 <= found.missing_ms <= 180
