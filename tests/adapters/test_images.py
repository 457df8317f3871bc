"""Images from buyers and agents: upload checks (by the bytes), safe serving, and the image reaching
the other side over the widget and desk sockets."""

from __future__ import annotations

import struct
import zlib

import pytest

from tests.adapters.test_desk_day import served_chat
from tests.adapters.test_handoff import buyer, next_message
from tests.desk_client import agent, handoff_sections


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny) PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
async def bot(start_bot):
    return await start_bot(**handoff_sections(agent("alice", ["presales"])), channels={"web": {"max_image_bytes": 4096}})


def auth(client) -> dict[str, str]:
    return {"X-Xiaoer-Visitor": client.visitor, "X-Xiaoer-Token": client.token}


async def test_widget_upload_checks_the_bytes_the_size_and_the_visitor(bot, http):
    client = await buyer(http, bot.url)
    url = bot.url + "/widget/upload"
    async with http.post(url, data=png(), headers=auth(client)) as resp:
        assert resp.status == 200
        body = await resp.json()
        assert body["type"] == "image/png" and len(body["file"]) == 32 and body["url"] == f"/files/{body['file']}"
    async with http.get(bot.url + body["url"]) as served:
        assert served.status == 200 and await served.read() == png()
        assert served.headers["Content-Type"] == "image/png" and served.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in served.headers["Content-Security-Policy"]
    async with http.post(url, data=b"", headers=auth(client)) as resp:
        assert resp.status == 400
    async with http.post(url, data=png(60, 60) + b"\x00" * 5000, headers=auth(client)) as resp:
        assert resp.status == 413
    for fake in (b"<html><script>alert(1)</script></html>", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', b"GIF8"):
        async with http.post(url, data=fake, headers={**auth(client), "Content-Type": "image/png"}) as resp:
            assert resp.status == 415 and (await resp.json())["error"] == "unsupported_type"
    async with http.post(url, data=png()) as resp:
        assert resp.status == 403
    async with http.post(url, data=png(), headers={**auth(client), "X-Xiaoer-Token": "0" * 64}) as resp:
        assert resp.status == 403
    async with http.post(url, data=png(), headers={**auth(client), "Origin": "https://evil.example"}) as resp:
        assert resp.status == 403
    async with http.get(bot.url + "/files/" + "0" * 32) as resp:
        assert resp.status == 404
    async with http.get(bot.url + "/files/..%2Fsecret") as resp:
        assert resp.status == 404


async def test_a_buyers_image_reaches_the_desk_and_an_agents_image_reaches_the_buyer(bot, http, desks):
    desk = desks(bot.url)
    await desk.connect("alice")
    client, cid = await served_chat(desk, http, bot.url)
    async with http.post(bot.url + "/widget/upload", data=png(), headers=auth(client)) as resp:
        file_id = (await resp.json())["file"]
    frames, ack = await client.ask("", image=file_id)
    assert ack["type"] == "ack"
    relayed = await desk.expect("message", conversation=cid)
    assert relayed["from"] == "customer" and relayed["image"] == file_id
    assert (await desks(bot.url).connect("alice"))["chats"][0]["history"][-1]["image"] == file_id

    # agents upload with their session cookie and send the image as a reply
    async with desk.http.post(bot.url + "/desk/api/upload", data=png(3, 3)) as resp:
        assert resp.status == 200
        agent_file = (await resp.json())["file"]
    async with http.post(bot.url + "/desk/api/upload", data=png()) as resp:
        assert resp.status == 403                                # no cookie
    await desk.send({"type": "reply", "conversation": cid, "text": "", "image": agent_file})
    got = await next_message(client)
    assert got["from"] == "agent" and got["image"] == agent_file
    await desk.send({"type": "reply", "conversation": cid, "text": "", "image": file_id})   # not the agent's upload
    assert (await desk.expect("error", conversation=cid))["code"] == "bad_image"


async def test_a_message_may_only_carry_the_visitors_own_upload(bot, http):
    owner, other = await buyer(http, bot.url), await buyer(http, bot.url)
    async with http.post(bot.url + "/widget/upload", data=png(), headers=auth(owner)) as resp:
        file_id = (await resp.json())["file"]
    _, error = await other.ask("", image=file_id)
    assert error["type"] == "error" and error["code"] == "bad_image"
    _, error = await other.ask("", image="nope")
    assert error["code"] == "bad_image"
    _, error = await other.ask("")
    assert error["code"] == "bad_frame"


async def test_a_cross_origin_shop_page_may_upload_only_when_allowed(start_bot, http):
    bot = await start_bot(channels={"web": {"allowed_origins": ["https://shop.example.com"]}})
    client = await buyer(http, bot.url)
    url = bot.url + "/widget/upload"
    preflight = {"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-xiaoer-visitor, x-xiaoer-token"}
    async with http.options(url, headers=preflight) as resp:
        assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
        assert "X-Xiaoer-Token" in resp.headers["Access-Control-Allow-Headers"]
    async with http.options(url, headers={**preflight, "Origin": "https://evil.example"}) as resp:
        assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
    async with http.post(url, data=png(), headers={**auth(client), "Origin": "https://shop.example.com"}) as resp:
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
