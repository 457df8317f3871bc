"""Reports over a scripted day: the figures equal a hand count (real widget and desk sockets, real
Redis, an injected clock for known reply delays)."""

from __future__ import annotations

import asyncio
import csv
import io

import aiohttp

from tests.adapters.test_handoff import buyer, handoff_state, next_message
from tests.adapters.test_supervisor import supervisor
from tests.conftest import Clock, shop_time
from tests.desk_client import DeskClient, agent, handoff_sections

DAY = "2026-11-23"


async def logged_in(url: str, username: str) -> DeskClient:
    desk = DeskClient(url)
    assert (await desk.login(username)).status == 200
    return desk


async def get(desk: DeskClient, path: str) -> tuple[int, object]:
    async with desk.http.get(desk.base_url + path) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def wait_for(check, tries: int = 100) -> None:
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


def sample(name: str) -> tuple[float, float]:
    """(count, sum) of a histogram in this test process's registry."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(f"{name}_count") or 0.0, REGISTRY.get_sample_value(f"{name}_sum") or 0.0


async def test_report_of_a_scripted_day_equals_the_hand_count(start_bot, http, desks, redis_client, prefix, clock: Clock):
    frt_before, wait_before = sample("xiaoer_first_response_seconds"), sample("xiaoer_queue_wait_seconds")
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"]), supervisor("sam")))

    async def online(name: str) -> DeskClient:
        """A fresh desk socket: presence counts from the (injected) time it was opened."""
        desk = desks(bot.url)
        await desk.connect(name)
        return desk

    # 10:00 A asks a question the FAQ answers: resolved by the bot
    clock.now = shop_time(10, 0)
    a = await buyer(http, bot.url)
    frames, _ = await a.ask("什么时候发货")
    assert frames and frames[-1]["from"] == "bot"

    # 10:05 B asks for a human: alice at once (queue wait 0), replies after 30 s, closes; B rates 5
    clock.now = shop_time(10, 5)
    alice = await online("alice")
    b = await buyer(http, bot.url)
    await b.ask("转人工")
    b_id = (await alice.expect("assigned"))["conversation"]["id"]
    clock.now += 30
    await alice.send({"type": "reply", "conversation": b_id, "text": "亲，您好😊 我是Alice，请问有什么可以帮您？"})
    await next_message(b)
    await alice.send({"type": "close", "conversation": b_id})
    await next_message(b)
    await b.ask("5")

    # 11:00 C greets (a bot reply, which never stops the clock), 11:01 asks for a human; the first
    # agent does not answer within 60 s, the chat is reassigned, the second agent answers 90 s after
    # the request; closes; C rates 2
    clock.now = shop_time(11, 0)
    c = await buyer(http, bot.url)
    await c.ask("你好")
    clock.now = shop_time(11, 1)
    alice, bob = await online("alice"), await online("bob")
    await c.ask("转人工")
    first = (await handoff_state(redis_client, prefix, c))["agent"]
    second = "bob" if first == "alice" else "alice"
    desk_of = {"alice": alice, "bob": bob}
    c_id = f"web:{c.visitor}"
    clock.now += 61
    assert (await desk_of[first].expect("unassigned", conversation=c_id))["reason"] == "first_response_timeout"
    await desk_of[second].expect("assigned", conversation__id=c_id)
    clock.now = shop_time(11, 1) + 90
    await desk_of[second].send({"type": "reply", "conversation": c_id, "text": "亲，让您久等了😊 我来帮您看看～"})
    await next_message(c)
    while (await next_message(c))["from"] != "agent":
        pass
    await desk_of[second].send({"type": "close", "conversation": c_id})
    await next_message(c)
    await c.ask("2")

    # 12:00 nobody is free: D waits; alice is back at 12:02 (queue wait 120 s), answers at 12:03
    for desk in (alice, bob):
        await desk.send({"type": "status", "status": "away"})
        await desk.expect("status")
    clock.now = shop_time(12, 0)
    d = await buyer(http, bot.url)
    await d.ask("人工客服")
    clock.now = shop_time(12, 2)
    alice = await online("alice")
    await alice.send({"type": "status", "status": "online"})
    d_id = (await alice.expect("assigned", conversation__id=f"web:{d.visitor}"))["conversation"]["id"]
    clock.now = shop_time(12, 3)
    await alice.send({"type": "reply", "conversation": d_id, "text": "亲，让您久等了😊 请问有什么可以帮您？"})
    await wait_for(lambda: _has_reply(redis_client, prefix, d))

    # the metrics saw the same samples
    frt, wait = sample("xiaoer_first_response_seconds"), sample("xiaoer_queue_wait_seconds")
    assert (frt[0] - frt_before[0], round(frt[1] - frt_before[1], 3)) == (3, 300)
    assert (wait[0] - wait_before[0], round(wait[1] - wait_before[1], 3)) == (3, 120)
    async with http.get(bot.url + "/metrics") as resp:
        text = await resp.text()
    assert 'xiaoer_queue_length{group="presales"} 0.0' in text and 'xiaoer_agents_online{group="presales"}' in text

    sam = await logged_in(bot.url, "sam")
    try:
        status, report = await get(sam, f"/desk/api/reports?from={DAY}&to={DAY}")
        assert status == 200, report
        assert (report["conversations"], report["handed_over"], report["bot_resolved"]) == (4, 3, 1)
        assert report["deflection_rate"] == 0.25
        assert report["first_response_seconds"] == {"p50": 90, "p90": 180, "count": 3, "average": 100.0}
        assert report["queue_wait_seconds"] == {"p50": 0, "p90": 120, "count": 3, "average": 40.0}
        assert report["reassignments"] == 1
        csat = report["csat"]
        assert (csat["ratings"], csat["average"], csat["satisfied_share"], csat["asked"], csat["response_rate"]) == (2, 3.5, 0.5, 2, 1.0)
        assert [d["date"] for d in report["by_day"]] == [DAY] and report["by_day"][0]["conversations"] == 4
        agents = {row["agent"]: row for row in report["by_agent"]}
        frt_of = {"alice": [30, 180], "bob": []}
        frt_of[second].append(90)
        for name in ("alice", "bob"):
            assert agents[name]["first_response_seconds"]["count"] == len(frt_of[name])
        assert agents[first]["reassignments"] == 1 and agents[second]["reassignments"] == 0
        assert agents["alice"]["csat"]["ratings"] == (2 if second == "alice" else 1)
        assert agents[second]["csat"]["average"] == (3.5 if second == "alice" else 2.0)
        groups = {row["group"]: row for row in report["by_group"]}
        assert groups["presales"]["handed_over"] == 3 and groups["presales"]["queue_wait_seconds"]["p90"] == 120
        assert report["by_channel"] == [{"channel": "web", "conversations": 4, "handed_over": 3, "bot_resolved": 1,
                                         "deflection_rate": 0.25, "messages": 7,
                                         "csat": {"ratings": 2, "average": 3.5, "satisfied_share": 0.5, "asked": 2, "response_rate": 1.0}}]
        hours = {row["hour"]: row for row in report["by_hour"]}
        assert [(hours[h]["conversations"], hours[h]["messages"]) for h in (10, 11, 12)] == [(2, 3), (1, 3), (1, 1)]
        assert sum(row["conversations"] for row in report["by_hour"]) == 4

        # a range around the day: the same totals, empty days counted as zero
        status, week = await get(sam, "/desk/api/reports?from=2026-11-20&to=2026-11-26")
        assert status == 200 and week["conversations"] == 4 and len(week["by_day"]) == 7
        assert week["by_day"][0]["conversations"] == 0 and week["by_day"][0]["first_response_seconds"]["p50"] is None

        status, text = await get(sam, f"/desk/api/reports.csv?from={DAY}&to={DAY}")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert status == 200 and [r["date"] for r in rows] == [DAY, "total"]
        assert (rows[1]["conversations"], rows[1]["first_response_p50"], rows[1]["rating_average"]) == ("4", "90", "3.5")
    finally:
        await sam.close()


async def _has_reply(redis_client, prefix, client) -> bool:
    return bool((await handoff_state(redis_client, prefix, client)).get("first_reply_at"))


async def test_a_buyer_who_asks_for_a_human_later_in_the_conversation_is_not_a_bot_resolution(start_bot, http, desks, clock: Clock):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam")))
    clock.now = shop_time(23, 50)
    client = await buyer(http, bot.url)
    await client.ask("什么时候发货")  # answered by the bot on the 23rd ...
    clock.now = shop_time(23, 50) + 20 * 60
    await client.ask("转人工")          # ... but the buyer came back after midnight for a human
    sam = await logged_in(bot.url, "sam")
    try:
        _, report = await get(sam, "/desk/api/reports?from=2026-11-23&to=2026-11-24")
        assert [(d["conversations"], d["handed_over"], d["bot_resolved"]) for d in report["by_day"]] == [(1, 1, 0), (0, 0, 0)]
        assert report["bot_resolved"] == 0 and report["handoffs"] == 1
    finally:
        await sam.close()


async def test_reports_need_a_supervisor_and_a_good_range(start_bot, http):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam")))
    async with aiohttp.ClientSession() as anonymous:
        for path in ("/desk/api/reports", "/desk/api/reports.csv", "/desk/api/faq-gaps"):
            async with anonymous.get(bot.url + path) as resp:
                assert resp.status == 401 and (await resp.json())["error"] == "not_logged_in"
        async with anonymous.get(bot.url + "/desk/reports", allow_redirects=False) as resp:
            assert resp.status == 302
    alice = await logged_in(bot.url, "alice")
    sam = await logged_in(bot.url, "sam")
    try:
        for path in ("/desk/reports", "/desk/api/reports", "/desk/api/reports.csv", "/desk/api/faq-gaps"):
            status, body = await get(alice, path)
            assert status == 403, path
        for query in ("from=2026-13-01", "from=2026-11-23&to=2026-11-01", "from=yesterday", "from=2000-01-01&to=2026-01-01"):
            status, body = await get(sam, f"/desk/api/reports?{query}")
            assert status == 400 and body["error"] == "bad_range", query
        for days in ("0", "x", "91", "-1"):
            status, body = await get(sam, f"/desk/api/faq-gaps?days={days}")
            assert status == 400 and body["error"] == "bad_days"
        status, body = await get(sam, "/desk/api/reports")
        assert status == 200 and body["from"] == body["to"] == DAY and body["conversations"] == 0
        assert body["deflection_rate"] is None
    finally:
        await alice.close()
        await sam.close()


async def test_faq_gaps_group_unanswered_questions_with_the_agents_answers(start_bot, http, desks):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam")))
    alice = desks(bot.url)
    await alice.connect("alice")
    # near-duplicates by meaning, not by characters: 产地 and 进口 share nothing but the product
    for text in ("什么时候发货", "猫粮是进口的吗", "这款猫粮产地是哪里", "有实体店吗", "有实体店吗"):
        await (await buyer(http, bot.url)).ask(text)
    asked = await buyer(http, bot.url)
    await asked.ask("你们有实体店吗")
    await asked.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    await alice.send({"type": "reply", "conversation": cid, "text": "亲，我们暂时只在网上销售哦😊"})
    await next_message(asked)
    sam = await logged_in(bot.url, "sam")
    try:
        status, body = await get(sam, "/desk/api/faq-gaps?days=7")
    finally:
        await sam.close()
    assert status == 200
    gaps = body["gaps"]
    assert [g["count"] for g in gaps] == [3, 2]
    assert gaps[0]["examples"] == ["有实体店吗", "你们有实体店吗"] and gaps[0]["answers"] == ["亲，我们暂时只在网上销售哦😊"]
    assert sorted(gaps[1]["examples"]) == ["猫粮是进口的吗", "这款猫粮产地是哪里"] and gaps[1]["answers"] == []
    assert 'questions = ["有实体店吗", "你们有实体店吗"]' in gaps[0]["draft"]
    assert all("发货" not in e for g in gaps for e in g["examples"])  # answered by the FAQ: not a gap
