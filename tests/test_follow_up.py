"""A caller's reply in the light of what the call has established (pure, table-tested
against the demo catalogue's vocabulary)."""

import dataclasses

import pytest

from tomctl.tools.demo_catalogue import PARTS, VEHICLES
from tomctl.tools.follow_up import Context, complete, remember
from tomctl.tools.query import Vocabulary, extract

VOCABULARY = Vocabulary.build(
    [(make, model) for make, models in VEHICLES.items() for model in models],
    [name for english, german, _, _ in PARTS for name in (english, german)])

NONE = Context()
FOCUS = Context("Ford", "Focus", 2018)
FOCUS_PLUGS = Context("Ford", "Focus", 2018, part_words=("spark", "plugs"))
ASKED_CAR = Context(asked="vehicle", part_words=("shock", "absorber"))
ASKED_YEAR = Context("Ford", "Focus", 2008, "vehicle", ("spark", "plugs"))
ASKED_PART = Context("Renault", "Clio", 2015, "part")


@pytest.mark.parametrize("context, language, said, make, model, year, words, asks", [
    # TOM asked for the car: the reply names it, the part is the one asked about
    (ASKED_CAR, "en", "A Ford Fiesta from 2014.", "Ford", "Fiesta", 2014,
     ("shock", "absorber"), True),
    (ASKED_CAR, "en", "It's a 2014 Ford Fiesta", "Ford", "Fiesta", 2014,
     ("shock", "absorber"), True),
    (Context(asked="vehicle", part_words=("bremsbelage",)), "de",
     "Ein Golf 7 von 2016", "Volkswagen", "Golf 7", 2016, ("bremsbelage",), True),
    # ... or only the year it asked for, on the car already named
    (ASKED_YEAR, "en", "It is from 2018.", "Ford", "Focus", 2018, ("spark", "plugs"), True),
    (ASKED_YEAR, "en", "2018", "Ford", "Focus", 2018, ("spark", "plugs"), True),
    # ... or another part altogether: that part, on the car named
    (ASKED_YEAR, "en", "Actually I need wiper blades.", "Ford", "Focus", 2008,
     ("wiper", "blades"), True),
    # TOM asked which part: the part, known or not, for the car named
    (ASKED_PART, "en", "Brake pads.", "Renault", "Clio", 2015, ("brake", "pads"), True),
    (ASKED_PART, "en", "Exhaust pipes", "Renault", "Clio", 2015, (), True),
    (ASKED_PART, "de", "Einen Auspuff", "Renault", "Clio", 2015, (), True),
    # ... but not a reply that names none
    (ASKED_PART, "en", "I'm not sure.", "", "", 0, (), False),
    (ASKED_PART, "en", "Can I talk to a colleague?", "", "", 0, (), False),
    (ASKED_PART, "de", "Weiß ich nicht", "", "", 0, (), False),
    (ASKED_PART, "en", "Well, what I would really like to know is this", "", "", 0, (),
     False),
    # a later question about a part is about the car named before
    (FOCUS, "en", "And do you have wiper blades?", "Ford", "Focus", 2018, ("wiper", "blades"),
     True),
    (FOCUS, "en", "Wiper blades for a Honda Jazz", "Honda", "Jazz", 0, ("wiper", "blades"),
     True),
    (FOCUS, "en", "Brake pads for a Ford Focus", "Ford", "Focus", 2018, ("brake", "pads"),
     True),                                     # the same car: its year still holds
    (FOCUS, "en", "And brake pads for the 2020 model?", "Ford", "Focus", 2020,
     ("brake", "pads"), True),
    # ... and another car, with no part named, is about the part asked about last
    (FOCUS_PLUGS, "en", "And for a Fiesta?", "Ford", "Fiesta", 0, ("spark", "plugs"), True),
    (FOCUS_PLUGS, "en", "Do you have them for a Honda Jazz too?", "Honda", "Jazz", 0,
     ("spark", "plugs"), True),
    (FOCUS_PLUGS, "en", "It is from 2015.", "", "", 2015, (), False),   # nothing was asked
    (FOCUS_PLUGS, "de", "Haben Sie die auch für einen Honda Jazz?", "Honda", "Jazz", 0,
     ("spark", "plugs"), True),
    # ... but not a request for another item, known or not
    (FOCUS_PLUGS, "en", "Do you have a roof box for a Honda Jazz?", "Honda", "Jazz", 0, (),
     True),
    (ASKED_CAR, "en", "Do you have a roof box for a Honda Jazz?", "Honda", "Jazz", 0, (),
     True),
    # nothing about a part: the context stays out of it
    (FOCUS, "en", "Thank you very much!", "", "", 0, (), False),
    (FOCUS, "en", "A Honda Civic", "Honda", "Civic", 0, (), False),
    (ASKED_CAR, "en", "Thank you, goodbye.", "", "", 0, (), False),
    (ASKED_CAR, "en", "I don't know", "", "", 0, (), False),
    (NONE, "en", "Exhaust pipes", "", "", 0, (), False),
])
def test_a_reply_completes_what_the_call_has_established(context, language, said, make,
                                                         model, year, words, asks):
    lookup = complete(extract(said, language, VOCABULARY), context)
    assert (lookup.make, lookup.model, lookup.year, lookup.part_words,
            lookup.asks_for_item) == (make, model, year, words, asks)


@pytest.mark.parametrize("context, said, unclear", [
    (ASKED_CAR, "be done or you don't hate", "vehicle"),     # "A VW Golf 8", misheard
    (ASKED_PART, "and not 5.", ""),                          # "not": declined
    (ASKED_PART, "Hmm, the thing in the front", ""),         # a part it does not know
    (ASKED_PART, "It is for the one that I told you about much earlier on", "part"),
    (ASKED_YEAR, "Yes.", "vehicle"),
    (dataclasses.replace(ASKED_CAR, asked_again=True), "be done or you don't hate", ""),
    (ASKED_CAR, "I don't know.", ""),
    (ASKED_CAR, "Can I speak to a colleague?", ""),
    (ASKED_CAR, "A Ford Fiesta", ""),
    (FOCUS, "be done or you don't hate", ""),                # nothing was asked
])
def test_a_reply_that_names_nothing_asked_for_is_asked_about_once_more(context, said,
                                                                      unclear):
    assert complete(extract(said, "en", VOCABULARY), context).unclear == unclear


@pytest.mark.parametrize("context, said", [
    (ASKED_YEAR, "Are you open on Saturday?"),
    (ASKED_CAR, "Where is my order 4711234?"),
    (FOCUS, "Can I return a part I bought?"),
])
def test_a_question_about_something_else_is_left_alone(context, said):
    lookup = extract(said, "en", VOCABULARY)
    assert complete(lookup, context) == lookup


@pytest.mark.parametrize("context, said, answer_kind, expected", [
    (NONE, "Do you have shock absorbers?", "ask_vehicle", ASKED_CAR),
    (NONE, "Spark plugs for a Ford Focus from 2008", "other_years", ASKED_YEAR),
    (NONE, "Do you have a roof box for a Renault Clio from 2015?", "ask_part", ASKED_PART),
    (NONE, "Spark plugs for a Ford Focus from 2018", "parts", FOCUS_PLUGS),
    (ASKED_YEAR, "Spark plugs for a Ford Focus from 2018", "parts", FOCUS_PLUGS),
    (FOCUS_PLUGS, "Are you open on Saturday?", "hours", FOCUS_PLUGS),  # car and part stay
    (FOCUS_PLUGS, "Do you have a roof box?", "not_found", FOCUS),   # the part asked last
    # the LLM answered: the question is closed
    (ASKED_CAR, None, "", Context(part_words=("shock", "absorber"))),
    (ASKED_PART, None, "", Context("Renault", "Clio", 2015)),
    (ASKED_CAR, "be done or you don't hate", "ask_again",
     dataclasses.replace(ASKED_CAR, asked_again=True)),
])
def test_what_the_call_remembers_after_an_answer(context, said, answer_kind, expected):
    lookup = extract(said, "en", VOCABULARY) if said is not None else None
    assert remember(context, lookup, answer_kind) == expected
