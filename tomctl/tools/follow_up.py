"""What a call has established so far, and what the caller's next words mean in its light
(pure, table-tested).

A clerk remembers the car: asked "Which make, model and year is your car?", a caller says
"a Ford Fiesta from 2014", not the whole question again, and "and wiper blades?" after
brake pads for that car is about the same car. Without this, TOM would answer the reply as
a new question ("Which part do you need for the Ford Fiesta from 2014?") and go round in
circles, which is also how a caller recovers from Whisper mishearing the car.

- The car the caller named last stays for the call, for every later question about a part.
- So does the part asked about last, for a question that names another car but no part
  ("And for a Fiesta?", "Do you have them for a Jazz too?").
- When TOM asked which car, a reply naming only a year ("It is from 2018.") completes it.
- Asked which part, a short reply naming no known part is a request for it ("exhaust
  pipes"), answered "we do not have that", not passed on to the LLM.
- A reply to TOM's question that names nothing it asked for (Whisper misheard "a VW Golf 8"
  as "be done or you don't hate") is asked about once more, not handed to the LLM, which
  would make up an answer to words nobody said. A reply that declines ("I don't know", "a
  colleague, please") is not.
- A question about something else (hours, address, returns, an order) leaves all this
  alone.
"""

from __future__ import annotations

import dataclasses

from tomctl.tools.query import NOT_ITEMS, Lookup

# TOM's answers that end on a question about the car (the part is there for several cars,
# or not for the year said) and about the part (a car, but no part).
ASKS_VEHICLE = frozenset({"ask_vehicle", "other_years"})
ASKS_PART = frozenset({"ask_part"})
ASKS_AGAIN = "ask_again"
# Words of a reply that is not a part's name ("I'm not sure", "no thanks", "weiß nicht",
# "a colleague, please").
DECLINES = frozenset({"no", "not", "sure", "know", "nothing", "thanks", "thank", "bye",
                      "never", "mind", "nein", "nicht", "nichts", "weiss", "danke",
                      "kein", "keine", "egal"}) | NOT_ITEMS
MAX_PART_REPLY_WORDS = 4
# The other words of a request that names no item of its own ("Do you have them for a
# Jazz too?"), as against one that does ("Do you have a roof box for a Jazz?").
REFERS_BACK = frozenset({"do", "does", "have", "has", "sell", "stock", "carry", "got", "them",
                         "those", "these", "same", "ones", "too", "also", "as", "well",
                         "what", "about", "how", "haben", "hatten", "gibt", "es", "sie",
                         "die", "diese", "welche", "auch", "dafur", "wie", "ist", "mit"})


@dataclasses.dataclass(frozen=True)
class Context:
    make: str = ""
    model: str = ""
    year: int = 0
    asked: str = ""                        # "vehicle" or "part": TOM's open question
    part_words: tuple[str, ...] = ()       # the part asked about last
    asked_again: bool = False              # the open question has been asked twice


def complete(lookup: Lookup, context: Context) -> Lookup:
    """``lookup`` with what the call has established filled in where the caller left it
    out; unchanged when it is about something else, or about nothing."""
    if lookup.facts or lookup.order_number or lookup.asks_about_order:
        return lookup
    names_car = bool(lookup.make or lookup.model)
    part_words, asks = lookup.part_words, lookup.asks_for_item
    refers_back = not asks or REFERS_BACK.issuperset(lookup.other_words)
    if not part_words and context.part_words and refers_back and \
            (names_car or (lookup.year and context.asked == "vehicle")):
        part_words, asks = context.part_words, True
    elif not (part_words or asks or names_car) and context.asked == "part" \
            and _names_an_item(lookup.other_words):
        asks = True
    if not (part_words or asks):
        if context.asked and not context.asked_again and not (names_car or lookup.year) \
                and not DECLINES.intersection(lookup.other_words):
            return dataclasses.replace(lookup, unclear=context.asked)
        return lookup         # no part in question: a car alone starts over, as before
    if names_car:
        same_car = (lookup.make, lookup.model) == (context.make, context.model)
        year = lookup.year or (context.year if same_car else 0)
        make, model = lookup.make, lookup.model
    else:
        make, model, year = context.make, context.model, lookup.year or context.year
    return dataclasses.replace(lookup, make=make, model=model, year=year,
                               part_words=part_words, asks_for_item=asks)


def remember(context: Context, lookup: Lookup | None, answer_kind: str) -> Context:
    """The context after TOM answered ``lookup`` (None: the LLM answered) with an answer of
    ``answer_kind``."""
    if answer_kind == ASKS_AGAIN:
        return dataclasses.replace(context, asked_again=True)
    make, model, year, part = context.make, context.model, context.year, context.part_words
    if lookup is not None and (lookup.make or lookup.model):
        make, model, year = lookup.make, lookup.model, lookup.year
    if lookup is not None and lookup.asks_for_item:
        part = lookup.part_words           # () for a part the catalogue does not know
    asked = "vehicle" if answer_kind in ASKS_VEHICLE else \
        "part" if answer_kind in ASKS_PART else ""
    return Context(make, model, year, asked, part)


def _names_an_item(words: tuple[str, ...]) -> bool:
    return 0 < len(words) <= MAX_PART_REPLY_WORDS and not DECLINES.intersection(words)
