"""The desk: login, cookie, socket auth, coaching, transfer, away status."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.auth import verify_password
from bot.phrasebook import Phrasebook
from tests.adapters.test_handoff import buyer, next_message
from tests.conftest import ROOT
from tests.desk_client import agent, handoff_sections

PHRASES = Phrasebook.load(ROOT / "phrasebook")




@pytest.fixture
async def bot(start_bot):
    return await start_bot(**handoff_sections(agent("alice", ["presales", "aftersales"]), agent("bob", ["aftersales"])))


async def test_login_sets_an_httponly_samesite_cookie_and_serves_the_desk(bot, desks):
    desk = desks(bot.url)
    async with desk.http.get(bot.url + "/desk/") as resp:
        assert resp.status == 200 and 'id="login"' in await resp.text()
    resp = await desk.login("alice")
    assert resp.status == 200
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/desk" in cookie
    async with desk.http.get(bot.url + "/desk/") as page:
        assert 'id="login"' not in await page.text() and "desk.js" in await page.text()
    async with desk.http.post(bot.url + "/desk/api/logout") as out:
        assert out.status == 200
    async with desk.http.get(bot.url + "/desk/api/me") as me:
        assert me.status == 401


async def test_wrong_password_unknown_user_and_bad_bodies(bot, desks):
    desk = desks(bot.url)
    assert (await desk.login("alice", "wrong password")).status == 401
    assert (await desk.login("nobody")).status == 401
    async with desk.http.post(bot.url + "/desk/api/login", data=b"{not json") as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "bad_json"
    async with desk.http.post(bot.url + "/desk/api/login", json={"username": 5}) as resp:
        assert resp.status == 400


async def test_desk_socket_needs_a_login_and_the_same_origin(bot, desks, http):
    anonymous = desks(bot.url)
    error = await anonymous.connect()
    assert error["code"] == "not_logged_in" and (await anonymous.receive())["code"] == 4401
    desk = desks(bot.url)
    assert (await desk.login("alice")).status == 200
    desk.ws = await desk.http.ws_connect(bot.url.replace("http", "ws") + "/desk/ws", headers={"Origin": "https://evil.example"})
    assert (await desk.receive())["code"] == "not_logged_in"


async def test_coach_flags_a_curt_reply_and_send_anyway_sends_it(bot, desks, http):
    desk = desks(bot.url)
    await desk.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await desk.expect("assigned"))["conversation"]["id"]
    await desk.send({"type": "reply", "conversation": cid, "text": "哦"})
    coach = await desk.expect("coach")
    assert coach["text"] == "哦" and coach["warnings"][0]["rule"] == "curt" and coach["warnings"][0]["suggestion"]
    await desk.send({"type": "reply", "conversation": cid, "text": "哦", "force": True})
    sent = await desk.expect("message", conversation=cid)
    assert sent["from"] == "agent" and sent["text"] == "哦"
    assert (await next_message(client))["text"] == "哦"


async def test_coach_flags_a_blunt_no_only_while_bargaining_and_blaming_always(bot, desks, http):
    desk = desks(bot.url)
    await desk.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await desk.expect("assigned"))["conversation"]["id"]
    await desk.send({"type": "reply", "conversation": cid, "text": "不行，不打折的"})
    assert (await desk.expect("message", conversation=cid))["text"] == "不行，不打折的"  # not bargaining: sent
    await client.ask("能便宜点吗")
    await desk.send({"type": "reply", "conversation": cid, "text": "不行，不打折的"})
    assert [w["rule"] for w in (await desk.expect("coach"))["warnings"]] == ["blunt_no"]
    await desk.send({"type": "reply", "conversation": cid, "text": "一百个人买了，就你一个投诉"})
    assert "blame" in [w["rule"] for w in (await desk.expect("coach"))["warnings"]]


async def test_transfer_to_a_group_and_to_an_agent(bot, desks, http, redis_client, prefix):
    alice, bob = desks(bot.url), desks(bot.url)
    await alice.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    await alice.send({"type": "transfer", "conversation": cid, "agent": "bob"})
    assert (await alice.expect("error"))["code"] == "target_offline"
    await bob.connect("bob")
    await alice.send({"type": "transfer", "conversation": cid, "group": "aftersales"})
    assert (await alice.expect("unassigned", conversation=cid))["reason"] == "transfer"
    assert (await bob.expect("assigned"))["conversation"]["id"] == cid
    assert (await next_message(client))["text"] == PHRASES.text("system.transferred", "zh-CN", group="售后")
    await bob.send({"type": "transfer", "conversation": cid, "agent": "alice"})
    assert (await alice.expect("assigned"))["conversation"]["id"] == cid
    assert (await redis_client.hgetall(f"{prefix}conv:{{{cid}}}:handoff"))["agent"] == "alice"
    await bob.send({"type": "transfer", "conversation": cid, "group": "nope"})
    assert (await bob.expect("error"))["code"] == "unknown_target"
    await bob.send({"type": "reply", "conversation": cid, "text": "亲，您好，我是Bob😊"})
    assert (await bob.expect("error"))["code"] == "not_assigned"


async def test_an_away_agent_gets_no_new_chats(bot, desks, http, redis_client, prefix):
    desk = desks(bot.url)
    await desk.connect("alice")
    await desk.send({"type": "status", "status": "away"})
    assert (await desk.expect("status"))["status"] == "away"
    client = await buyer(http, bot.url)
    frames, _ = await client.ask("转人工")
    assert frames[-1]["text"] == PHRASES.text("system.handoff_nobody_online", "zh-CN")
    await desk.send({"type": "status", "status": "online"})
    assert (await desk.expect("assigned"))["conversation"]["id"] == f"web:{client.visitor}"


async def test_bad_desk_frames_get_clear_errors(bot, desks):
    desk = desks(bot.url)
    await desk.connect("alice")
    assert desk.ws is not None
    await desk.ws.send_str("nope")
    assert (await desk.receive())["code"] == "bad_json"
    await desk.send({"type": "reply", "conversation": "../etc", "text": "x"})
    assert (await desk.receive())["code"] == "bad_frame"
    await desk.send({"type": "status", "status": "asleep"})
    assert (await desk.receive())["code"] == "bad_frame"
    await desk.send({"type": "reply", "conversation": "web:" + "a" * 32, "text": "亲，您好😊 有什么可以帮您？"})
    assert (await desk.receive())["code"] == "not_assigned"


def test_hash_password_cli():
    result = subprocess.run([sys.executable, "-m", "bot", "hash-password"], input="s3cret-pass\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and verify_password(result.stdout.strip(), "s3cret-pass")
    short = subprocess.run([sys.executable, "-m", "bot", "hash-password"], input="short\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert short.returncode == 2


async def test_login_cookie_is_secure_behind_an_https_proxy(bot, http):
    async with http.post(bot.url + "/desk/api/login", json={"username": "alice", "password": "correct horse battery"},
                         headers={"X-Forwarded-Proto": "https"}) as resp:
        assert resp.status == 200 and "Secure" in resp.headers["Set-Cookie"]


async def test_transfer_to_an_agent_without_free_capacity_is_refused(start_bot, desks, http):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["aftersales"], capacity=1)))
    alice, bob = desks(bot.url), desks(bot.url)
    await alice.connect("alice")
    await bob.connect("bob")
    first, second = await buyer(http, bot.url), await buyer(http, bot.url)
    await first.ask("快递丢了，一直没到")           # logistics -> aftersales -> bob (now full)
    await bob.expect("assigned")
    await second.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    await alice.send({"type": "transfer", "conversation": cid, "agent": "bob"})
    assert (await alice.expect("error"))["code"] == "target_full"


async def test_text_that_is_not_valid_unicode_is_refused(bot, desks, http):
    desk = desks(bot.url)
    await desk.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await desk.expect("assigned"))["conversation"]["id"]
    assert desk.ws is not None and client.ws is not None
    await desk.ws.send_str('{"type":"reply","conversation":"%s","text":"\\ud800"}' % cid)
    assert (await desk.expect("error"))["code"] == "bad_frame"
    await client.ws.send_str('{"type":"message","id":"s1","text":"\\ud800"}')
    assert (await client.receive())["code"] == "bad_frame"
    await desk.send({"type": "ping"})
    assert (await desk.expect("pong"))["type"] == "pong"  # the desk socket is still alive
