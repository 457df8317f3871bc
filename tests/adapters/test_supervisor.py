"""Supervisors over real desk sockets: they watch every chat and queue live, take a chat over or hand
it to another agent; agents may not."""

from __future__ import annotations

from tests.adapters.test_handoff import buyer, handoff_state
from tests.desk_client import agent, handoff_sections


def supervisor(username: str) -> dict:
    return {**agent(username, []), "role": "supervisor"}


async def expect_monitor(desk, check) -> dict:
    while True:
        frame = await desk.expect("monitor")
        if check(frame):
            return frame


async def test_supervisor_watches_takes_over_and_reassigns(start_bot, http, desks, redis_client, prefix):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"], capacity=1),
                                             supervisor("sam")))
    alice, bob, sam = desks(bot.url), desks(bot.url), desks(bot.url)
    await alice.connect("alice")
    first = await sam.connect("sam")
    assert first["type"] == "hello"
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = f"web:{client.visitor}"
    chat = (await alice.expect("assigned"))["conversation"]
    assert chat["id"] == cid
    view = await expect_monitor(sam, lambda f: any(c["id"] == cid for c in f["chats"]))
    assert next(c for c in view["chats"] if c["id"] == cid)["agent"] == "alice"
    # the buyer's message to alice's chat reaches the supervisor live
    await client.ask("还在吗")
    watched = await sam.expect("watch", conversation=cid)
    assert watched["agent"] == "alice" and watched["messages"][0]["text"] == "还在吗"

    await sam.send({"type": "take_over", "conversation": cid})
    assert (await alice.expect("unassigned", conversation=cid))["reason"] == "transfer"
    assert (await sam.expect("assigned"))["conversation"]["id"] == cid
    assert (await handoff_state(redis_client, prefix, client))["agent"] == "sam"

    await bob.connect("bob")
    await sam.send({"type": "reassign", "conversation": cid, "agent": "bob"})
    assert (await bob.expect("assigned"))["conversation"]["id"] == cid
    assert (await handoff_state(redis_client, prefix, client))["agent"] == "bob"
    # bob is full now (capacity 1): handing him another chat is refused; taking one over never is
    await sam.send({"type": "reassign", "conversation": cid, "agent": "bob"})
    assert (await sam.expect("error"))["code"] == "same_agent"


async def test_supervisor_takes_a_queued_chat(start_bot, http, desks, redis_client, prefix):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam")))
    sam = desks(bot.url)
    await sam.connect("sam")
    client = await buyer(http, bot.url)
    await client.ask("转人工")  # alice is offline: the chat waits in the queue
    cid = f"web:{client.visitor}"
    view = await expect_monitor(sam, lambda f: bool(f["queue"]))
    assert [q["id"] for q in view["queue"]] == [cid] and view["queue"][0]["group"] == "presales"
    await sam.send({"type": "take_over", "conversation": cid})
    assert (await sam.expect("assigned"))["conversation"]["id"] == cid
    state = await handoff_state(redis_client, prefix, client)
    assert (state["state"], state["agent"]) == ("WITH_AGENT", "sam")
    assert await redis_client.zcard(f"{prefix}queue:presales") == 0


async def test_agents_may_not_supervise(start_bot, http, desks, redis_client, prefix):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"])))
    alice, bob = desks(bot.url), desks(bot.url)
    await alice.connect("alice")
    await bob.connect("bob")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    chat = (await alice.expect("assigned"))["conversation"]
    await bob.send({"type": "take_over", "conversation": chat["id"]})
    assert (await bob.expect("error"))["code"] == "forbidden"
    await bob.send({"type": "reassign", "conversation": chat["id"], "agent": "bob"})
    assert (await bob.expect("error"))["code"] == "forbidden"
    assert (await handoff_state(redis_client, prefix, client))["agent"] == "alice"
    assert not any(f["type"] in ("monitor", "watch") for f in bob.seen)
