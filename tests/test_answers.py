"""What TOM says from what the tools found (pure): prices, parts, hours, orders."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tomctl.tools import answers
from tomctl.tools.catalogue import Part
from tomctl.tools.query import Lookup
from tomctl.tools.shop import Shop

BERLIN = ZoneInfo("Europe/Berlin")
SHOP = Shop("Demo", BERLIN, "Musterstraße 1, 10115 Berlin", "Within 30 days.",
            {0: ((dt.time(8), dt.time(18)),), 4: ((dt.time(8), dt.time(12)),
                                                   (dt.time(13, 30), dt.time(18)))},
            frozenset({dt.date(2026, 12, 7)}))
MONDAY_10 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)


def part(name, price, stock=3, model="Golf 7", years=(2012, 2019), de=""):
    return Part("DEMO-1", f"Demoparts {name}", "brakes", "Volkswagen", model, years[0],
                years[1], Decimal(price), stock, de or f"Demoparts {name} de",
                f"Demoparts {name}")


@pytest.mark.parametrize("amount, language, said", [
    ("32.74", "en", "32 euros 74"), ("32.00", "en", "32 euros"), ("0.99", "de", "0 Euro 99"),
    ("7.05", "de", "7 Euro 5"), ("1234.50", "en", "1234 euros 50"),
])
def test_prices_are_said_as_words_read(amount, language, said):
    assert answers.price(Decimal(amount), "EUR", language) == said


def test_a_part_for_one_car_names_it_its_price_and_stock():
    lookup = Lookup(make="Volkswagen", model="Golf 7", part_words=("brake", "pads"),
                    asks_for_item=True)
    answer = answers.parts_answer(lookup, [part("brake pads front", "34.16"),
                                           part("brake pads rear", "21.48", stock=0)],
                                  "en", "EUR")
    assert answer.kind == "parts"
    assert answer.sentences() == [
        "Yes, we have that.",
        "For the Volkswagen Golf 7 from 2012 to 2019: Demoparts brake pads front for "
        "34 euros 16, in stock.",
        "And Demoparts brake pads rear for 21 euros 48, currently out of stock."]


def test_german_uses_the_german_names():
    lookup = Lookup(make="Volkswagen", model="Golf 7", asks_for_item=True)
    answer = answers.parts_answer(lookup, [part("brake pads", "34.16",
                                                de="Demoparts Bremsbeläge vorne")], "de", "EUR")
    assert answer.text == ("Ja, das haben wir. Für den Volkswagen Golf 7 von 2012 bis 2019: "
                           "Demoparts Bremsbeläge vorne für 34 Euro 16, auf Lager.")


@pytest.mark.parametrize("lookup, question", [
    (Lookup(part_words=("brake",)), "Which make, model and year is your car?"),
    (Lookup(make="Volkswagen", part_words=("brake",)), "Which model and year is your car?"),
    (Lookup(make="Volkswagen", model="Golf", part_words=("brake",)), "Which year is your car?"),
])
def test_a_part_that_differs_by_car_asks_for_what_is_missing(lookup, question):
    found = [part("brake pads", "30.00", model="Golf 6", years=(2008, 2012)),
             part("brake pads", "45.50", model="Golf 7")]
    answer = answers.parts_answer(lookup, found, "en", "EUR")
    assert answer.kind == "ask_vehicle"
    assert "from 30 euros to 45 euros 50" in answer.text and answer.text.endswith(question)


def test_nothing_found_is_said_plainly_and_offers_a_colleague():
    lookup = Lookup(make="Volkswagen", model="Golf 7", asks_for_item=True)
    answer = answers.parts_answer(lookup, [], "en", "EUR")
    assert answer.kind == "not_found"
    assert answer.text == ("Sorry, we do not have that for the Volkswagen Golf 7 in our "
                           "catalogue. To speak to a colleague, press 0.")
    assert "euro" not in answers.parts_answer(lookup, [], "de", "EUR").text.lower()


def test_a_year_alone_is_not_named_as_a_car():
    lookup = Lookup(year=2016, asks_for_item=True)
    assert answers.parts_answer(lookup, [], "en", "EUR").text.startswith(
        "Sorry, we do not have that in our catalogue.")


@pytest.mark.parametrize("found, language, said", [
    ([part("spark plugs", "12.50")], "en",
     ["Not for 2008, but for other years.",
      "For the Volkswagen Golf 7 from 2012 to 2019: Demoparts spark plugs for 12 euros 50, "
      "in stock."]),
    ([part("spark plugs", "12.50", model="Golf 7"),
      part("spark plugs", "14.00", model="Golf 7", years=(2020, 2024))], "en",
     ["Not for 2008, but for other years.",
      "We have Demoparts spark plugs for several cars.",
      "They cost from 12 euros 50 to 14 euros.", "Which year is your car?"]),
    ([part("spark plugs", "12.50", de="Demoparts Zündkerzen")], "de",
     ["Nicht für 2008, aber für andere Baujahre.",
      "Für den Volkswagen Golf 7 von 2012 bis 2019: Demoparts Zündkerzen für 12 Euro 50, "
      "auf Lager."]),
])
def test_a_part_there_for_other_years_says_which(found, language, said):
    lookup = Lookup(make="Volkswagen", model="Golf 7", year=2008, part_words=("spark",),
                    asks_for_item=True)
    answer = answers.other_years_answer(lookup, found, language, "EUR")
    assert (answer.kind, answer.sentences()) == ("other_years", said)


@pytest.mark.parametrize("at, language", [(dt.time(8), "en"), (dt.time(13, 30), "en"),
                                          (dt.time(12), "en"), (dt.time(0), "en"),
                                          (dt.time(13, 30), "de"), (dt.time.max, "en")])
def test_clock_times_are_said_as_people_say_them(at, language):
    said = {(dt.time(8), "en"): "8 a.m.", (dt.time(13, 30), "en"): "1:30 p.m.",
            (dt.time(12), "en"): "12 p.m.", (dt.time(0), "en"): "12 a.m.",
            (dt.time(13, 30), "de"): "13 Uhr 30", (dt.time.max, "en"): "midnight"}
    assert answers.clock(at, language) == said[(at, language)]


@pytest.mark.parametrize("day, now, language, text", [
    ("friday", MONDAY_10, "en",
     "On Friday we are open from 8 a.m. to 12 p.m. and from 1:30 p.m. to 6 p.m."),
    ("saturday", MONDAY_10, "en", "On Saturday we are closed."),
    ("tomorrow", MONDAY_10, "en", "Tomorrow we are closed."),
    ("monday", MONDAY_10, "en", "Today we are open from 8 a.m. to 6 p.m."),
    ("monday", MONDAY_10 + dt.timedelta(days=1), "en",      # the next Monday is a holiday
     "On Monday, December 7, we are closed."),
    ("", MONDAY_10, "en", "Yes, we are open now, until 6 p.m."),
    ("today", MONDAY_10.replace(hour=19), "en",
     "We are closed right now. We open on Friday at 8 a.m."),
    ("", MONDAY_10.replace(hour=7), "en", "We are closed right now. We open today at 8 a.m."),
    ("friday", MONDAY_10, "de", "Am Freitag haben wir von 8 Uhr bis 12 Uhr und von 13 Uhr 30 "
     "bis 18 Uhr geöffnet."),
    ("saturday", MONDAY_10, "de", "Am Samstag haben wir geschlossen."),
    ("", MONDAY_10.replace(hour=19), "de",
     "Gerade haben wir geschlossen. Wir öffnen am Freitag um 8 Uhr."),
])
def test_hours_in_the_shops_time_zone(day, now, language, text):
    assert answers.hours_answer(SHOP, day, now, language).text == text


def test_hours_use_the_shops_time_zone_not_the_callers():
    # 06:30 UTC on a Monday is 07:30 in Berlin: not open yet.
    utc = dt.datetime(2026, 11, 30, 6, 30, tzinfo=dt.timezone.utc)
    assert answers.hours_answer(SHOP, "", utc, "en").text == \
        "We are closed right now. We open today at 8 a.m."


def test_facts_and_orders():
    assert answers.fact_answer(SHOP, "address", "", MONDAY_10, "en").text == \
        "Our address is Musterstraße 1, 10115 Berlin."
    assert answers.fact_answer(SHOP, "returns", "", MONDAY_10, "de").text == "Within 30 days."
    assert answers.order_answer("47110", {"status": "shipped", "eta": "2026-12-04"},
                                "en").text == ("The status of order 4 7 1 1 0 is: shipped. "
                                               "Expected on Friday, December 4.")
    assert answers.order_answer("47110", None, "en").kind == "no_order"
    assert answers.failed("en").failed and answers.unknown("de").kind == "unknown"


def test_an_order_status_is_read_as_words_only():
    said = answers.order_answer("47110", {"status": "shipped\r\n<b>{x}</b>" + "a" * 200},
                                "en").text
    assert "\r" not in said and "\n" not in said and "<" not in said and "{" not in said
    assert len(said) < 140
