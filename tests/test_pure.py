"""The pure cores: sentence splitting, end-of-turn detection, barge-in decisions, what was
heard, and Whisper's hallucination guards."""

import numpy as np
import pytest

from tomctl.audio.energy import EnergyOnset, Sound
from tomctl.audio.turn_detector import (NoiseDiscarded, SpeechStarted, SpeechState,
                                        TurnDetector, UtteranceEnded)
from tomctl.config import TurnSettings
from tomctl.conversation.reply import Spoken, heard_text
from tomctl.conversation.turn_taking import Action, ReplyPhase, decide, is_backchannel, went_on
from tomctl.speech.sentences import SentenceSplitter, repeats_itself, speakable
from tomctl.speech.spoken_cache import SpokenCache
from tomctl.speech.whisper import drop_reason, restart_index, trim_restart, window_frames


def test_sentences_are_cut_at_punctuation_followed_by_space():
    splitter = SentenceSplitter()
    pieces = []
    for delta in ["We open at 8.30 on Satur", "days. Call us any", "time! Bye"]:
        pieces += splitter.push(delta)
    # (the first piece ends before "on": see the first-piece tests below)
    assert pieces == ["We open at 8.30", "on Saturdays.", "Call us anytime!"]
    assert splitter.flush() == ["Bye"]


def test_first_piece_may_end_at_a_long_enough_clause():
    splitter = SentenceSplitter()
    assert splitter.push("Yes, ") == []
    assert splitter.push("we have brake pads for that car, and ") == [
        "Yes, we have brake pads for that car,"]
    assert splitter.push("they cost forty euros, roughly. ") == [
        "and they cost forty euros, roughly."]


def test_the_first_piece_is_short_so_that_the_caller_hears_it_soon():
    # Two words before a comma are enough for the first piece: its audio is ready in a
    # fraction of the time a whole sentence takes, and the rest follows while it plays.
    splitter = SentenceSplitter()
    pieces = []
    for token in ["I'm", " sorry", ",", " but", " we", " are", " closed", ",", " sadly", ". "]:
        pieces += splitter.push(token)
    assert pieces == ["I'm sorry,", "but we are closed, sadly."]


def _stream(text):
    """Feed ``text`` word by word, as the LLM streams it."""
    splitter, pieces = SentenceSplitter(), []
    for word in text.split(" "):
        pieces += splitter.push(word + " ")
    return pieces + splitter.flush()


@pytest.mark.parametrize("text, pieces", [
    # without punctuation, the first piece ends before a new phrase once it has four words
    ("No I don't have brake pads for a Volkswagen Golf.",
     ["No I don't have brake pads", "for a Volkswagen Golf."]),
    ("My shop is located in the heart of town.", ["My shop is located", "in the heart of town."]),
    ("Wir haben die Bremsbeläge leider nicht für Ihren Golf.",
     ["Wir haben die Bremsbeläge leider nicht", "für Ihren Golf."]),
    # and after six words at the latest
    ("Our friendly team can certainly order every single part you need today.",
     ["Our friendly team can certainly order", "every single part you need today."]),
    # later sentences are never cut inside
    ("Sure. Our friendly team can certainly order every single part you need for it.",
     ["Sure. Our friendly team can certainly", "order every single part you need for it."]),
])
def test_the_first_piece_is_cut_at_a_phrase_when_punctuation_is_late(text, pieces):
    assert _stream(text) == pieces


@pytest.mark.parametrize("text, pieces", [
    # the 135M model's loop, until its token limit: what came before it is said, no more
    ("No, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no, no,", ["No, no,"]),
    ("Yes, we have brake pads. Sorry sorry sorry sorry sorry sorry sorry.",
     ["Yes, we have brake pads."]),
    # words said twice are no loop
    ("No, no, we do not sell tyres, no.", ["No, no,", "we do not sell tyres, no."]),
    ("Yes, yes. We have them, yes, for the Golf, yes.",
     ["Yes, yes. We have them,", "yes, for the Golf, yes."]),
])
def test_a_reply_that_loops_is_said_up_to_the_loop(text, pieces):
    assert _stream(text) == pieces


def test_unspeakable_symbols_are_removed():
    assert speakable("**Sure!** 🚗 Here's `the` #list") == "Sure! Here's the list"


def _detector(**overrides):
    settings = TurnSettings(**{"speech_start_ms": 64, "max_silence_ms": 300,
                               "min_utterance_ms": 200, "preroll_ms": 96, **overrides})
    return TurnDetector(settings, chunk_ms=32)


def _run(detector, probabilities):
    events = []
    for i, p in enumerate(probabilities):
        events += [(i, e) for e in detector.push(p, np.full(512, i, dtype=np.float32))]
    return events


def test_an_utterance_ends_after_the_longest_silence_and_keeps_its_preroll():
    detector = _detector()
    probs = [0.0] * 5 + [0.9] * 10 + [0.0] * 10
    events = _run(detector, probs)
    assert [type(e) for _, e in events] == [SpeechStarted, UtteranceEnded]
    started_at, ended_at = events[0][0], events[1][0]
    assert started_at == 6                      # two chunks of speech confirm the start
    assert ended_at == 15 + 10 - 1               # ten chunks of silence = 320 ms >= 300 ms
    utterance = events[1][1]
    first_chunk_values = utterance.audio[::512]
    assert first_chunk_values[0] == 2           # 96 ms of pre-roll: chunks 2, 3, 4
    assert utterance.speech_ms == 320
    assert detector.state is SpeechState.QUIET


def test_a_pause_shorter_than_the_longest_silence_does_not_end_the_turn():
    events = _run(_detector(), [0.9] * 10 + [0.0] * 5 + [0.9] * 10 + [0.0] * 10)
    assert [type(e) for _, e in events] == [SpeechStarted, UtteranceEnded]
    assert events[1][1].speech_ms == 640


def test_end_turn_ends_the_utterance_in_its_silence_only():
    detector = _detector(max_silence_ms=1500)
    events = _run(detector, [0.9] * 10)
    assert detector.end_turn() == []               # still speaking
    events += _run(detector, [0.0] * 5)
    (ended,) = detector.end_turn()
    assert isinstance(ended, UtteranceEnded) and ended.speech_ms == 320
    assert detector.state is SpeechState.QUIET and detector.end_turn() == []


def test_soft_first_words_the_vad_flickers_over_stay_in_the_utterance():
    # 3 quiet chunks, then speech and silence in turns for 10 chunks (longer than the
    # 96 ms pre-roll), then steady speech: the utterance starts with the pre-roll before the
    # first flicker, chunk 0.
    probs = [0.0] * 3 + [0.9, 0.0] * 5 + [0.9] * 10 + [0.0] * 10
    events = _run(_detector(), probs)
    ended = [e for _, e in events if isinstance(e, UtteranceEnded)]
    assert len(ended) == 1 and ended[0].audio[0] == 0
    # soft speech after a false start, scored under the threshold but over silence, too
    events = _run(_detector(), [0.0] * 3 + [0.9] + [0.3] * 12 + [0.9] * 10 + [0.0] * 10)
    (ended,) = [e for _, e in events if isinstance(e, UtteranceEnded)]
    assert ended.audio[0] == 0
    # once the line has been quiet for the pre-roll's length, the ring is back to 96 ms
    events = _run(_detector(), [0.9, 0.0] + [0.0] * 6 + [0.9] * 10 + [0.0] * 10)
    (ended,) = [e for _, e in events if isinstance(e, UtteranceEnded)]
    assert ended.audio[0] == 5


def test_a_blip_is_not_speech_and_short_speech_is_noise():
    assert _run(_detector(), [0.9, 0.0, 0.0, 0.9, 0.0] + [0.0] * 10) == []
    events = _run(_detector(), [0.9] * 4 + [0.0] * 10)
    assert [type(e) for _, e in events] == [SpeechStarted, NoiseDiscarded]


def test_hysteresis_keeps_a_turn_through_uncertain_chunks():
    events = _run(_detector(), [0.9] * 8 + [0.4] * 20 + [0.0] * 10)
    assert [type(e) for _, e in events] == [SpeechStarted, UtteranceEnded]


def test_a_very_long_utterance_is_cut():
    events = _run(_detector(max_utterance_ms=1000), [0.9] * 40)
    ended = [e for _, e in events if isinstance(e, UtteranceEnded)]
    assert ended and ended[0].cut


@pytest.mark.parametrize("phase,speech,speech_ms,held,quiet_ms,expected", [
    (ReplyPhase.IDLE, SpeechState.SPEAKING, 500, False, 0, Action.NONE),
    (ReplyPhase.SPEAKING, SpeechState.QUIET, 0, False, 0, Action.HOLD),      # a loud frame
    (ReplyPhase.SPEAKING, SpeechState.STARTING, 32, False, 0, Action.HOLD),
    (ReplyPhase.SPEAKING, SpeechState.SPEAKING, 96, True, 0, Action.NONE),
    (ReplyPhase.SPEAKING, SpeechState.SPEAKING, 200, True, 0, Action.BARGE_IN),
    (ReplyPhase.SPEAKING, SpeechState.QUIET, 0, True, 40, Action.NONE),      # between syllables
    (ReplyPhase.SPEAKING, SpeechState.QUIET, 0, True, 100, Action.RESUME),   # it was noise
    (ReplyPhase.SPEAKING, SpeechState.QUIET, 0, False, 100, Action.NONE),
    (ReplyPhase.THINKING, SpeechState.SPEAKING, 100, False, 0, Action.HOLD),  # going on?
    (ReplyPhase.THINKING, SpeechState.SPEAKING, 100, True, 0, Action.NONE),
    (ReplyPhase.THINKING, SpeechState.QUIET, 0, False, 0, Action.HOLD),      # a loud frame
    (ReplyPhase.THINKING, SpeechState.QUIET, 0, True, 40, Action.NONE),
    (ReplyPhase.THINKING, SpeechState.QUIET, 0, True, 100, Action.RESUME),   # it was noise
    (ReplyPhase.THINKING, SpeechState.QUIET, 0, False, 100, Action.NONE),
    (ReplyPhase.THINKING, SpeechState.SPEAKING, 250, False, 0, Action.RESTART),
    (ReplyPhase.IDLE, SpeechState.QUIET, 0, True, 0, Action.RESUME),
])
def test_barge_in_decisions(phase, speech, speech_ms, held, quiet_ms, expected):
    assert decide(phase, speech, speech_ms, held, min_speech_ms=200, quiet_ms=quiet_ms,
                  resume_after_ms=96) is expected


@pytest.mark.parametrize("phase,held,quiet_ms,soft_quiet_ms,expected", [
    (ReplyPhase.THINKING, False, 200, 0, Action.HOLD),       # "F…": the answer waits
    (ReplyPhase.THINKING, True, 200, 40, Action.NONE),
    (ReplyPhase.THINKING, True, 200, 100, Action.RESUME),    # quiet again
    (ReplyPhase.THINKING, False, 200, None, Action.NONE),    # TOM's holding phrase plays
    (ReplyPhase.SPEAKING, False, 200, 0, Action.NONE),       # its voice's echo is soft too
    (ReplyPhase.IDLE, False, 200, 0, Action.NONE),
])
def test_an_answer_not_heard_yet_also_waits_on_a_soft_sound(phase, held, quiet_ms,
                                                             soft_quiet_ms, expected):
    assert decide(phase, SpeechState.QUIET, 0, held, min_speech_ms=200, quiet_ms=quiet_ms,
                  resume_after_ms=96, soft_quiet_ms=soft_quiet_ms) is expected


@pytest.mark.parametrize("speech,speech_ms,held,quiet_ms,checking,expected", [
    (SpeechState.SPEAKING, 300, True, 0, False, Action.NONE),        # a word, perhaps: hold
    (SpeechState.STOPPING, 300, True, 100, False, Action.NONE),      # over: still unknown
    (SpeechState.QUIET, 0, True, 100, True, Action.NONE),            # Whisper is hearing it
    (SpeechState.QUIET, 0, True, 100, False, Action.RESUME),         # it was "mhm"
    (SpeechState.QUIET, 0, False, 0, False, Action.HOLD),            # a sound: pause TOM
    (SpeechState.SPEAKING, 700, True, 0, False, Action.BARGE_IN),    # sure: at once
])
def test_short_speech_over_tom_holds_until_its_words_are_known(speech, speech_ms, held,
                                                                quiet_ms, checking, expected):
    assert decide(ReplyPhase.SPEAKING, speech, speech_ms, held, min_speech_ms=200,
                  quiet_ms=quiet_ms, resume_after_ms=96, sure_ms=700,
                  checking=checking) is expected


@pytest.mark.parametrize("text,language,expected", [
    ("Mhm.", "en", True), ("Okay.", "en", True), ("Yeah, okay.", "en", True),
    ("Uh-huh.", "en", True), ("Right.", "en", True), ("I see.", "en", True), ("", "en", True),
    ("Mmmmm", "en", True), ("Hmmm.", "en", True), ("Yeah Yeah Yeah", "en", True),
    ("No.", "en", False), ("Stop.", "en", False), ("Wait.", "en", False),
    ("Okay, but what about the price?", "en", False),
    ("Ja genau.", "de", True), ("Alles klar.", "de", True), ("Nein.", "de", False),
    ("Moment mal.", "de", False),
    # words that ask for nothing, said over TOM and no more ("uh huh" heard as "I have")
    ("I have.", "en", True), ("I do.", "en", True), ("It is.", "en", True),
    ("Ich habe.", "de", True),
    # … but a word that asks for something, a negation or a question interrupts
    ("I have a question.", "en", False), ("I have two.", "en", False),
    ("No, I have.", "en", False), ("What?", "en", False), ("Who is it?", "en", False),
    ("Ich habe nein.", "de", False),
    ("Well.", "en", False), ("So.", "en", False), ("And I have.", "en", False),
])
def test_listening_words_are_told_from_an_interruption(text, language, expected):
    assert is_backchannel(text, language) is expected


def test_loudness_onset_follows_the_noise_floor():
    rng = np.random.default_rng(0)
    onset = EnergyOnset()
    hiss = [rng.normal(0, 0.02, 160).astype(np.float32) for _ in range(50)]
    heard = [onset.hear(frame) for frame in hiss]
    assert heard[0] is Sound.LOUD
    assert all(sound is Sound.QUIET for sound in heard[30:])  # steady hiss is only noise

    assert onset.hear(rng.normal(0, 0.2, 160).astype(np.float32)) is Sound.LOUD
    assert EnergyOnset().hear(np.full(160, 0.001, np.float32)) is Sound.QUIET


def test_a_soft_consonant_after_a_pause_is_heard_before_it_is_loud():
    """espeak-ng's "… | Ford Focus" on a line at 30 dB SNR: the "F" rises through frames of
    2.7 to 5 times the noise (RMS 0.005 to 0.011) before the vowel is loud."""
    rng = np.random.default_rng(1)
    onset = EnergyOnset()
    for _ in range(40):
        assert onset.hear(rng.normal(0, 0.002, 160).astype(np.float32)) is Sound.QUIET
    heard = [onset.hear(rng.normal(0, level, 160).astype(np.float32))
             for level in (0.0054, 0.0076, 0.0094, 0.0108, 0.0861)]
    assert heard[0] is Sound.SOFT
    assert heard[-1] is Sound.LOUD
    assert Sound.LOUD not in heard[:2]
    # On a digitally silent line the floor is nothing: under -48 dBFS is still quiet.
    silent = EnergyOnset()
    for _ in range(40):
        silent.hear(np.zeros(160, np.float32))
    assert silent.hear(np.full(160, 0.0025, np.float32)) is Sound.QUIET
    assert silent.hear(np.full(160, 0.005, np.float32)) is Sound.SOFT


def test_heard_text_counts_whole_and_partly_played_sentences():
    spoken = [Spoken("We open at eight.", 0, 50), Spoken("We close at six in the evening.", 50, 120)]
    assert heard_text(spoken, 0) == ""
    assert heard_text(spoken, 50) == "We open at eight."
    assert heard_text(spoken, 85) == "We open at eight. We close at"
    assert heard_text(spoken, 500) == "We open at eight. We close at six in the evening."


def test_whisper_guards_drop_hallucinations():
    assert drop_reason("", 0.1, -0.2, 0.6) == "empty"
    assert drop_reason(" ... ", 0.1, -0.2, 0.6) == "empty"
    assert drop_reason("Thank you.", 0.9, -1.4, 0.6) == "no_speech"
    assert drop_reason("the the the the the the the the", 0.1, -0.3, 0.6) == "repetition"
    assert drop_reason("Do you have brake pads?", 0.1, -0.3, 0.6) is None
    assert drop_reason("Do you have brake pads?", 0.9, -0.3, 0.6) is None  # confident text


def test_whisper_window_is_the_utterance_plus_margin_never_below_the_minimum():
    assert window_frames(16000 * 2, 5000) == 500
    assert window_frames(16000 * 7, 5000) == 800
    assert window_frames(16000 * 60, 5000) == 3000


def test_a_transcript_that_starts_over_is_detected_and_trimmed():
    text = "Do you have oil filters and stock? Do you have oil"
    assert restart_index(text) == text.index("Do you have oil", 1)
    assert trim_restart(text) == "Do you have oil filters and stock?"
    assert restart_index("I need a new battery for my car.") is None
    assert not repeats_itself("I need a new battery for my car.")
    assert trim_restart("Yes yes, we do.") == "Yes yes, we do."


def test_a_lone_word_said_over_and_over_is_a_hallucination():
    assert repeats_itself("Hello? Hello? Hello? Hello? Hello")
    assert not repeats_itself("Hello, hello.")


@pytest.mark.parametrize("steps, kept", [
    # "key" reads a sentence, "key*n" keeps n frames of 10 bytes; what is kept, oldest first
    (["a*2", "b*2"], ["a", "b"]),
    (["a*2", "b*2", "c*2"], ["b", "c"]),              # over the 40 bytes: the oldest goes
    (["a*2", "b*2", "a", "c*2"], ["a", "c"]),         # read again, it is the newest
    (["a*2", "b*2", "a"], ["b", "a"]),
    (["a*2", "b*2", "a*2", "c*2"], ["b", "c"]),       # a second put changes nothing
    (["a*5"], []),                                    # larger than the whole cache
    (["a*0"], []),                                    # no audio is not kept
    (["a*3", "b*1"], ["a", "b"]),
    (["a*3", "b*1", "c*1"], ["b", "c"]),
    (["x", "a*1", "y"], ["a"]),                       # reading what is not there
])
def test_the_spoken_cache_keeps_the_sentences_used_last_within_its_bytes(steps, kept):
    cache = SpokenCache(max_bytes=40)
    for step in steps:
        key, _, count = step.partition("*")
        if count:
            cache.put(key, [bytes(10)] * int(count))
        else:
            assert (cache.get(key) is not None) == (key in cache._frames)
    assert list(cache._frames) == kept
    assert cache.bytes == sum(10 * len(cache._frames[key]) for key in kept) <= 40


def test_frames_from_the_spoken_cache_are_the_callers_own_list():
    cache = SpokenCache(max_bytes=100)
    cache.put("a", [b"1", b"2"])
    cache.get("a").clear()          # a sink that consumes its list leaves the cache whole
    assert cache.get("a") == [b"1", b"2"] and cache.get("b") is None


@pytest.mark.parametrize("began_at, first_heard_at, expected", [
    # the caller's turn ended at 10.0 s (their last sound); TOM_TURN_MAX_SILENCE_MS 1.5 s
    (10.7, None, True),        # TOM had said nothing yet: they went on after a pause
    (10.7, 10.2, True),        # 0.5 s of TOM, but only a 0.7 s pause: going on
    (10.75, 10.25, True),
    (10.95, 10.3, True),       # a 0.6 s pause, as TOM's early mark of the last sound reads it
    (11.1, 10.8, True),        # TOM's first word 0.3 s before: too soon to reply to it
    (11.1, 10.6, False),       # 0.5 s of TOM after a 1.1 s silence: they are replying
    (11.6, None, False),       # past the longest pause a turn may have: a new turn
    (11.5, 11.4, True),
])
def test_a_caller_who_speaks_before_they_could_reply_to_tom_went_on_with_their_turn(
        began_at, first_heard_at, expected):
    assert went_on(began_at, 10.0, first_heard_at, max_silence_s=1.5) is expected


def test_a_loop_across_sentences_is_not_said():
    """The 135M model's "No, I'm sorry, I'm sorry. I'm sorry, I'm sorry. No, I'm sorry.":
    each piece looks fine, the whole is a loop; what is said never is one."""
    splitter, said = SentenceSplitter(), []
    for word in "No, I'm sorry, I'm sorry. I'm sorry, I'm sorry. No, I'm sorry. ".split(" "):
        said += splitter.push(word + " ")
    said += splitter.flush()
    assert splitter.looping and said and not repeats_itself(" ".join(said)), said
