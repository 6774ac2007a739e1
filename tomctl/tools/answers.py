"""What TOM says from what the tools found (pure, table-tested): every price, part, time and
status in an answer comes from the shop's own data, in a sentence Piper reads well.

The bundled 135M-parameter LLM reads prices and part names back wrongly or invents them
(README, "Tool hub"), so by default these sentences are what the caller hears; with a
bigger model (TOM_TOOL_ANSWERS=llm) they are the facts the LLM phrases its answer from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from typing import Sequence

from tomctl.tools.catalogue import Part
from tomctl.tools.query import Lookup
from tomctl.tools.shop import DAYS, DAYS_DE, Shop

CURRENCIES = {"EUR": ("euros", "Euro"), "USD": ("dollars", "Dollar"),
              "GBP": ("pounds", "Pfund"), "CHF": ("francs", "Franken")}
MAX_PARTS_SAID = 2
MAX_STATUS_CHARS = 80
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
             "September", "Oktober", "November", "Dezember")
COLLEAGUE = {"en": "To speak to a colleague, press 0.",
             "de": "Für einen Kollegen drücken Sie die 0."}


# Between sentences, not inside "9 a.m. to 1 p.m.".
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ])")


@dataclasses.dataclass(frozen=True)
class Answer:
    kind: str         # parts, other_years, ask_vehicle, not_found, hours, address, returns,
    text: str         # order, no_order, ask_order_number, unknown, failed, ask_part,
                      # ask_again
    failed: bool = False

    def sentences(self) -> list[str]:
        return _SENTENCE_BREAK.split(self.text)


def _en(language: str) -> bool:
    return language != "de"


def _colleague(language: str) -> str:
    return COLLEAGUE["en" if _en(language) else "de"]


def price(amount: Decimal, currency: str, language: str) -> str:
    """32.74 EUR → "32 euros 74": Piper would read "32.74" as "thirty-two point seven four"."""
    names = CURRENCIES.get(currency, (currency, currency))
    whole, cents = divmod(int((amount * 100).to_integral_value()), 100)
    name = names[0] if _en(language) else names[1]
    return f"{whole} {name} {cents}" if cents else f"{whole} {name}"


def vehicle(lookup: Lookup) -> str:
    name = " ".join(part for part in (lookup.make, lookup.model) if part)
    if lookup.year:
        name += f" from {lookup.year}" if name else f"{lookup.year}"
    return name


def parts_answer(lookup: Lookup, parts: Sequence[Part], language: str,
                 currency: str) -> Answer:
    en = _en(language)
    car = vehicle(lookup)
    if not en:
        car = car.replace(" from ", " von ")
    if not parts:
        # A year alone is no car to name ("for the 2016").
        where = "" if not (lookup.make or lookup.model) else \
            f" for the {car}" if en else f" für den {car}"
        text = (f"Sorry, we do not have that{where} in our catalogue."
                if en else f"Das haben wir{where} leider nicht im Katalog.")
        return Answer("not_found", f"{text} {_colleague(language)}")
    first = parts[0]
    name = _name(first, language)
    bands = {(part.make, part.model, part.year_from, part.year_to) for part in parts
             if _name(part, language) == name}
    if len(bands) > 1:       # the same part differs by car: ask for what is missing
        low = min(part.price for part in parts if _name(part, language) == name)
        high = max(part.price for part in parts if _name(part, language) == name)
        missing = _missing(lookup, language)
        if en:
            text = (f"We have {name} for several cars. They cost from "
                    f"{price(low, currency, language)} to {price(high, currency, language)}. "
                    f"{missing}")
        else:
            text = (f"Wir haben {name} für mehrere Autos. Sie kosten von "
                    f"{price(low, currency, language)} bis {price(high, currency, language)}. "
                    f"{missing}")
        return Answer("ask_vehicle", text)
    same_car = [part for part in parts if (part.make, part.model, part.year_from,
                                           part.year_to) == (first.make, first.model,
                                                             first.year_from, first.year_to)]
    first_of_each: dict[str, Part] = {}         # the first (in stock first) of each name
    for part in same_car:
        first_of_each.setdefault(_name(part, language), part)
    said = list(first_of_each.values())[:MAX_PARTS_SAID]
    years = (f"{first.year_from}" if first.year_from == first.year_to
             else f"{first.year_from} to {first.year_to}")
    car = f"{first.make} {first.model}"
    # A short first sentence: the caller hears it while the details are synthesised.
    if en:
        sentences = ["Yes, we have that.",
                     f"For the {car} from {years}: {_offer(said[0], language, currency)}."]
        sentences += [f"And {_offer(part, language, currency)}." for part in said[1:]]
    else:
        years = years.replace(" to ", " bis ")
        sentences = ["Ja, das haben wir.",
                     f"Für den {car} von {years}: {_offer(said[0], language, currency)}."]
        sentences += [f"Und {_offer(part, language, currency)}." for part in said[1:]]
    return Answer("parts", " ".join(sentences))


def other_years_answer(lookup: Lookup, parts: Sequence[Part], language: str,
                       currency: str) -> Answer:
    """The part is there for the car, but not for the year said: a caller misremembers a
    year, or Whisper mishears one ("2008" for "2018"), so the years it is for are said."""
    found = parts_answer(dataclasses.replace(lookup, year=0), parts, language, currency)
    opening = (f"Not for {lookup.year}, but for other years." if _en(language)
               else f"Nicht für {lookup.year}, aber für andere Baujahre.")
    rest = found.sentences()[1:] if found.kind == "parts" else found.sentences()
    return Answer("other_years", " ".join([opening, *rest]))


def no_parts_for(lookup: Lookup, language: str) -> Answer:
    """A make the catalogue has no part for ("a Tesla"): said at once, not after the part."""
    car = vehicle(lookup)
    text = (f"Sorry, we do not have parts for the {car} in our catalogue." if _en(language)
            else f"Teile für den {car.replace(' from ', ' von ')} haben wir leider nicht im "
                 "Katalog.")
    return Answer("not_found", f"{text} {_colleague(language)}")


def ask_part(lookup: Lookup, language: str) -> Answer:
    car = vehicle(lookup)
    if _en(language):
        return Answer("ask_part", f"Which part do you need for the {car}?")
    return Answer("ask_part", f"Welches Teil brauchen Sie für den {car.replace(' from ', ' von ')}?")


def ask_again(about: str, language: str) -> Answer:
    """TOM asked which car (or part) and did not understand the reply."""
    if _en(language):
        text = ("Sorry, I did not catch your car. Which make, model and year is it?"
                if about == "vehicle" else "Sorry, I did not catch that. Which part do you need?")
    else:
        text = ("Entschuldigung, das Auto habe ich nicht verstanden. Welche Marke, welches "
                "Modell und welches Baujahr hat es?" if about == "vehicle"
                else "Entschuldigung, das habe ich nicht verstanden. Welches Teil brauchen Sie?")
    return Answer("ask_again", text)


def _name(part: Part, language: str) -> str:
    return (part.name_en or part.name) if _en(language) else (part.name_de or part.name)


def _offer(part: Part, language: str, currency: str) -> str:
    cost = price(part.price, currency, language)
    if _en(language):
        stock = "in stock" if part.stock > 0 else "currently out of stock"
        return f"{_name(part, language)} for {cost}, {stock}"
    stock = "auf Lager" if part.stock > 0 else "gerade nicht auf Lager"
    return f"{_name(part, language)} für {cost}, {stock}"


def _missing(lookup: Lookup, language: str) -> str:
    if _en(language):
        if not lookup.make:
            return "Which make, model and year is your car?"
        return "Which model and year is your car?" if not lookup.model \
            else "Which year is your car?"
    if not lookup.make:
        return "Welche Marke, welches Modell und welches Baujahr hat Ihr Auto?"
    return "Welches Modell und welches Baujahr hat Ihr Auto?" if not lookup.model \
        else "Welches Baujahr hat Ihr Auto?"


def clock(at: dt.time, language: str) -> str:
    """08:00 → "8 a.m." / "8 Uhr"; 13:30 → "1:30 p.m." / "13 Uhr 30"."""
    if at == dt.time.max:
        return "midnight" if _en(language) else "24 Uhr"
    if not _en(language):
        return f"{at.hour} Uhr {at.minute}" if at.minute else f"{at.hour} Uhr"
    hour = at.hour % 12 or 12
    suffix = "a.m." if at.hour < 12 else "p.m."
    return f"{hour}:{at.minute:02d} {suffix}" if at.minute else f"{hour} {suffix}"


def _stop(text: str) -> str:
    """End a sentence with one full stop, also after "p.m."."""
    return text if text.endswith(".") else text + "."


def _spans(spans: Sequence[tuple[dt.time, dt.time]], language: str) -> str:
    en = _en(language)
    said = [(f"from {clock(a, language)} to {clock(b, language)}" if en
             else f"von {clock(a, language)} bis {clock(b, language)}") for a, b in spans]
    return (" and " if en else " und ").join(said)


def _day_name(day: dt.date, today: dt.date, language: str, holiday: bool) -> str:
    en = _en(language)
    if day == today:
        return "today" if en else "heute"
    if day == today + dt.timedelta(days=1):
        name = "tomorrow" if en else "morgen"
    else:
        name = (DAYS[day.weekday()].capitalize() if en else DAYS_DE[day.weekday()])
        name = f"on {name}" if en else f"am {name}"
    if holiday:
        name += (f", {MONTHS[day.month - 1]} {day.day}," if en
                 else f", dem {day.day}. {MONTHS_DE[day.month - 1]},")
    return name


def hours_answer(shop: Shop, day_word: str, now: dt.datetime, language: str) -> Answer:
    """The hours of the day asked about, or of today and whether the shop is open now."""
    en = _en(language)
    local = now.astimezone(shop.timezone)
    today = local.date()
    if day_word in DAYS:
        day = shop.next_day_named(DAYS.index(day_word), today)
    elif day_word == "tomorrow":
        day = today + dt.timedelta(days=1)
    else:
        day = today
    spans = shop.spans_on(day)
    holiday = day in shop.closed_dates
    name = _day_name(day, today, language, holiday)
    if day_word in ("", "today"):
        return Answer("hours", _now_sentence(shop, local, language))
    if not spans:
        text = f"{name} we are closed." if en else f"{name} haben wir geschlossen."
    else:
        text = (_stop(f"{name} we are open {_spans(spans, language)}") if en
                else f"{name} haben wir {_spans(spans, language)} geöffnet.")
    return Answer("hours", text[0].upper() + text[1:])


def _now_sentence(shop: Shop, local: dt.datetime, language: str) -> str:
    en = _en(language)
    today = local.date()
    for start, end in shop.spans_on(today):
        if start <= local.time() < end:
            return _stop(f"Yes, we are open now, until {clock(end, language)}" if en
                         else f"Ja, wir haben jetzt geöffnet, bis {clock(end, language)}")
    for ahead in range(0, 15):
        day = today + dt.timedelta(days=ahead)
        for start, _ in shop.spans_on(day):
            if ahead or start > local.time():
                name = _day_name(day, today, language, day in shop.closed_dates)
                return _stop(f"We are closed right now. We open {name} at "
                             f"{clock(start, language)}" if en else
                             f"Gerade haben wir geschlossen. Wir öffnen {name} um "
                             f"{clock(start, language)}")
    return "We are closed right now." if en else "Gerade haben wir geschlossen."


def unknown(language: str) -> Answer:
    text = ("I do not have that information here." if _en(language)
            else "Diese Auskunft habe ich hier leider nicht.")
    return Answer("unknown", f"{text} {_colleague(language)}")


def fact_answer(shop: Shop, fact: str, day_word: str, now: dt.datetime,
                language: str) -> Answer:
    en = _en(language)
    if fact == "hours":
        return hours_answer(shop, day_word, now, language)
    if fact == "address":
        return Answer("address", f"Our address is {shop.address}." if en
                      else f"Unsere Adresse ist {shop.address}.")
    return Answer("returns", shop.returns)


def spoken_number(number: str) -> str:
    return " ".join(number)


def order_answer(number: str, record: dict | None, language: str) -> Answer:
    en = _en(language)
    said = spoken_number(number)
    if record is None:
        return Answer("no_order", f"I cannot find an order with the number {said}. "
                      "Please check the number." if en else
                      f"Ich finde keine Bestellung mit der Nummer {said}. "
                      "Bitte prüfen Sie die Nummer.")
    status = _plain_text(str(record.get("status", "")))[:MAX_STATUS_CHARS]
    text = (f"The status of order {said} is: {status}." if en
            else f"Der Status der Bestellung {said} ist: {status}.")
    eta = record.get("eta")
    if isinstance(eta, str):
        try:
            day = dt.date.fromisoformat(eta[:10])
        except ValueError:
            day = None
        if day is not None:
            text += (f" Expected on {DAYS[day.weekday()].capitalize()}, "
                     f"{MONTHS[day.month - 1]} {day.day}." if en else
                     f" Erwartet am {DAYS_DE[day.weekday()]}, dem {day.day}. "
                     f"{MONTHS_DE[day.month - 1]}.")
    return Answer("order", text)


def ask_order_number(language: str) -> Answer:
    return Answer("ask_order_number",
                  "Please tell me your order number, or type it on the keypad." if _en(language)
                  else "Bitte nennen Sie mir Ihre Bestellnummer, oder tippen Sie sie ein.")


def orders_off(language: str) -> Answer:
    text = ("I cannot look up orders on this line." if _en(language)
            else "Bestellungen kann ich hier leider nicht nachsehen.")
    return Answer("unknown", f"{text} {_colleague(language)}")


def failed(language: str) -> Answer:
    """A tool is down: the caller is told so, and the call goes to a colleague."""
    return Answer("failed", "Sorry, I cannot look that up right now." if _en(language)
                  else "Das kann ich gerade leider nicht nachsehen.", failed=True)


def _plain_text(text: str) -> str:
    """The shop system's status, as words only: nothing in it is read as markup or a
    command, and a control character never reaches Piper."""
    return " ".join("".join(c if c.isalnum() or c in " .,-:/'" else " " for c in text).split())
