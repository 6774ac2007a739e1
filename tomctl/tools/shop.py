"""The shop's facts: opening hours, address, returns policy, from a TOML file (pure once
loaded; the time is passed in, in the shop's time zone).

    name = "Demo Parts Counter"
    timezone = "Europe/Berlin"
    address = "Musterstraße 1, 10115 Berlin"
    returns = "Unused parts within 30 days with the receipt."

    [hours]                 # closed on days not listed; "HH:MM-HH:MM", several with ","
    monday = "08:00-18:00"
    saturday = "09:00-13:00"

    [closed]                # dates it is closed although the weekday is open
    dates = ["2026-12-25", "2026-12-26"]

Errors name the file and the field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tomctl.config import read_toml
from tomctl.errors import ConfigError

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
_SPAN = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)\s*$")


@dataclasses.dataclass(frozen=True)
class Shop:
    name: str
    timezone: ZoneInfo
    address: str
    returns: str
    hours: dict[int, tuple[tuple[dt.time, dt.time], ...]]     # weekday → spans
    closed_dates: frozenset[dt.date]

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.timezone)

    def spans_on(self, day: dt.date) -> tuple[tuple[dt.time, dt.time], ...]:
        return () if day in self.closed_dates else self.hours.get(day.weekday(), ())

    def is_open(self, at: dt.datetime) -> bool:
        local = at.astimezone(self.timezone)
        return any(start <= local.time() < end for start, end in self.spans_on(local.date()))

    def next_day_named(self, weekday: int, today: dt.date) -> dt.date:
        """The date of the next ``weekday`` from ``today`` on (today if it is one)."""
        return today + dt.timedelta(days=(weekday - today.weekday()) % 7)

    def hours_fact(self, day: dt.date, language: str = "en") -> str:
        """One short sentence of fact for the prompt."""
        spans = self.spans_on(day)
        name = (DAYS_DE if language == "de" else [d.capitalize() for d in DAYS])[day.weekday()]
        when = day.isoformat()
        if not spans:
            return (f"{name} {when}: geschlossen." if language == "de"
                    else f"{name} {when}: closed.")
        times = ", ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in spans)
        return (f"{name} {when}: geöffnet {times}." if language == "de"
                else f"{name} {when}: open {times}.")


def load(path: str) -> Shop:
    data = read_toml(path, "TOM_SHOP_FILE")

    def text(field: str) -> str:
        value = data.get(field)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: {field} must be a non-empty string")
        return value.strip()

    try:
        zone = ZoneInfo(text("timezone"))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: timezone {data.get('timezone')!r} is not a time zone "
                          "name such as Europe/Berlin") from None
    hours: dict[int, tuple[tuple[dt.time, dt.time], ...]] = {}
    table = data.get("hours", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [hours] must be a table of weekdays")
    for day, value in table.items():
        if day not in DAYS:
            raise ConfigError(f"{path}: hours.{day} is not a weekday ({', '.join(DAYS)})")
        hours[DAYS.index(day)] = _spans(path, day, value)
    dates = data.get("closed", {}).get("dates", [])
    try:
        closed = frozenset(date if isinstance(date, dt.date) else dt.date.fromisoformat(date)
                           for date in dates)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: closed.dates must be dates such as 2026-12-25") from None
    return Shop(text("name"), zone, text("address"), text("returns"), hours, closed)


def _spans(path: str, day: str, value: object) -> tuple[tuple[dt.time, dt.time], ...]:
    if not isinstance(value, str):
        raise ConfigError(f"{path}: hours.{day} must be a string such as \"08:00-18:00\"")
    spans = []
    for part in value.split(","):
        match = _SPAN.match(part)
        if not match:
            raise ConfigError(f"{path}: hours.{day} {part.strip()!r} is not HH:MM-HH:MM")
        start = dt.time(int(match.group(1)), int(match.group(2)))
        end = dt.time.max if match.group(3) == "24" else dt.time(int(match.group(3)),
                                                                 int(match.group(4)))
        if end <= start:
            raise ConfigError(f"{path}: hours.{day} {part.strip()!r} ends before it starts")
        spans.append((start, end))
    return tuple(spans)
