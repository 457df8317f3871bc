"""Greeting handler: pure decisions, no I/O."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.types import Customer, Inbound, Session, State
from handlers.greeting import Greeting
from tests.conftest import ROOT, shop_time

PHRASES = Phrasebook.load(ROOT / "phrasebook")
SHOP = parse_config({}, env={}).shop
GREETING = Greeting(PHRASES, SHOP.clock, "小二优选")


def ctx(text: str, state: State = State.NEW, hour: int = 10, name: str | None = None, locale: str = "zh-CN") -> Context:
    inbound = Inbound("web", "web:x", "m1", Customer("x", name), text)
    return Context(inbound, Session("web:x", "web", state=state, customer_name=name), shop_time(hour), locale)


@pytest.mark.parametrize("text", ["在吗", "在吗？？", "亲，在吗", "你好", "您好！", "Hi", "hello 👋", "老板在吗", "在不在"])
def test_bare_greetings(text: str):
    assert GREETING.is_bare_greeting(text)


@pytest.mark.parametrize("text", ["你好，什么时候发货", "在吗 我要退货", "hi when will my order ship", "亲肤吗", "", "👋"])
def test_not_bare_greetings(text: str):
    assert not GREETING.is_bare_greeting(text)


def test_first_bare_greeting_is_welcomed_and_final():
    result = GREETING.handle(ctx("在吗"))
    assert result is not None and result.final
    assert [r.phrase for r in result.replies] == ["system.welcome"]
    assert result.session is not None and result.session.state is State.BOT


def test_first_question_gets_the_welcome_and_passes_on():
    result = GREETING.handle(ctx("什么时候发货"))
    assert result is not None and not result.final and [r.phrase for r in result.replies] == ["system.welcome"]


def test_named_welcome_off_hours_says_when_humans_are_back():
    result = GREETING.handle(ctx("hi", hour=23, name="Amy", locale="en"))
    assert result is not None
    text = result.replies[0].text
    assert result.replies[0].phrase == "system.welcome_off_hours_named"
    assert "Amy" in text and PHRASES.text("system.back_tomorrow", "en", open="09:00") in text


def test_later_messages_are_not_greeted_unless_a_bare_greeting():
    assert GREETING.handle(ctx("什么时候发货", state=State.BOT)) is None
    again = GREETING.handle(ctx("在吗", state=State.BOT))
    assert again is not None and [r.phrase for r in again.replies] == ["system.greeting_again"]


def test_traditional_buyer_gets_traditional_welcome():
    result = GREETING.handle(ctx("您好", locale="zh-TW"))
    assert result is not None
    assert result.replies[0].text == PHRASES.text("system.welcome", "zh-TW", shop="小二优选")
    assert result.replies[0].text != PHRASES.text("system.welcome", "zh-CN", shop="小二优选")


def test_pictures_are_not_greetings():
    inbound = Inbound("web", "web:x", "m1", Customer("x"), "", kind="unsupported")
    assert GREETING.handle(Context(inbound, Session("web:x", "web"), shop_time(10), "zh-CN")) is None
