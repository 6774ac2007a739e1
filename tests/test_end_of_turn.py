"""The end-of-turn policy (pure): when the model and the words agree, and when to wait."""

import pytest

from tomctl.conversation.end_of_turn import Evidence, Policy, Step, next_step, unfinished

POLICY = Policy(ask_after_ms=160, ask_every_ms=320, max_silence_ms=1500, complete_threshold=0.5)


@pytest.mark.parametrize("silence_ms,evidence,expected", [
    (100, Evidence(), Step.LISTEN),                                  # too early to ask
    (160, Evidence(), Step.ASK),                                     # the first ask
    (200, Evidence(asks=1, pending=True), Step.LISTEN),              # waiting for the model
    (300, Evidence(asks=1, probability=0.9), Step.LISTEN),           # words not known yet
    (300, Evidence(asks=1, probability=0.9, text="Where is your shop?"), Step.END),
    (300, Evidence(asks=1, probability=0.2, text="Where is your shop?"), Step.LISTEN),
    (480, Evidence(asks=1, probability=0.2, text="Where is your shop?"), Step.ASK),  # again
    (800, Evidence(asks=2, probability=0.7, text="Where is your shop?"), Step.END),
    (300, Evidence(asks=1, probability=0.9, text="Do you have pads for a"), Step.LISTEN),
    # unfinished words: no point in asking again, the long bound decides
    (900, Evidence(asks=1, probability=0.2, text="Do you have pads for a"), Step.LISTEN),
    (1500, Evidence(asks=1, probability=0.2, text="Do you have pads for a"), Step.END),
    (1500, Evidence(asks=1, pending=True), Step.END),                # a slow model: the bound
    (480, Evidence(asks=1, probability=0.9), Step.LISTEN),           # sure already: no re-ask
    (300, Evidence(asks=1, probability=0.9, text=""), Step.END),     # silence in words
    # a sound since the ask (the caller going on, the VAD not sure yet): not now
    (20, Evidence(asks=1, probability=0.9, text="Where is your shop?"), Step.LISTEN),
])
def test_the_policy(silence_ms, evidence, expected):
    assert next_step(POLICY, silence_ms, evidence, "en") is expected


@pytest.mark.parametrize("text,language,expected", [
    ("Do you have brake pads for a", "en", True),
    ("Do you have brake pads for a...", "en", True),
    ("How much is the oil filter...", "en", False),    # Whisper's "..." after a whole question
    ("I need an oil filter and", "en", True),
    ("I'm looking for, um", "en", True),
    ("My car is a Golf,", "en", True),
    ("Do you have brake pads for", "en", True),
    ("Do you have brake pads for?", "en", True),      # Whisper's "?" on a broken-off question
    ("Where are you from?", "en", False),
    ("Wann machen Sie auf?", "de", False),            # a verb particle, not a preposition
    ("Do you have brake pads for a Golf?", "en", False),
    ("What is it for?", "en", False),             # a preposition can end a question
    ("Where is your shop?", "en", False),
    ("Hello.", "en", False),
    ("", "en", False),
    ("Ich brauche Bremsbeläge für den", "de", True),
    ("Haben Sie Zündkerzen und", "de", True),
    ("Mein Auto ist ein, äh", "de", True),
    ("Haben Sie Bremsbeläge für den Golf?", "de", False),
    ("Wann haben Sie am Samstag geöffnet?", "de", False),
    # a sentence ending on a number ends on it, not on the word before
    ("I need an oil filter for a Honda Civic from 2015.", "en", False),
    ("My order number is 4711", "en", False),
    ("Do you have brake pads for a Golf 7?", "en", False),
    ("Brauche ich die Teile für 2016", "de", False),
    ("I need 2 and", "en", True),
    ("Can you check if I'm...", "en", True),         # Whisper's "..." on a broken-off one
    ("Yes, we're", "en", True),
    ("We'll", "en", True),
    ("It's the car's.", "en", False),
    ("I need 2 ml", "en", False),
])
def test_words_that_cannot_end_a_sentence(text, language, expected):
    assert unfinished(text, language) is expected
