"""Business hours: per weekday, past midnight, dated exceptions, and what the buyer is told."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bot.config import ConfigError, parse_config
from bot.hours import ShopClock
from bot.phrasebook import Phrasebook
from tests.conftest import ROOT, SHANGHAI

PHRASES = Phrasebook.load(ROOT / "phrasebook")


def clock(**shop: object) -> ShopClock:
    return parse_config({"shop": shop}, env={}).shop.clock


def at(day: int, hour: int, minute: int = 0) -> float:
    """A time in Shanghai in the week of Monday 2026-11-23 (day 23 = Monday ... 29 = Sunday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp()


def test_the_plain_daily_window_still_works():
    shop = clock(business_hours="09:00-18:30")
    assert not shop.is_open(at(23, 8, 59)) and shop.is_open(at(23, 9)) and shop.is_open(at(23, 18, 29))
    assert not shop.is_open(at(23, 18, 30))


def test_around_the_clock():
    shop = clock(business_hours="00:00-24:00")
    assert all(shop.is_open(at(d, h, m)) for d in (23, 26, 29) for h in (0, 3, 12, 23) for m in (0, 59))


def test_an_overnight_window_belongs_to_the_day_it_opens():
    shop = clock(business_hours="closed", hours={"fri": "22:00-02:00"})
    assert not shop.is_open(at(27, 21, 59))
    assert shop.is_open(at(27, 22)) and shop.is_open(at(27, 23, 59)) and shop.is_open(at(28, 1, 59))  # into Saturday
    assert not shop.is_open(at(28, 2)) and not shop.is_open(at(28, 22, 30))
    assert not shop.is_open(at(27, 1))  # Thursday night had no shift


def test_weekdays_with_their_own_hours_and_split_shifts():
    shop = clock(business_hours="09:00-18:00", hours={"sat": "10:00-12:00, 13:30-16:00", "sun": "closed"})
    assert shop.is_open(at(26, 17))  # Thursday: the default
    assert shop.is_open(at(28, 11)) and not shop.is_open(at(28, 12, 30)) and shop.is_open(at(28, 15))
    assert not shop.is_open(at(28, 17)) and not shop.is_open(at(29, 11))


def test_a_holiday_closes_the_day_and_a_special_opening_opens_one():
    shop = clock(business_hours="09:00-18:00", hours={"sun": "closed"},
                 exceptions=[{"date": "2026-11-25", "note": "店庆休息"}, {"date": "2026-11-29", "hours": "12:00-14:00"}])
    assert not shop.is_open(at(25, 10)) and shop.is_open(at(24, 10)) and shop.is_open(at(26, 10))
    assert shop.is_open(at(29, 13)) and not shop.is_open(at(29, 15))


def test_a_holiday_does_not_cut_the_previous_nights_shift_short():
    shop = clock(business_hours="20:00-03:00", exceptions=[{"date": "2026-11-24"}])
    assert shop.is_open(at(24, 2))       # Monday's shift runs into the holiday
    assert not shop.is_open(at(24, 21))  # but none opens on it


def back(shop: ShopClock, ts: float, locale: str = "zh-CN") -> dict[str, str]:
    return shop.back_values(ts, PHRASES.text, locale)


def test_the_buyer_is_told_the_next_opening_today_tomorrow_on_a_weekday_or_a_date():
    shop = clock(business_hours="09:00-18:30", hours={"sat": "10:00-16:00", "sun": "closed"},
                 exceptions=[{"date": "2026-12-01"}, {"date": "2026-12-02"}, {"date": "2026-12-03"}, {"date": "2026-12-04"},
                             {"date": "2026-12-05"}, {"date": "2026-12-06"}, {"date": "2026-12-07"}])
    assert back(shop, at(23, 7)) == {"open": "09:00", "close": "18:30", "back": "今天 09:00"}
    assert back(shop, at(23, 20))["back"] == "明天 09:00"
    assert back(shop, at(27, 19)) == {"open": "10:00", "close": "16:00", "back": "明天 10:00"}
    assert back(shop, at(28, 17))["back"] == "周一 09:00"       # Sunday is closed
    assert back(shop, at(28, 17), "en")["back"] == "on Monday at 09:00"
    assert back(shop, at(30, 19))["back"] == "12月8日 09:00"   # a week of holidays
    assert back(shop, at(30, 19), "en")["back"] == "on 8/12 at 09:00"


def test_an_overnight_close_is_labelled_with_the_morning_time_and_never_open_says_later():
    assert back(clock(business_hours="22:00-02:00"), at(23, 12)) == {"open": "22:00", "close": "02:00", "back": "今天 22:00"}
    never = clock(business_hours="closed")
    assert not never.is_open(at(23, 12)) and back(never, at(23, 12)) == {"open": "", "close": "", "back": "稍后"}


@pytest.mark.parametrize(
    ("shop", "expected"),
    [
        ({"business_hours": "9-6"}, "shop.business_hours: expected HH:MM-HH:MM"),
        ({"business_hours": "09:00-09:00"}, "shop.business_hours: opening and closing time are the same"),
        ({"hours": {"fri": "25:00-26:00"}}, "shop.hours.fri: not a time of day"),
        ({"hours": {"mon": "09:00-12:00, 11:00-14:00"}}, "shop.hours.mon: windows overlap"),
        ({"hours": {"tue": "08:00-12:00, 22:00-09:00"}}, "shop.hours.tue: the window past midnight runs into the first one"),
        ({"hours": {"funday": "closed"}}, "shop.hours.funday: unknown key"),
        ({"exceptions": [{"date": "2026-02-30"}]}, "shop.exceptions[0].date: "),
        ({"exceptions": [{"date": "2026-10-01", "hours": "shut"}]}, "shop.exceptions[0].hours: expected HH:MM-HH:MM"),
        ({"exceptions": [{"date": "2026-10-01", "until": "2026-10-07"}]}, "shop.exceptions[0].until: unknown key"),
        ({"exceptions": [{"hours": "closed"}]}, "shop.exceptions[0].date: "),
        ({"exceptions": [{"date": "2026-10-01"}, {"date": "2026-10-01"}]}, "shop.exceptions[1].date: 2026-10-01 is listed twice"),
    ],
)
def test_invalid_hours_name_the_key(shop: dict, expected: str):
    with pytest.raises(ConfigError) as info:
        parse_config({"shop": shop}, env={})
    assert any(line.startswith(expected) for line in info.value.problems), info.value.problems


def test_check_config_names_the_key_of_bad_hours(tmp_path: Path):
    path = tmp_path / "config.toml"
    faq = ROOT / "phrasebook/faq/demo-shop.toml"
    path.write_text(f'[faq]\nfiles = ["{faq.as_posix()}"]\n[shop]\nbusiness_hours = "09:00-18:30"\n[shop.hours]\nsat = "10:00-late"\n'
                    '[[shop.exceptions]]\ndate = 2026-10-01\nhours = "closed"\n', encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "bot", "check-config", "--config", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and (run.stdout + run.stderr).strip().splitlines()[0].startswith("shop.hours.sat: expected HH:MM-HH:MM"), run
    path.write_text(path.read_text(encoding="utf-8").replace("10:00-late", "10:00-16:00"), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "bot", "check-config", "--config", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run


def test_the_demo_config_is_open_around_the_clock():
    from bot.config import load_config

    shop = load_config(ROOT / "config.example.toml", env={}).shop.clock
    assert all(shop.is_open(at(d, h)) for d in range(23, 30) for h in range(24))
