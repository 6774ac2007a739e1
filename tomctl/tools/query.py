"""From what a caller said to what TOM should look up (pure): a vehicle, part words, an
order number, and which shop fact is asked for.

The small LLM cannot be trusted to call tools, so TOM looks up first and lets the LLM
phrase the answer; this is the looking-up half's first step. Vehicles are matched against
the catalogue's own makes and models (and common names for them: "VW", "Benz"), part
words against the catalogue's vocabulary in English and German, so that nothing is
invented. Spoken digits ("one two three four five", "eins zwei drei") count as digits.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Iterable

MAKE_ALIASES = {"vw": "Volkswagen", "v w": "Volkswagen", "volkswagen": "Volkswagen", "benz": "Mercedes-Benz",
                "mercedes": "Mercedes-Benz", "merc": "Mercedes-Benz", "chevy": "Chevrolet",
                "beemer": "BMW", "skoda": "Skoda", "škoda": "Skoda"}
# Makes a caller may name that a shop's catalogue may not carry: asked for a part for one,
# TOM says it does not have that, instead of asking for the car again. Makes that are also
# everyday words ("Seat", "Smart", "Mini") are left out.
OTHER_MAKES = ("Alfa Romeo", "Chevrolet", "Chrysler", "Citroën", "Cupra", "Dacia",
               "Dodge", "Fiat", "Hyundai", "Jaguar", "Kia", "Lada", "Land Rover",
               "Lexus", "Maserati", "Mazda", "Mitsubishi", "Nissan", "Peugeot", "Porsche",
               "Range Rover", "Saab", "Subaru", "Suzuki", "Tesla", "Volvo")
MAKE_NAMES = {word for alias in MAKE_ALIASES for word in alias.split()}
DIGIT_WORDS = {
    "en": {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
           "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"},
    "de": {"null": "0", "eins": "1", "zwei": "2", "zwo": "2", "drei": "3", "vier": "4",
           "fünf": "5", "funf": "5", "sechs": "6", "sieben": "7", "acht": "8", "neun": "9"},
}
FACTS = {
    "hours": {"en": r"\b(open|opening|close|closing|hours)\b",
              "de": r"(geöffnet|offen|öffnungszeit|öffnen|schließen|schliessen|zu\b)"},
    "address": {"en": r"\b(where are you|where is your|address|located|location|find you)\b",
                "de": r"(wo sind sie|wo ist ihr|wo finde|adresse|anschrift|standort)"},
    "returns": {"en": r"\b(return|returns|refund|send (it|them) back|exchange)\b",
                "de": r"(rückgabe|zurückgeben|zurückschicken|umtausch|umtauschen|erstatt)"},
}
ORDER_WORDS = {"en": r"\b(order|delivery|parcel|package|shipment)\b",
               "de": r"(bestell|liefer|paket|sendung|auftrag)"}
DAY_WORDS = {
    "en": {"today": "today", "tonight": "today", "now": "today", "tomorrow": "tomorrow",
           "weekend": "saturday", "monday": "monday", "tuesday": "tuesday",
           "wednesday": "wednesday", "thursday": "thursday", "friday": "friday",
           "saturday": "saturday", "sunday": "sunday"},
    "de": {"heute": "today", "jetzt": "today", "morgen": "tomorrow", "wochenende": "saturday",
           "montag": "monday", "dienstag": "tuesday", "mittwoch": "wednesday",
           "donnerstag": "thursday", "freitag": "friday", "samstag": "saturday",
           "sonnabend": "saturday", "sonntag": "sunday"},
}
# A request for an item ("do you have", "ich brauche"): with no catalogue word in it, the
# answer is "we don't have that", never a part the LLM makes up.
REQUESTS = {
    # Whisper often drops a question's first word ("You have a turbocharger?", "Who you
    # have..."): "you have a" opening a sentence is the same question.
    "en": r"(\b(do you (have|sell|stock|carry)|have you got|(i|we) need|looking for|"
          r"how much (is|are|does|do)|what does .+ cost|price (of|for)|in stock)\b"
          r"|(^|[.?!]\s*)(who )?you (have|sell|stock|carry) (?=(a|an|any|some)\b))(?P<rest>.*)",
    "de": r"\b(haben sie|hätten sie|führen sie|verkaufen sie|ich brauche|wir brauchen|"
          r"ich suche|was kostet|was kosten|wie viel kostet|gibt es)\b(?P<rest>.*)",
}
NOT_ITEMS = {"time", "minute", "moment", "question", "help", "someone", "somebody", "anyone",
             "person", "colleague", "agent", "human", "hours", "open", "zeit", "minute",
             "frage", "hilfe", "jemand", "jemanden", "mitarbeiter", "mitarbeiterin",
             "offnungszeiten", "geoffnet", "offen"}
FILLERS = {"a", "an", "any", "the", "some", "to", "me", "my", "it", "that", "this", "you",
           "for", "please", "ein", "eine", "einen", "einem", "der", "die", "das", "den",
           "dem", "fur", "bitte", "mir", "es", "noch", "auch", "so", "sie", "ich", "and",
           "und", "car", "auto", "wagen"}
STOPWORDS = {"demoparts", "set", "kit", "satz", "front", "rear", "vorne", "hinten"}
_ORDER_NUMBER = re.compile(r"\b\d{5,10}\b")
_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")


@dataclasses.dataclass(frozen=True)
class Lookup:
    make: str = ""
    model: str = ""
    year: int = 0
    part_words: tuple[str, ...] = ()
    order_number: str = ""
    asks_about_order: bool = False
    facts: tuple[str, ...] = ()        # hours, address, returns
    day: str = ""                      # today, tomorrow or a weekday, for the hours
    asks_for_item: bool = False        # a request for something, known or not
    other_words: tuple[str, ...] = ()  # the rest: no filler, number, car or part word
    unclear: str = ""                  # "vehicle" or "part": a reply that did not say which


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """What the catalogue knows: makes with their models, and the words of part names."""

    models: dict[str, str]        # plain model name → (make, model) key "make\tmodel"
    makes: dict[str, str]         # plain make name → make
    part_words: frozenset[str]

    @classmethod
    def build(cls, vehicles: Iterable[tuple[str, str]], names: Iterable[str]) -> "Vocabulary":
        """A model named with its generation ("Golf 7", "Golf VII") is also found when the
        caller names only the family and a year ("a Golf from 2015"): the family is a model
        of its own here, which the catalogue matches as a prefix."""
        models, makes, families = {}, {}, {}
        for make, model in vehicles:
            makes[plain(make)] = make
            name = plain(model)
            models[name] = f"{make}\t{model}"
            words = name.split()
            if len(words) > 1 and _generation(words[-1]):
                models.setdefault(" ".join([*words[:-1], _generation(words[-1])]),
                                  f"{make}\t{model}")
                family = " ".join(words[:-1])
                families[family] = f"{make}\t{model.rsplit(' ', 1)[0]}"
        for family, key in families.items():
            models.setdefault(family, key)
        words = {word for name in names for word in plain(name).split()
                 if len(word) > 2 and word not in STOPWORDS}
        return cls(models, makes, frozenset(words))


def plain(text: str) -> str:
    """Lower case words without diacritics, hyphens as spaces."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("-", " "))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.findall(r"[a-z0-9]+", stripped))


def spoken_digits(text: str, language: str) -> str:
    """Runs of spoken digits as numbers: "order one two three four five" → "order 12345"."""
    words = DIGIT_WORDS.get(language, DIGIT_WORDS["en"])
    out: list[str] = []
    spoken = False          # the last token is a run of spoken digits ("a 2019 one" is not)
    for token in text.split():
        digit = words.get(token.lower().strip(".,!?"))
        if digit is not None and spoken:
            out[-1] += digit
        elif digit is not None:
            out.append(digit)
        else:
            out.append(token)
        spoken = digit is not None
    return " ".join(out)


# The names above as the caller's words are matched, worked out once, not on every turn.
_PLAIN_ALIASES = {plain(alias): make for alias, make in MAKE_ALIASES.items()}
_PLAIN_OTHER_MAKES = {plain(make): make for make in OTHER_MAKES}


def extract(text: str, language: str, vocabulary: Vocabulary) -> Lookup:
    said = spoken_digits(text, language)
    flat = plain(said)
    padded = f" {flat} "
    make = model = ""
    for name in sorted(vocabulary.models, key=len, reverse=True):   # "3 series" before "3"
        if f" {name} " in padded:
            make, model = vocabulary.models[name].split("\t")
            break
    if not make:
        for name, known in {**_PLAIN_ALIASES, **vocabulary.makes}.items():
            if f" {name} " in padded and plain(known) in vocabulary.makes:
                make = vocabulary.makes[plain(known)]
                break
    if not make:
        make = next((make for name, make in _PLAIN_OTHER_MAKES.items()
                     if f" {name} " in padded), "")
    if make and not model:
        model = _misheard_model(flat, make, vocabulary)
    years = _YEAR.findall(said)
    order_numbers = [n for n in _ORDER_NUMBER.findall(said) if n not in years]
    model_words = set(plain(model).split())
    car_words = model_words | set(plain(make).split())
    parts = [(word, _part_word(word, vocabulary.part_words)) for word in flat.split()]
    words = tuple(dict.fromkeys(known for word, known in parts
                                if known and word not in model_words))
    other = tuple(word for word, known in parts
                  if not known and len(word) > 1 and not word.isdigit()
                  and word not in FILLERS and word not in car_words
                  and word not in MAKE_NAMES)
    language = language if language in ORDER_WORDS else "en"
    lowered = said.lower()
    facts = tuple(name for name, patterns in FACTS.items()
                  if re.search(patterns[language], lowered))
    days = DAY_WORDS[language]
    day = next((days[word] for word in flat.split() if word in days), "") if facts else ""
    return Lookup(make=make, model=model, year=int(years[0]) if years else 0,
                  part_words=words, order_number=order_numbers[0] if order_numbers else "",
                  asks_about_order=bool(re.search(ORDER_WORDS[language], lowered)),
                  facts=facts, day=day,
                  asks_for_item=bool(words) or _asks_for_item(lowered, language),
                  other_words=other)


def _misheard_model(flat: str, make: str, vocabulary: Vocabulary) -> str:
    """A model of the named make that one of the words misses by one letter ("Toyota
    Corola", "Renault Megan"), as Whisper spells names it does not know; empty if none.
    Only long names, and only the make's own: "civil" is no Civic without a Honda."""
    for word in flat.split():
        if len(word) < 5:
            continue
        for name, key in vocabulary.models.items():
            known_make, model = key.split("\t")
            if known_make == make and len(name) >= 5 and " " not in name \
                    and _one_edit_apart(word, name):
                return model
    return ""


def _one_edit_apart(a: str, b: str) -> bool:
    """True if ``a`` becomes ``b`` by changing, adding or removing one letter."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


def _asks_for_item(lowered: str, language: str) -> bool:
    request = re.search(REQUESTS[language], lowered)
    if request is None:
        return False
    wanted = [word for word in plain(request.group("rest")).split()
              if word not in FILLERS and not word.isdigit()]
    return bool(wanted) and not any(word in NOT_ITEMS for word in wanted)


_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7",
          "viii": "8", "ix": "9", "x": "10"}


def _generation(word: str) -> str:
    """A generation number as digits ("7" or "VII" → "7"), else empty."""
    if word.isdigit() and len(word) <= 2:
        return word
    return _ROMAN.get(word, "")


SUFFIXES = ("s", "es", "e", "n", "en")


def _part_word(word: str, known: frozenset[str]) -> str:
    """The catalogue's own form of a caller's word, if it has one: the word itself, or the
    same with or without a plural or German ending ("absorber" for "absorbers", "filters"
    for "filter", "zundkerzen" for "zundkerze"); empty if none."""
    if len(word) < 3:
        return ""
    if word in known:
        return word
    for ending in SUFFIXES:
        if word.endswith(ending) and word[:-len(ending)] in known:
            return word[:-len(ending)]
        if word + ending in known:
            return word + ending
    return ""
