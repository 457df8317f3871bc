"""The router: first final match wins; non-final results add replies and pass the session on."""

from __future__ import annotations

import pytest

from bot.router import Context, NoHandlerMatched, Router
from bot.types import Customer, Inbound, Reply, Result, Session


class Fixed:
    def __init__(self, name: str, result: Result | None):
        self.name, self.result, self.seen = name, result, []

    def handle(self, ctx: Context) -> Result | None:
        self.seen.append(ctx.session)
        return self.result


def ctx() -> Context:
    inbound = Inbound("web", "web:x", "m", Customer("x"), "hi")
    return Context(inbound, Session("web:x", "web"), now=0.0, locale="zh-CN")


def test_first_final_match_wins():
    a, b, c = Fixed("a", None), Fixed("b", Result(replies=(Reply("B"),))), Fixed("c", Result(replies=(Reply("C"),)))
    result = Router([a, b, c]).route(ctx())
    assert [r.text for r in result.replies] == ["B"] and result.handler == "b" and c.seen == []


def test_non_final_result_adds_replies_and_session():
    first = Fixed("hello", Result(replies=(Reply("welcome"),), session=Session("web:x", "web", miss_count=7), final=False))
    second = Fixed("faq", Result(replies=(Reply("answer"),)))
    result = Router([first, second]).route(ctx())
    assert [r.text for r in result.replies] == ["welcome", "answer"]
    assert second.seen[0].miss_count == 7 and result.session.miss_count == 7
    assert result.handler == "hello+faq"


def test_no_match_is_a_programming_error():
    with pytest.raises(NoHandlerMatched):
        Router([Fixed("a", None)]).route(ctx())
