"""Supervisor follow-ups that happen: a low rating and a chat nobody answered after
max_reassignments reach every supervisor's desk, stay listed until one takes it, and are gone for
all once taken — real desk sockets, real Redis."""

from __future__ import annotations

from bot.phrasebook import Phrasebook
from tests.adapters.test_handoff import buyer, next_message
from tests.conftest import ROOT, Clock
from tests.desk_client import agent, handoff_sections

PHRASES = Phrasebook.load(ROOT / "phrasebook")


def supervisor(username: str) -> dict:
    return {**agent(username, ["reviews"]), "role": "supervisor"}


async def closed_and_rated(bot, http, alice, score: str):
    client = await buyer(http, bot.url, name="王小姐")
    await client.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    await alice.send({"type": "close", "conversation": cid})
    await next_message(client)  # thanks, and please rate
    frames, _ = await client.ask(score)
    return cid, [f["text"] for f in frames]


async def test_a_low_rating_reaches_every_supervisor_and_only_them(start_bot, http, desks):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam"), supervisor("sue")))
    alice, sam = desks(bot.url), desks(bot.url)
    hello = await alice.connect("alice")
    assert "followups" not in hello and hello["agent"]["role"] == "agent"
    hello = await sam.connect("sam")
    assert hello["followups"] == [] and hello["agent"]["role"] == "supervisor"
    cid, said = await closed_and_rated(bot, http, alice, "1")
    assert said == [PHRASES.text("system.rating_sorry", "zh-CN")]  # "a supervisor will be in touch"
    item = (await sam.expect("followup"))["followup"]
    assert (item["kind"], item["conversation"], item["score"], item["agent"], item["agent_name"]) == ("low_rating", cid, 1, "alice", "Alice")
    assert item["label"] == PHRASES.label("followups", "low_rating") and item["customer"]["name"] == "王小姐"
    # a supervisor who logs in later finds it listed
    sue = desks(bot.url)
    listed = (await sue.connect("sue"))["followups"]
    assert [f["id"] for f in listed] == [item["id"]]
    # the agent's desk never hears of it, even after a reconnect
    again = desks(bot.url)
    assert "followups" not in await again.connect("alice")
    assert all(f["type"] != "followup" for f in alice.seen)


async def test_a_good_rating_creates_no_follow_up(start_bot, http, desks):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam")))
    alice = desks(bot.url)
    await alice.connect("alice")
    _, said = await closed_and_rated(bot, http, alice, "4")
    assert said == [PHRASES.text("system.rating_thanks", "zh-CN")]
    assert await bot.store.open_followups() == []
    assert (await desks(bot.url).connect("sam"))["followups"] == []


async def test_taking_a_follow_up_marks_it_handled_for_every_supervisor(start_bot, http, desks):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam"), supervisor("sue")))
    alice, sam, sue = desks(bot.url), desks(bot.url), desks(bot.url)
    await alice.connect("alice")
    await sam.connect("sam")
    await sue.connect("sue")
    await closed_and_rated(bot, http, alice, "2")
    fid = (await sam.expect("followup"))["followup"]["id"]
    assert (await sue.expect("followup"))["followup"]["id"] == fid
    await sue.send({"type": "take_followup", "id": fid})
    for desk in (sam, sue):
        taken = await desk.expect("followup_taken")
        assert (taken["id"], taken["by"], taken["by_name"]) == (fid, "sue", "Sue")
    await sam.send({"type": "take_followup", "id": fid})  # too late
    assert (await sam.expect("error"))["code"] == "already_taken"
    assert (await desks(bot.url).connect("sam"))["followups"] == []
    stored = await bot.store.followup(fid)
    assert stored is not None and stored["taken_by"] == "sue"


async def test_bad_take_frames_are_refused_and_change_nothing(start_bot, http, desks):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam")))
    alice, sam = desks(bot.url), desks(bot.url)
    await alice.connect("alice")
    await sam.connect("sam")
    await closed_and_rated(bot, http, alice, "1")
    fid = (await sam.expect("followup"))["followup"]["id"]
    await alice.send({"type": "take_followup", "id": fid})
    assert (await alice.expect("error"))["code"] == "not_supervisor"
    for bad in ({"type": "take_followup"}, {"type": "take_followup", "id": 7}, {"type": "take_followup", "id": "../x"}):
        await sam.send(bad)
        assert (await sam.expect("error"))["code"] == "bad_frame"
    await sam.send({"type": "take_followup", "id": "999999"})
    assert (await sam.expect("error"))["code"] == "unknown_followup"
    assert [f["id"] for f in await bot.store.open_followups()] == [fid]


async def test_an_exhausted_reassignment_is_a_follow_up_not_just_a_log_line(start_bot, http, desks, clock: Clock):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam"), max_reassignments=0))
    alice, sam = desks(bot.url), desks(bot.url)
    await alice.connect("alice")
    await sam.connect("sam")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    clock.now += 61  # alice never answers
    item = (await sam.expect("followup"))["followup"]
    assert (item["kind"], item["conversation"], item["agent"]) == ("reassignments", cid, "alice")
    assert item["label"] == PHRASES.label("followups", "reassignments") and item["preview"] == "转人工"
    assert [f["kind"] for f in (await desks(bot.url).connect("sam"))["followups"]] == ["reassignments"]
