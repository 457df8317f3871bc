"""Every reason a chat comes to a human reaches the desk with a readable label and, for complaints,
disputes and messages left off hours, a flag — in the assigned chat and in the queue."""

from __future__ import annotations

import pytest

from bot.phrasebook import Phrasebook
from bot.reasons import REASONS
from tests.adapters.test_handoff import buyer
from tests.conftest import ROOT, Clock, shop_time
from tests.desk_client import agent, handoff_sections

PHRASES = Phrasebook.load(ROOT / "phrasebook")
EVERYONE = ["presales", "aftersales", "reviews"]

# (what the buyer writes, the reason, the flag); "misses" takes two unanswerable messages
CASES = [
    (["我要转人工"], "request", None),
    (["你是男生还是女生", "你们老板帅不帅"], "misses", None),
    (["衣服质量太差了，开线了"], "product", "dispute"),
    (["快递丢了，一直没到"], "logistics", "dispute"),
    (["你们客服态度太差了"], "service", "complaint"),
    (["再不处理我就给差评"], "bad_review", "complaint"),
]


def test_the_cases_cover_every_reason_but_the_off_hours_message():
    assert {c[1] for c in CASES} | {"message"} == {r.key for r in REASONS}


@pytest.mark.parametrize(("texts", "reason", "flag"), CASES)
async def test_the_assigned_chat_carries_the_reason_label_and_flag(start_bot, http, desks, texts, reason, flag):
    bot = await start_bot(**handoff_sections(agent("alice", EVERYONE)))
    desk = desks(bot.url)
    await desk.connect("alice")
    client = await buyer(http, bot.url)
    for text in texts:
        await client.ask(text)
    chat = (await desk.expect("assigned"))["conversation"]
    assert chat["reason"] == reason
    assert chat["reason_label"] == PHRASES.label("reasons", reason) and chat["reason_label"] != reason
    assert chat["flag"] == flag
    assert chat["flag_label"] == (PHRASES.label("flags", flag) if flag else None)


async def test_a_message_left_off_hours_is_flagged_in_the_queue(start_bot, http, desks, clock: Clock):
    clock.now = shop_time(23)
    bot = await start_bot(**handoff_sections(agent("alice", EVERYONE)))
    client = await buyer(http, bot.url)
    await client.ask("上次跟你们说的那件事考虑得怎么样了")
    desk = desks(bot.url)
    hello = await desk.connect("alice")
    chats = hello["chats"] or [(await desk.expect("assigned"))["conversation"]]
    assert (chats[0]["reason"], chats[0]["flag"], chats[0]["reason_label"]) == ("message", "message", "非工作时间留言")


async def test_a_queued_complaint_is_flagged_before_anyone_takes_it(start_bot, http, desks):
    bot = await start_bot(**handoff_sections(agent("rita", ["reviews"], capacity=1)))
    desk = desks(bot.url)
    await desk.connect("rita")
    first, second = await buyer(http, bot.url), await buyer(http, bot.url)
    await first.ask("我要投诉你们")
    await desk.expect("assigned")
    await second.ask("再不退款我就打12315")
    queue = await desk.expect("queue")
    while not queue["queue"]:
        queue = await desk.expect("queue")
    waiting = queue["queue"][0]
    assert (waiting["reason"], waiting["flag"], waiting["flag_label"]) == ("bad_review", "complaint", "投诉")
    assert waiting["reason_label"] == "差评/投诉威胁"


def test_labels_exist_in_both_languages_and_traditional_is_derived():
    for r in REASONS:
        assert PHRASES.label("reasons", r.key, "zh-CN") != r.key and PHRASES.label("reasons", r.key, "en") != r.key
    assert PHRASES.label("reasons", "service", "zh-TW") == "服務態度投訴"
