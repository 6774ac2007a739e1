"""Shop facts from TOML: hours in the shop's time zone, holidays, clear errors."""

import datetime as dt
from importlib import resources
from zoneinfo import ZoneInfo

import pytest

from tomctl.errors import ConfigError
from tomctl.tools import shop

EXAMPLE = str(resources.files("tomctl.tools").joinpath("data", "shop.toml"))
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def demo():
    return shop.load(EXAMPLE)


@pytest.mark.parametrize("at, is_open", [
    (dt.datetime(2026, 12, 5, 10, 0, tzinfo=BERLIN), True),        # Saturday morning
    (dt.datetime(2026, 12, 5, 13, 0, tzinfo=BERLIN), False),       # Saturday, just closed
    (dt.datetime(2026, 12, 6, 10, 0, tzinfo=BERLIN), False),       # Sunday
    (dt.datetime(2026, 12, 7, 7, 59, tzinfo=BERLIN), False),       # Monday, before opening
    (dt.datetime(2026, 12, 7, 8, 0, tzinfo=BERLIN), True),
    (dt.datetime(2026, 12, 25, 10, 0, tzinfo=BERLIN), False),      # a Friday, but Christmas
    # 09:30 in New York is 15:30 in Berlin, a Monday: open.
    (dt.datetime(2026, 12, 7, 9, 30, tzinfo=ZoneInfo("America/New_York")), True),
    (dt.datetime(2026, 12, 7, 17, 30, tzinfo=dt.timezone.utc), False),   # 18:30 in Berlin
])
def test_open_in_the_shops_time_zone(demo, at, is_open):
    assert demo.is_open(at) is is_open


def test_the_facts_for_the_prompt(demo):
    saturday = demo.next_day_named(5, dt.date(2026, 12, 2))
    assert saturday == dt.date(2026, 12, 5)
    assert demo.hours_fact(saturday) == "Saturday 2026-12-05: open 09:00-13:00."
    assert demo.hours_fact(dt.date(2026, 12, 6), "de") == "Sonntag 2026-12-06: geschlossen."
    assert demo.hours_fact(dt.date(2026, 12, 25)) == "Friday 2026-12-25: closed."
    assert "Berlin" in demo.address and "30 days" in demo.returns


@pytest.mark.parametrize("text, message", [
    ('name = "x"\ntimezone = "Mars/Olympus"\naddress = "a"\nreturns = "r"', "time zone"),
    ('name = "x"\ntimezone = "UTC"\naddress = "a"\nreturns = "r"\n[hours]\nfunday = "08:00-18:00"',
     "hours.funday is not a weekday"),
    ('name = "x"\ntimezone = "UTC"\naddress = "a"\nreturns = "r"\n[hours]\nmonday = "8-6"',
     "is not HH:MM-HH:MM"),
    ('name = "x"\ntimezone = "UTC"\naddress = "a"\nreturns = "r"\n[hours]\nmonday = "18:00-08:00"',
     "ends before it starts"),
    ('name = "x"\ntimezone = "UTC"\nreturns = "r"', "address must be"),
    ('name = ', "not valid TOML"),
])
def test_errors_name_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "shop.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        shop.load(str(path))
    assert str(path) in str(error.value)
