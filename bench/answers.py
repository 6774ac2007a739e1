"""Grounded answers: 20 questions a parts shop's callers ask, spoken by Piper and espeak-ng
voices into a fresh call each (8 kHz, line noise at 30 dB SNR), answered through the real
models and the tool hub on the bundled demo catalogue and shop file, and each answer checked
against the catalogue and the file.

    python bench/answers.py --json [--modes template,llm,none]

Modes: ``template`` (the default, TOM_TOOL_ANSWERS=template: TOM says the found facts in its
own sentences), ``llm`` (the facts go into the prompt, the LLM phrases them) and ``none``
(no tool hub: the LLM alone, as before the hub). Per mode it prints:

  correct    share of answers that give what the catalogue or file says: the part's name
             and price (or, for a part that differs by car, a price of it and the question
             for the year), "we do not have that" for a part the catalogue lacks, the hours
             of the day asked about, the address, the returns policy
  invented   share of answers that state a number (a price, a time, a year, a house
             number, a count) that neither the question nor what the catalogue or the file
             holds for it contains, or a part number the catalogue lacks
  e2e        caller's last audible sample to the first answer frame sent, p50/p95 ms
  tool_ms    the lookup's own time, p95
  correct_after_reply
             the same, judged on TOM's next answer where its first ends on a question
             about the car or the part ("Which year is your car?") and the caller replies
             with what the question said, once, in the same voice ("It is from 2018.")
  replies    how many answers asked such a question
and the answers that were wrong. Targets: correct ≥ 90 %, invented 0, in template mode, on
the first answer.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.harness import timed_answer  # noqa: E402
from testkit.measure import StealMeter, percentiles  # noqa: E402
from testkit.speech import espeak_say, on_the_line, piper_say  # noqa: E402
from tomctl import config  # noqa: E402
from tomctl.engine import Engine  # noqa: E402
from tomctl.metrics import Metrics  # noqa: E402
from tomctl.tools import hub  # noqa: E402
from tomctl.tools.catalogue import Catalogue, import_csv  # noqa: E402
from tomctl.tools.shop import DAYS, load as load_shop  # noqa: E402

DATA = resources.files("tomctl.tools").joinpath("data")
RATE = 8000
SNR_DB = 30
VOICES = ("piper", "en-us", "en-gb")
TARGETS = {"correct": 0.9, "invented": 0.0}


@dataclasses.dataclass(frozen=True)
class Question:
    text: str
    kind: str                      # part, absent, hours, address, returns
    words: tuple[str, ...] = ()    # what the catalogue is asked, to know the right answer
    make: str = ""
    model: str = ""
    year: int = 0
    day: str = ""


QUESTIONS = [
    Question("Do you have brake pads for a VW Golf 7?", "part", ("brake", "pads"),
             "Volkswagen", "Golf 7"),
    Question("I need an oil filter for a Honda Civic from 2015.", "part", ("oil", "filter"),
             "Honda", "Civic", 2015),
    Question("How much are wiper blades for a 2019 Toyota Yaris?", "part", ("wiper",),
             "Toyota", "Yaris", 2019),
    Question("Do you have spark plugs for a Ford Focus from 2018?", "part", ("spark",),
             "Ford", "Focus", 2018),
    Question("I am looking for a water pump for a Skoda Octavia from 2017.", "part",
             ("water", "pump"), "Skoda", "Octavia", 2017),
    Question("Do you have a battery for a BMW X3 from 2016?", "part", ("battery",), "BMW",
             "X3", 2016),
    Question("What does a clutch kit cost for an Opel Astra from 2012?", "part",
             ("clutch",), "Opel", "Astra", 2012),
    Question("Do you have a timing belt kit for a Toyota Corolla from 2016?", "part",
             ("timing", "belt"), "Toyota", "Corolla", 2016),
    Question("Do you have brake discs for a Renault Megane from 2010?", "part",
             ("brake", "discs"), "Renault", "Megane", 2010),
    Question("Do you have an air filter for a Honda Jazz from 2020?", "part", ("air",),
             "Honda", "Jazz", 2020),
    Question("Do you have shock absorbers for a Ford Fiesta from 2014?", "part",
             ("shock",), "Ford", "Fiesta", 2014),
    Question("Do you sell an alternator for a VW Golf 8?", "part", ("alternator",),
             "Volkswagen", "Golf 8"),
    Question("Do you have a turbocharger for a VW Golf 7?", "absent"),
    Question("Do you sell exhaust pipes for a Renault Clio from 2015?", "absent"),
    Question("Do you have a roof box for a Toyota Corolla?", "absent"),
    Question("Are you open on Saturday?", "hours", day="saturday"),
    Question("Are you open on Sunday?", "hours", day="sunday"),
    Question("What are your opening hours on Wednesday?", "hours", day="wednesday"),
    Question("Where are you located?", "address"),
    Question("Can I return a part I bought?", "returns"),
]
_PRICE = re.compile(r"(\d+)(?:\s*(?:euros?|eur|€)\s*(?:and\s*)?(\d{1,2})\b(?!\s*(?:a\.m|p\.m|am|pm))"
                    r"|\s*(?:euros?|eur|€))|(\d+)[.,](\d{2})\b|€\s*(\d+)(?:[.,](\d{2}))?")
_PART_NUMBER = re.compile(r"\bDEMO-\d+\b", re.IGNORECASE)
_TIME = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?|uhr)", re.IGNORECASE)


def amounts(text: str) -> set[str]:
    """Every price stated in ``text``, as "34.16"."""
    found = set()
    for m in _PRICE.finditer(text.lower()):
        if m.group(1):
            found.add(f"{int(m.group(1))}.{int(m.group(2) or 0):02d}")
        elif m.group(3):
            found.add(f"{int(m.group(3))}.{m.group(4)}")
        else:
            found.add(f"{int(m.group(5))}.{int(m.group(6) or 0):02d}")
    return found


def times(text: str) -> set[tuple[int, int]]:
    found = set()
    for m in _TIME.finditer(text):
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        if m.group(3).lower().startswith("p") and hour < 12:
            hour += 12
        elif m.group(3).lower().startswith("a") and hour == 12:
            hour = 0
        found.add((hour, minute))
    return found


class Checker:
    def __init__(self, catalogue: Catalogue, shop, numbers: set[str]) -> None:
        self.catalogue = catalogue
        self.shop = shop
        self.numbers = numbers          # every part number the catalogue has

    def judge(self, question: Question, reply: str) -> tuple[bool, bool]:
        """(correct, invented). Invented: a number the reply states (a price, a time, a year,
        a house number, a count) that neither the question nor what the catalogue or the
        file holds for it contains, or a part number the catalogue lacks."""
        lowered = reply.lower()
        stated = amounts(reply)
        allowed = set(re.findall(r"\d+", question.text)) | {"0"}     # "press 0"
        numbers_ok = all(n.upper() in self.numbers for n in _PART_NUMBER.findall(reply))
        if question.kind == "part":
            right = self.catalogue.find(list(question.words), question.make, question.model,
                                        question.year, limit=50)
            anywhere = self.catalogue.find(list(question.words), limit=10_000)
            # A price must be one this part has for some car; the other numbers years of
            # its cars or digits of its own or its cars' names ("Golf 7", "battery 70Ah").
            invented = bool(stated - {f"{p.price:.2f}" for p in anywhere})
            for part in anywhere:
                allowed |= {str(part.year_from), str(part.year_to),
                            *re.findall(r"\d+", part.name_en), *re.findall(r"\d+", part.model)}
            named = any(p.name_en.lower().replace("demoparts ", "").split()[0] in lowered
                        and f"{p.price:.2f}" in stated for p in right)
            invented = invented or self._invents(_PRICE.sub(" ", reply.lower()), allowed) \
                or not numbers_ok
            return named and not invented, invented
        if question.kind == "hours":
            day = self.shop.next_day_named(DAYS.index(question.day), self.shop.now().date())
            spans = self.shop.spans_on(day)
            expected = {(t.hour, t.minute) for span in spans for t in span}
            for hour, minute in expected:
                allowed |= {str(hour), str(hour % 12 or 12), f"{minute:02d}", str(minute)}
            allowed.add(str(day.day))
            said = times(reply)
            invented = self._invents(reply, allowed) or bool(said - expected) or \
                not numbers_ok
            correct = expected <= said if spans else "closed" in lowered
            return correct and not invented, invented
        if question.kind == "address":
            allowed |= set(re.findall(r"\d+", self.shop.address))
            invented = self._invents(reply, allowed) or not numbers_ok
            return "musterstra" in lowered and not invented, invented
        if question.kind == "returns":
            allowed |= set(re.findall(r"\d+", self.shop.returns))
            invented = self._invents(reply, allowed) or not numbers_ok
            return "30 days" in lowered and not invented, invented
        invented = bool(stated) or self._invents(reply, allowed) or not numbers_ok  # absent
        says_no = bool(re.search(r"(do not|don't|not) (have|carry|sell|stock)|"
                                 r"not in (our|the) catalogue", lowered))
        return says_no and not invented, invented

    @staticmethod
    def _invents(reply: str, allowed: set[str]) -> bool:
        return any(number.lstrip("0") not in {a.lstrip("0") for a in allowed}
                   for number in re.findall(r"\d+", reply))


_CAR = re.compile(r".*\bfor (?P<car>an? .+?)[?.]$")
_PART = re.compile(r"\b(?:have|need|sell|are|for|does) (?:an? )?(?P<part>[a-z ]+?) "
                   r"(?:cost )?for an? ")


def reply_to(question: Question, reply: str) -> str | None:
    """What the caller says when TOM's answer asks about the car or the part: what the
    question said about it; None when TOM asked nothing of the kind."""
    car, part = _CAR.search(question.text), _PART.search(question.text)
    if reply.endswith("model and year is your car?"):
        return _sentence(car.group("car")) if car else None
    if reply.endswith("Which year is your car?"):
        return f"It is from {question.year}." if question.year else None
    if reply.startswith("Which part do you need"):
        return _sentence(part.group("part")) if part else None
    return None


def _sentence(words: str) -> str:
    """"a VW Golf 7" → "A VW Golf 7." (str.capitalize would say "vw golf")."""
    return f"{words[0].upper()}{words[1:]}."


def say(engine: Engine, text: str, voice: str) -> np.ndarray:
    audio = piper_say(engine, text, RATE) if voice == "piper" else \
        espeak_say(text, RATE, voice)
    return on_the_line(audio, RATE, SNR_DB, seed=len(text))


def run(modes: list[str]) -> dict:
    state = tempfile.mkdtemp(prefix="tom-answers-")
    catalogue_path = os.path.join(state, "catalogue.db")
    import_csv(str(DATA / "demo-catalogue.csv"), catalogue_path)
    engine = Engine(config.load(), Metrics())
    engine.start()
    catalogue = Catalogue(catalogue_path)
    numbers = {row[0] for row in catalogue._db.execute("select part_number from parts")}
    shop = load_shop(str(DATA / "shop.toml"))
    checker = Checker(catalogue, shop, numbers)
    audio = [say(engine, q.text, VOICES[i % len(VOICES)]) for i, q in enumerate(QUESTIONS)]
    steal = StealMeter()
    report: dict = {"questions": len(QUESTIONS), "modes": {}}
    for mode in modes:
        tools = None if mode == "none" else hub.build(config.load({
            "TOM_CATALOGUE_PATH": catalogue_path, "TOM_SHOP_FILE": str(DATA / "shop.toml"),
            "TOM_TOOL_ANSWERS": mode}), engine.metrics)
        correct, invented, e2e, tool_ms, wrong, cases = 0, 0, [], [], [], []
        after_reply, replies = 0, 0
        for question, spoken, index in zip(QUESTIONS, audio, range(len(QUESTIONS))):
            voice = VOICES[index % len(VOICES)]

            def then(reply: str, question=question, voice=voice) -> np.ndarray | None:
                said = reply_to(question, reply)
                return None if said is None else say(engine, said, voice)

            result = timed_answer(engine, spoken, RATE, SNR_DB, tools=tools, then=then)
            reply = result.get("reply", "")
            right, made_up = checker.judge(question, reply) if result["answered"] \
                else (False, False)
            correct += right
            invented += made_up
            follow_up = result.get("follow_up")
            if follow_up is not None:
                replies += 1
                later_right, later_made_up = checker.judge(question, follow_up["reply"]) \
                    if follow_up["answered"] else (False, False)
                after_reply += later_right and not later_made_up and not made_up
            else:
                after_reply += right and not made_up
            if result.get("e2e_ms") is not None:
                e2e.append(result["e2e_ms"])
            if "tool_ms" in result.get("latencies", {}):
                tool_ms.append(result["latencies"]["tool_ms"])
            cases.append({"question": question.text, "reply": reply, "correct": right,
                          "invented": made_up, "follow_up": follow_up})
            if not right or made_up:
                wrong.append({"question": question.text, "voice": voice,
                              "heard": result.get("transcript", ""), "reply": reply,
                              "invented": made_up, "follow_up": follow_up})
        report["modes"][mode] = {
            "correct": round(correct / len(QUESTIONS), 3),
            "invented": round(invented / len(QUESTIONS), 3),
            "correct_after_reply": round(after_reply / len(QUESTIONS), 3),
            "replies": replies,
            "e2e": percentiles(e2e), "tool_ms_p95": percentiles(tool_ms)["p95"],
            "wrong": wrong, "cases": cases}
    engine.close()
    report.update(cpu_steal_percent=steal.percent(), cpu_count=os.cpu_count(),
                  targets=TARGETS, date=dt.date.today().isoformat())
    template = report["modes"].get("template")
    report["meets_targets"] = bool(template and template["correct"] >= TARGETS["correct"]
                                   and template["invented"] <= TARGETS["invented"])
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="template,llm,none")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run([mode for mode in args.modes.split(",") if mode])
    print(json.dumps(report, ensure_ascii=False) if args.json
          else json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
