"""The agent's working day over the desk protocol: picking a waiting buyer from the queue, telling
anonymous buyers apart, and the page a widget buyer wrote from."""

from __future__ import annotations

import asyncio

import pytest

from bot.phrasebook import Phrasebook
from tests.adapters.test_handoff import buyer, next_message
from tests.conftest import ROOT
from tests.desk_client import agent, handoff_sections

PHRASES = Phrasebook.load(ROOT / "phrasebook")


@pytest.fixture
async def bot(start_bot):
    return await start_bot(**handoff_sections(agent("alice", ["presales"], capacity=1), agent("bob", ["presales"]),
                                              agent("carol", ["aftersales"])))


async def away(desk, username):
    await desk.connect(username)
    await desk.send({"type": "status", "status": "away"})
    await desk.expect("status")


async def test_an_agent_picks_a_waiting_buyer_and_the_buyer_is_told(bot, desks, http, redis_client, prefix):
    alice = desks(bot.url)
    await away(alice, "alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    queue = (await alice.expect("queue"))["queue"]
    cid = f"web:{client.visitor}"
    assert [q["id"] for q in queue] == [cid]
    await alice.send({"type": "pick", "conversation": cid})
    assigned = await alice.expect("assigned")
    assert assigned["conversation"]["id"] == cid
    assert (await next_message(client))["text"] == PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    assert (await alice.expect("queue"))["queue"] == []
    handoff = await redis_client.hgetall(f"{prefix}conv:{{{cid}}}:handoff")
    assert handoff["state"] == "WITH_AGENT" and handoff["agent"] == "alice"
    assert await redis_client.smembers(f"{prefix}agent:alice:chats") == {cid}
    # full (capacity 1): the next waiting buyer cannot be taken, and nothing changes
    second = await buyer(http, bot.url)
    await second.ask("转人工")
    other = f"web:{second.visitor}"
    await alice.send({"type": "pick", "conversation": other})
    assert (await alice.expect("error", conversation=other))["code"] == "target_full"
    assert (await redis_client.hgetall(f"{prefix}conv:{{{other}}}:handoff"))["state"] == "QUEUED"


async def test_two_agents_picking_the_same_buyer_never_both_get_it(bot, desks, http, redis_client, prefix):
    alice, bob = desks(bot.url), desks(bot.url)
    await away(alice, "alice")
    await away(bob, "bob")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = f"web:{client.visitor}"
    await asyncio.gather(alice.send({"type": "pick", "conversation": cid}), bob.send({"type": "pick", "conversation": cid}))

    async def outcome(desk):
        while True:
            frame = await desk.receive()
            if frame["type"] == "assigned" and frame["conversation"]["id"] == cid:
                return "assigned"
            if frame["type"] == "error" and frame.get("conversation") == cid:
                return frame["code"]

    results = sorted(await asyncio.gather(outcome(alice), outcome(bob)))
    assert results == ["assigned", "not_queued"]
    owners = [u for u in ("alice", "bob") if cid in await redis_client.smembers(f"{prefix}agent:{u}:chats")]
    assert len(owners) == 1 and (await redis_client.hgetall(f"{prefix}conv:{{{cid}}}:handoff"))["agent"] == owners[0]


async def test_picking_is_refused_outside_the_agents_groups_and_for_chats_not_waiting(bot, desks, http, redis_client, prefix):
    carol, alice = desks(bot.url), desks(bot.url)
    await away(carol, "carol")
    await away(alice, "alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")                       # presales: carol is not a member
    cid = f"web:{client.visitor}"
    await carol.send({"type": "pick", "conversation": cid})
    assert (await carol.expect("error", conversation=cid))["code"] == "not_queued"
    assert (await redis_client.hgetall(f"{prefix}conv:{{{cid}}}:handoff"))["state"] == "QUEUED"
    await carol.send({"type": "pick", "conversation": "web:" + "b" * 32})
    assert (await carol.expect("error"))["code"] == "not_queued"
    await carol.send({"type": "pick", "conversation": "../x"})
    assert (await carol.expect("error"))["code"] == "bad_frame"


async def test_anonymous_buyers_get_distinct_stable_tags_and_the_page_they_wrote_from(bot, desks, http):
    bob = desks(bot.url)
    await bob.connect("bob")
    first, second = await buyer(http, bot.url), await buyer(http, bot.url)
    page = {"url": "https://shop.example/item/42?c=red", "title": "  羊毛   围巾 — 小二优选 "}
    await first.ask("转人工", page=page)
    await second.ask("转人工", page={"url": "javascript:alert(1)", "title": "x"})
    chats = {}
    for _ in range(2):
        c = (await bob.expect("assigned"))["conversation"]
        chats[c["id"]] = c["customer"]
    a, b = chats[f"web:{first.visitor}"], chats[f"web:{second.visitor}"]
    assert a["name"] is None and b["name"] is None
    assert len(a["tag"]) == 4 and a["tag"] != b["tag"] and a["tag"] == a["tag"].upper()
    assert a["page"] == {"url": page["url"], "title": "羊毛 围巾 — 小二优选"}
    assert b["page"] is None                                 # only http(s) pages are kept
    hello = await desks(bot.url).connect("bob")               # the same tag after a reconnect
    assert {c["id"]: c["customer"]["tag"] for c in hello["chats"]} == {k: v["tag"] for k, v in chats.items()}


async def test_a_malformed_page_is_a_clear_error_and_sends_nothing(bot, http):
    client = await buyer(http, bot.url)
    frames, error = await client.ask("你好", page="https://x.example")
    assert frames == [] and error["type"] == "error" and error["code"] == "bad_frame"
    frames, ack = await client.ask("你好", page={"url": "https://x.example", "title": "X"})
    assert ack["type"] == "ack" and frames
