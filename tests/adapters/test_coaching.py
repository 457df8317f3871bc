"""Coaching by meaning through the real desk socket: a refusal with no 不 and no keyword, while the
buyer bargains, comes back as a coach frame with a better phrase; the same words pass otherwise."""

from __future__ import annotations

from tests.adapters.test_handoff import buyer
from tests.desk_client import agent, handoff_sections


async def test_a_refusal_in_other_words_is_coached_while_the_buyer_bargains(start_bot, desks, http):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    desk = desks(bot.url)
    await desk.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await desk.expect("assigned"))["conversation"]["id"]
    await desk.send({"type": "reply", "conversation": cid, "text": "要的话就按这个价拍吧"})
    assert (await desk.expect("message", conversation=cid))["text"] == "要的话就按这个价拍吧"  # nobody bargains
    await client.ask("老板能再便宜点吗")
    await desk.send({"type": "reply", "conversation": cid, "text": "要的话就按这个价拍吧"})
    coach = await desk.expect("coach")
    assert [w["rule"] for w in coach["warnings"]] == ["blunt_no"] and coach["warnings"][0]["suggestion"]
    await desk.send({"type": "reply", "conversation": cid, "text": "你这个人怎么回事，说了多少次了"})
    assert "rude" in [w["rule"] for w in (await desk.expect("coach"))["warnings"]]
