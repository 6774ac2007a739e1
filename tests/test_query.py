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
    # the catalogue's own forms of the words: its names say "wiper blades", "Batterie"
    ("en", "wiper blade for a BMW 3 Series", "BMW", "3 Series", 0, ("wiper", "blades")),
    ("en", "Do you sell batteries for a Mercedes?", "Mercedes-Benz", "", 0, ("batterie",)),
    ("en", "What do brake discs cost?", "", "", 0, ("brake", "discs")),
    ("en", "Hello, how are you?", "", "", 0, ()),
    ("de", "Haben Sie Bremsbeläge für einen Golf, Baujahr 2014?", "Volkswagen", "Golf",
     2014, ("bremsbelage",)),
    ("de", "Ich brauche eine Zündkerze für den Skoda Octavia", "Skoda", "Octavia", 0,
     ("zundkerzen",)),
    ("en", "Shock absorbers for a Ford Fiesta", "Ford", "Fiesta", 0, ("shock", "absorber")),
    ("de", "Was kostet ein Ölfilter für einen Opel Astra von 2016?", "Opel", "Astra", 2016,
     ("olfilter",)),
    # a model as Whisper spells a name it does not know: one letter off, the make named
    ("en", "Brake discs for a Renault Megan from 2010", "Renault", "Megane", 2010,
     ("brake", "discs")),
    ("en", "who you have a real mark for a Toyota Corola", "Toyota", "Corolla", 0, ()),
    ("en", "A civil question about my order", "", "", 0, ()),
    ("en", "Is the Toyota gold?", "Toyota", "", 0, ()),         # short names stay exact
    # a make the catalogue lacks is still a car ("we do not have parts for the Tesla")
    ("en", "Do you have brake pads for a Tesla Model 3?", "Tesla", "", 0, ("brake", "pads")),
    ("de", "Ich brauche einen Ölfilter für meinen Kia von 2019", "Kia", "", 2019,
     ("olfilter",)),
    ("en", "Do you have a seat cover?", "", "", 0, ()),         # "Seat" is left out
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
    # a written number is not the start of a spoken one
    assert spoken_digits("brake pads for a 2019 one", "en") == "brake pads for a 2019 1"


@pytest.mark.parametrize("said, model, year", [
    ("Brake pads for a VW Golf 7", "Golf 7", 0),
    ("Brake pads for a Golf seven", "Golf 7", 0),          # spoken digits
    ("Brake pads for a V.W. Golf 8 please", "Golf 8", 0),
    ("Brake pads for my Golf from 2015", "Golf", 2015),     # the family, then the year
])
def test_a_model_named_by_its_generation_or_its_family(said, model, year):
    lookup = extract(said, "en", VOCABULARY)
    assert (lookup.make, lookup.model, lookup.year) == ("Volkswagen", model, year)


def test_a_generation_written_in_roman_numerals_is_heard_as_a_number():
    vocabulary = Vocabulary.build([("Volkswagen", "Golf VII")], ["brake pads"])
    assert extract("pads for a Golf 7", "en", vocabulary).model == "Golf VII"
    assert extract("pads for a Golf", "en", vocabulary).model == "Golf"


@pytest.mark.parametrize("language, said, day", [
    ("en", "Are you open on Saturday?", "saturday"),
    ("en", "Are you open tomorrow?", "tomorrow"),
    ("en", "Are you open now?", "today"),
    ("en", "What are your opening hours?", ""),
    ("en", "Are you open at the weekend?", "saturday"),
    ("de", "Haben Sie morgen geöffnet?", "tomorrow"),
    ("de", "Wann öffnen Sie am Montag?", "monday"),
    ("de", "Haben Sie heute offen?", "today"),
])
def test_the_day_asked_about(language, said, day):
    assert extract(said, language, VOCABULARY).day == day


@pytest.mark.parametrize("language, said, asks", [
    ("en", "Do you have a turbocharger?", True),
    ("en", "I need a roof box for my Golf", True),
    ("en", "Do you sell brake pads?", True),
    ("en", "Do you have time for a question?", False),
    ("en", "I need to speak to someone", False),
    ("en", "I need help", False),
    ("en", "Hello, how are you?", False),
    # the question's first word lost by Whisper
    ("en", "You have a turbo charger for a VW Golf 7.", True),
    ("en", "Who you have a roof box?", True),
    ("en", "Thank you, have a nice day", False),
    ("en", "You have my order number", False),
    ("de", "Haben Sie einen Turbolader?", True),
    ("de", "Ich brauche einen Mitarbeiter", False),
    ("de", "Haben Sie heute geöffnet?", False),
])
def test_a_request_for_an_item_known_or_not(language, said, asks):
    assert extract(said, language, VOCABULARY).asks_for_item is asks
