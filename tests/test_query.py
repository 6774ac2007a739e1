"""What a caller's words become as a lookup (pure, table-tested against the demo
catalogue's vocabulary)."""

import pytest

from tomctl.tools.demo_catalogue import PARTS, VEHICLES
from tomctl.tools.query import Vocabulary, extract, spoken_digits

VOCABULARY = Vocabulary.build(
    [(make, model) for make, models in VEHICLES.items() for model in models],
    [name for english, german, _, _ in PARTS for name in (english, german)])


@pytest.mark.parametrize("language, said, make, model, year, words", [
    ("en", "Do you have brake pads for a Honda Civic 2015?", "Honda", "Civic", 2015,
     ("brake", "pads")),
    ("en", "I need an oil filter for my VW Golf from 2012", "Volkswagen", "Golf", 2012,
     ("oil", "filter")),
    ("en", "Spark plugs for a 2018 Ford Focus please", "Ford", "Focus", 2018,
     ("spark", "plugs")),
    ("en", "wiper blade for a BMW 3 Series", "BMW", "3 Series", 0, ("wiper", "blade")),
    ("en", "Do you sell batteries for a Mercedes?", "Mercedes-Benz", "", 0, ("batteries",)),
    ("en", "What do brake discs cost?", "", "", 0, ("brake", "discs")),
    ("en", "Hello, how are you?", "", "", 0, ()),
    ("de", "Haben Sie Bremsbeläge für einen Golf, Baujahr 2014?", "Volkswagen", "Golf",
     2014, ("bremsbelage",)),
    ("de", "Ich brauche eine Zündkerze für den Skoda Octavia", "Skoda", "Octavia", 0,
     ("zundkerze",)),
    ("de", "Was kostet ein Ölfilter für einen Opel Astra von 2016?", "Opel", "Astra", 2016,
     ("olfilter",)),
])
def test_vehicle_and_part_words(language, said, make, model, year, words):
    lookup = extract(said, language, VOCABULARY)
    assert (lookup.make, lookup.model, lookup.year, lookup.part_words) == \
        (make, model, year, words)


@pytest.mark.parametrize("language, said, number, about_order", [
    ("en", "Where is my order 4711234?", "4711234", True),
    ("en", "My order number is one two three four five six", "123456", True),
    ("en", "When does my delivery arrive?", "", True),
    ("en", "Brake pads for a 2015 Civic", "", False),        # a year is not an order number
    ("de", "Wo ist meine Bestellung neun acht sieben sechs fünf?", "98765", True),
    ("de", "Meine Bestellnummer ist 5551234", "5551234", True),
])
def test_order_numbers(language, said, number, about_order):
    lookup = extract(said, language, VOCABULARY)
    assert (lookup.order_number, lookup.asks_about_order) == (number, about_order)


@pytest.mark.parametrize("language, said, facts", [
    ("en", "Are you open on Saturday?", ("hours",)),
    ("en", "What are your opening hours?", ("hours",)),
    ("en", "Where are you located?", ("address",)),
    ("en", "Can I return a part I bought?", ("returns",)),
    ("en", "Do you have brake pads?", ()),
    ("de", "Haben Sie am Samstag geöffnet?", ("hours",)),
    ("de", "Wie ist Ihre Adresse?", ("address",)),
    ("de", "Kann ich das umtauschen?", ("returns",)),
    ("de", "Haben Sie Bremsbeläge?", ()),
])
def test_shop_facts(language, said, facts):
    assert extract(said, language, VOCABULARY).facts == facts


def test_spoken_digits():
    assert spoken_digits("one two three", "en") == "123"
    assert spoken_digits("call me at five oh two", "en") == "call me at 502"
    assert spoken_digits("eins zwei drei vier", "de") == "1234"
