"""The agent's working day over the desk protocol: picking a waiting buyer from the queue, telling
anonymous buyers apart, and the page a widget buyer wrote from."""

from __future__ import annotations

import asyncio

import pytest

from bot.phrasebook import Phrasebook
from tests.adapters.test_handoff import buyer, next_message
from tests.conftest import ROOT
from tests.desk_client import agent, handoff_sections
from tests.widget_client import WidgetClient

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


async def served_chat(desk, http, url, text="转人工"):
    client = await buyer(http, url)
    await client.ask(text)
    cid = (await desk.expect("assigned"))["conversation"]["id"]
    return client, cid


async def test_an_internal_note_reaches_desks_and_never_the_buyer(bot, desks, http):
    bob = desks(bot.url)
    await bob.connect("bob")
    client, cid = await served_chat(bob, http, bot.url)
    await bob.send({"type": "note", "conversation": cid, "text": "老顾客，上次退过货，注意语气"})
    note = await bob.expect("note", conversation=cid)
    assert note["note"]["text"] == "老顾客，上次退过货，注意语气" and note["note"]["agent"] == "bob"
    await bob.send({"type": "reply", "conversation": cid, "text": "亲，您好😊 请问有什么可以帮您？"})
    frame = await client.receive()                                # the very next frame the buyer gets
    assert frame["type"] == "message" and frame["text"] == "亲，您好😊 请问有什么可以帮您？"
    hello = await desks(bot.url).connect("bob")                   # the note is part of the chat on the desk
    assert [n["text"] for n in hello["chats"][0]["notes"]] == ["老顾客，上次退过货，注意语气"]
    await bob.send({"type": "note", "conversation": cid, "text": " "})
    assert (await bob.expect("error"))["code"] == "bad_frame"
    alice = desks(bot.url)
    await alice.connect("alice")
    await alice.send({"type": "note", "conversation": cid, "text": "不是我的"})
    assert (await alice.expect("error"))["code"] == "not_assigned"


async def test_reconnected_widget_history_has_no_note(bot, desks, http):
    bob = desks(bot.url)
    await bob.connect("bob")
    client, cid = await served_chat(bob, http, bot.url)
    await bob.send({"type": "note", "conversation": cid, "text": "内部备注ABC"})
    await bob.expect("note")
    again = WidgetClient(http, bot.url)
    ready = await again.connect(visitor=client.visitor, token=client.token)
    assert ready["type"] == "ready" and "转人工" in str(ready["history"]) and "内部备注ABC" not in str(ready["history"])


async def test_typing_indicators_both_ways_are_throttled(bot, desks, http):
    bob = desks(bot.url)
    await bob.connect("bob")
    client, cid = await served_chat(bob, http, bot.url)
    await client.send({"type": "typing"})
    await client.send({"type": "typing"})                         # within the throttle: dropped
    assert await bob.expect("typing") == {"type": "typing", "conversation": cid, "from": "customer"}
    await bob.send({"type": "typing", "conversation": cid})
    await bob.send({"type": "typing", "conversation": cid})
    assert await client.receive() == {"type": "typing", "from": "agent"}
    await bob.send({"type": "ping"})
    assert (await bob.expect("pong"))["type"] == "pong"
    await client.send({"type": "ping"})
    assert (await client.receive())["type"] == "pong"             # the second typing of each side was dropped
    assert [f["type"] for f in bob.seen].count("typing") == 1


@pytest.fixture
async def shop(start_bot):
    supervisor = {**agent("wang", ["presales"]), "role": "supervisor"}
    return await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["aftersales"]), supervisor))


async def close_chat(desk, cid):
    await desk.send({"type": "close", "conversation": cid})
    await desk.expect("unassigned", conversation=cid)


async def api(desk, path, **params):
    async with desk.http.get(desk.base_url + path, params=params) as resp:
        return resp.status, await resp.json()


async def test_closed_chats_are_found_by_text_buyer_and_date_and_supervisors_search_everyone(shop, desks, http, clock):
    from tests.conftest import shop_time
    alice, bob = desks(shop.url), desks(shop.url)
    await alice.connect("alice")
    named = await buyer(http, shop.url, name="王小姐")
    await named.ask("转人工")
    first = (await alice.expect("assigned"))["conversation"]["id"]
    await named.ask("我的围巾起球了")
    await close_chat(alice, first)
    clock.now = shop_time(11, 0) + 86400                          # the next day
    await bob.connect("bob")                                      # (presence follows the clock)
    anon = await buyer(http, shop.url)
    await anon.ask("快递丢了，一直没到")                            # aftersales -> bob
    second = (await bob.expect("assigned"))["conversation"]["id"]
    await close_chat(bob, second)

    status, body = await api(alice, "/desk/api/search")
    assert status == 200 and [r["conversation"] for r in body["results"]] == [first]  # only her own
    status, body = await api(alice, "/desk/api/search", q="起球")
    assert [r["conversation"] for r in body["results"]] == [first] and "起球" in body["results"][0]["snippet"]
    assert (await api(alice, "/desk/api/search", q="快递"))[1]["results"] == []
    assert (await api(alice, "/desk/api/search", buyer="王"))[1]["results"][0]["customer"]["name"] == "王小姐"
    assert (await api(alice, "/desk/api/search", buyer="李"))[1]["results"] == []
    assert (await api(alice, "/desk/api/search", scope="all"))[0] == 403

    wang = desks(shop.url)
    assert (await wang.login("wang")).status == 200
    status, body = await api(wang, "/desk/api/search", scope="all")
    assert status == 200 and [r["conversation"] for r in body["results"]] == [second, first]   # newest first
    assert body["results"][0]["agent"] == "bob" and body["results"][0]["customer"]["tag"]
    day1 = "2026-11-23"
    assert [r["conversation"] for r in (await api(wang, "/desk/api/search", scope="all", to=day1))[1]["results"]] == [first]
    assert [r["conversation"] for r in (await api(wang, "/desk/api/search", scope="all", **{"from": "2026-11-24"}))[1]["results"]] == [second]
    tag = body["results"][0]["customer"]["tag"]
    assert [r["conversation"] for r in (await api(wang, "/desk/api/search", scope="all", buyer=tag.lower()))[1]["results"]] == [second]

    # one case opens read-only, with its lines; a case is the agent's or a supervisor's to open
    case_id = body["results"][1]["case"]
    status, case = await api(alice, "/desk/api/case", conversation=first, case=case_id)
    assert status == 200 and "我的围巾起球了" in [m["text"] for m in case["case"]["history"]]
    assert (await api(bob, "/desk/api/case", conversation=first, case=case_id))[0] == 403
    assert (await api(wang, "/desk/api/case", conversation=first, case=case_id))[0] == 200
    assert (await api(alice, "/desk/api/case", conversation=first, case="12-0"))[0] == 404


async def test_a_buyers_past_conversations_open_from_the_info_panel(shop, desks, http):
    alice = desks(shop.url)
    await alice.connect("alice")
    client, cid = await served_chat(alice, http, shop.url)
    await client.ask("第一次的问题")
    await close_chat(alice, cid)
    await client.ask("5")                                          # the rating
    await client.ask("还是我，再转人工")
    await alice.expect("assigned", conversation__id=cid)
    status, body = await api(alice, "/desk/api/cases", conversation=cid)
    assert status == 200 and len(body["cases"]) == 1 and body["cases"][0]["agent"] == "alice"
    status, case = await api(alice, "/desk/api/case", conversation=cid, case=body["cases"][0]["case"])
    texts = [m["text"] for m in case["case"]["history"]]
    assert "第一次的问题" in texts and "还是我，再转人工" not in texts  # the past case only
    bob = desks(shop.url)
    assert (await bob.login("bob")).status == 200
    assert (await api(bob, "/desk/api/cases", conversation=cid))[0] == 403


async def test_history_endpoints_refuse_bad_input(shop, desks, http):
    anonymous = desks(shop.url)
    assert (await api(anonymous, "/desk/api/search"))[0] == 401
    alice = desks(shop.url)
    assert (await alice.login("alice")).status == 200
    assert (await api(alice, "/desk/api/search", **{"from": "2026-13-01"}))[0] == 400
    assert (await api(alice, "/desk/api/search", **{"from": "2026-11-24", "to": "2026-11-23"}))[0] == 400
    assert (await api(alice, "/desk/api/search", q="x" * 101))[0] == 400
    assert (await api(alice, "/desk/api/search", scope="everything"))[0] == 400
    assert (await api(alice, "/desk/api/cases", conversation="../x"))[0] == 400
    assert (await api(alice, "/desk/api/case", conversation="web:" + "a" * 32, case="soon"))[0] == 400
