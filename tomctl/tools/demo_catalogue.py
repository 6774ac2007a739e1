"""The bundled demo catalogue: synthetic parts for common cars, clearly marked as such
(part numbers DEMO-…, the brand "Demoparts"). Generated, deterministically, by
``rows()``; ``tomctl/tools/data/demo-catalogue.csv`` is its output (a test keeps the two in
step), and bench/catalogue.py scales it up to any number of rows."""

from __future__ import annotations

import csv
import io
import random
from typing import Iterator

from tomctl.tools.catalogue import COLUMNS

# (first year, last year[, year bands]); a model named by its generation is one band.
VEHICLES = {
    "Volkswagen": {"Golf 6": (2008, 2012, 1), "Golf 7": (2012, 2019, 1),
                   "Golf 8": (2019, 2024, 1), "Polo": (2009, 2024), "Passat": (2010, 2023),
                   "Tiguan": (2011, 2024)},
    "BMW": {"3 Series": (2012, 2024), "1 Series": (2011, 2024), "X3": (2010, 2024)},
    "Mercedes-Benz": {"A-Class": (2012, 2024), "C-Class": (2014, 2024),
                      "E-Class": (2009, 2023)},
    "Audi": {"A3": (2012, 2024), "A4": (2015, 2024), "Q5": (2008, 2024)},
    "Opel": {"Astra": (2009, 2024), "Corsa": (2006, 2024)},
    "Ford": {"Focus": (2011, 2024), "Fiesta": (2008, 2023)},
    "Toyota": {"Corolla": (2013, 2024), "Yaris": (2011, 2024)},
    "Honda": {"Civic": (2012, 2024), "Jazz": (2008, 2024)},
    "Renault": {"Clio": (2012, 2024), "Megane": (2008, 2024)},
    "Skoda": {"Octavia": (2013, 2024), "Fabia": (2014, 2024)},
}
# (English name, German name, category, price range)
PARTS = [
    ("brake pads front", "Bremsbeläge vorne", "brakes", (25, 90)),
    ("brake pads rear", "Bremsbeläge hinten", "brakes", (20, 80)),
    ("brake discs front", "Bremsscheiben vorne", "brakes", (60, 220)),
    ("oil filter", "Ölfilter", "filters", (6, 25)),
    ("air filter", "Luftfilter", "filters", (10, 35)),
    ("cabin filter", "Innenraumfilter", "filters", (10, 40)),
    ("fuel filter", "Kraftstofffilter", "filters", (15, 60)),
    ("spark plugs set", "Zündkerzen Satz", "ignition", (20, 70)),
    ("wiper blades", "Scheibenwischer", "body", (15, 45)),
    ("battery 70Ah", "Batterie 70Ah", "electrics", (90, 190)),
    ("headlight bulb H7", "Scheinwerferlampe H7", "electrics", (8, 30)),
    ("alternator", "Lichtmaschine", "electrics", (180, 450)),
    ("timing belt kit", "Zahnriemensatz", "engine", (90, 320)),
    ("water pump", "Wasserpumpe", "engine", (50, 180)),
    ("shock absorber front", "Stoßdämpfer vorne", "suspension", (60, 200)),
    ("clutch kit", "Kupplungssatz", "transmission", (150, 480)),
]
GENERATIONS = 8           # year bands per model: 3120 rows in all


def rows(seed: int = 2026, generations: int = GENERATIONS) -> Iterator[dict[str, str]]:
    rng = random.Random(seed)
    number = 10000
    for make, models in VEHICLES.items():
        for model, (first, last, *bands) in models.items():
            count = bands[0] if bands else generations
            span = max(1, (last - first + 1) // count)
            for band in range(count):
                start = first + band * span
                end = last if band == count - 1 else min(last, start + span - 1)
                for english, german, category, (low, high) in PARTS:
                    number += 1
                    years = f"{start}-{end}" if end > start else str(start)
                    yield {"part_number": f"DEMO-{number}",
                           "name": f"Demoparts {english}",
                           "category": category, "make": make, "model": model,
                           "years": years,
                           "price": f"{rng.uniform(low, high):.2f}",
                           "stock": str(rng.choice([0, 0, 1, 2, 3, 5, 8, 12, 20])),
                           "name_de": f"Demoparts {german}", "name_en": f"Demoparts {english}"}


def as_csv(seed: int = 2026, generations: int = GENERATIONS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(seed, generations))
    return out.getvalue()
