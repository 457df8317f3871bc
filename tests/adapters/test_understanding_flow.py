"""Understanding end to end: the real widget and desk sockets, Telegram and WeChat against local
fakes of their APIs, real Redis. Disputes by meaning, small talk, "did you mean" and the pick."""

from __future__ import annotations

import pytest

from bot.faq import load_faq_files
from bot.phrasebook import Phrasebook
from tests.adapters.test_handoff import buyer, handoff_state
from tests.conftest import ROOT
from tests.desk_client import agent, handoff_sections

PHRASES = Phrasebook.load(ROOT / "phrasebook")
FAQ = {e.id: e for e in load_faq_files([ROOT / "phrasebook" / "faq" / "demo-shop.toml"])}
UNSURE = "衣服洗完会不会变小"  # the demo FAQ has washing, fit and fabric entries: the bot asks which


@pytest.mark.parametrize(("text", "reason", "group", "owner"), [
    ("这个面霜擦上脸就刺痛", "product", "aftersales", "bob"),
    ("衣服洗了一次就掉色了", "product", "aftersales", "bob"),
    ("快递员不肯送上门，让我自己去驿站拿", "logistics", "aftersales", "bob"),
    ("你们客服怎么这个态度", "service", "aftersales", "bob"),
    ("不给我解决我就去平台投诉，再给个差评", "bad_review", "reviews", "rita"),
    ("我要找真人客服", "request", "presales", "alice"),
])
async def test_a_single_clear_dispute_is_soothed_and_handed_to_its_group(start_bot, http, desks, redis_client, prefix,
                                                                        text, reason, group, owner):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["aftersales"]), agent("rita", ["reviews"])))
    desk = desks(bot.url)
    for name in ("alice", "bob", "rita"):
        hello = await (desk if name == owner else desks(bot.url)).connect(name)
        assert hello["agent"]["username"] == name
    client = await buyer(http, bot.url)
    frames, _ = await client.ask(text)
    pid = "system.handoff_request" if reason == "request" else f"system.soothe_{reason}"
    assert frames[0]["text"] == PHRASES.text(pid, "zh-CN")
    state = await handoff_state(redis_client, prefix, client)
    assert (state["reason"], state["group"], state["agent"]) == (reason, group, owner)
    assigned = await desk.expect("assigned")
    assert assigned["conversation"]["reason"] == reason


async def test_small_talk_negated_requests_and_praise_never_hand_over(start_bot, http, desks, redis_client, prefix):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    await desks(bot.url).connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("你好")
    expected = {"谢谢": "thanks", "👍": "ok", "好的": "ok", "快递挺快的 很满意": "praise", "不用转人工 我自己看看": "bye"}
    for text, intent in expected.items():
        frames, _ = await client.ask(text)
        assert [f["text"] for f in frames] == [PHRASES.text(f"system.smalltalk_{intent}", "zh-CN")], text
    assert await handoff_state(redis_client, prefix, client) == {}
    session = await redis_client.hgetall(f"{prefix}conv:{{web:{client.visitor}}}:session")
    assert session.get("miss_count", "0") == "0"  # small talk is never a miss


async def test_did_you_mean_buttons_in_the_widget_and_the_pick_is_answered(bot, http, redis_client, prefix):
    client = await buyer(http, bot.url)
    await client.ask("你好")
    frames, _ = await client.ask(UNSURE)
    offer = frames[0]
    assert offer["text"] == PHRASES.text("system.did_you_mean", "zh-CN")
    buttons = offer["buttons"]
    assert 1 <= len(buttons) <= 3 and [b["text"] for b in buttons] == [str(i) for i in range(1, len(buttons) + 1)]
    offered = (await redis_client.hgetall(f"{prefix}conv:{{web:{client.visitor}}}:session"))["offered"].split(",")
    assert "washing" in offered and [b["label"] for b in buttons] == [FAQ[i].questions[0] for i in offered]
    frames, _ = await client.ask(buttons[offered.index("washing")]["text"])  # what a click sends
    assert [f["text"] for f in frames] == [FAQ["washing"].answer]
    session = await redis_client.hgetall(f"{prefix}conv:{{web:{client.visitor}}}:session")
    assert session.get("offered", "") == "" and session["last_intent"] == "washing"
    # an offer not taken up is dropped: the next message is read as usual
    await client.ask(UNSURE)
    frames, _ = await client.ask("什么时候发货")
    assert [f["text"] for f in frames] == [FAQ["shipping-time"].answer]
    frames, _ = await client.ask("1")  # no offer open any more: "1" is no pick
    assert frames[0]["text"] != FAQ[offered[0]].answer
