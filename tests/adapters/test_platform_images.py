"""Pictures on the platform channels (Telegram, WeChat, WeCom), through the local fake APIs: a buyer's photo is downloaded via
the platform API and shown on the desk; an agent's image is uploaded back to the platform."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.adapters.test_images import png
from tests.adapters.test_telegram import fake, post, telegram_sections  # noqa: F401 (fake is a fixture)
from tests.adapters.test_wechat import Platform, image_xml, new_msg_id, new_openid, text_xml
from tests.adapters.test_wechat_app import wechat_sections
from tests.adapters.test_wecom_kf import KF, Platform as KfPlatform, new_user, wecom_sections
from tests.desk_client import agent, handoff_sections
from tests.fake_telegram import update
from tests.fake_wechat import FakeWeChat
from tests.fake_wecom import FakeWeCom


async def test_telegram_photos_reach_the_desk_and_agent_images_go_back(start_bot, fake, http, desks):
    sections = telegram_sections(fake, **handoff_sections(agent("alice", ["presales"])))
    sections["channels"]["web"] = {"max_image_bytes": 4096}
    bot = await start_bot(**sections)
    desk = desks(bot.url)
    await desk.connect("alice")
    assert (await post(http, bot, update(1, "转人工"))).status == 200
    cid = (await desk.expect("assigned"))["conversation"]["id"]
    assert cid == "telegram:1001"

    fake.files["ph1"] = png(8, 8)
    assert (await post(http, bot, update(2, photo="ph1", caption="这里开线了"))).status == 200
    shown = await desk.expect("message", conversation=cid)
    assert shown["from"] == "customer" and shown["text"] == "这里开线了" and shown["image"]
    assert ("getFile", {"file_id": "ph1"}) in [(n, {"file_id": p.get("file_id")}) for n, p in fake.calls if n == "getFile"]
    async with http.get(bot.url + "/files/" + shown["image"]) as resp:
        assert resp.status == 200 and await resp.read() == png(8, 8) and resp.headers["Content-Type"] == "image/png"

    async with desk.http.post(bot.url + "/desk/api/upload", data=png(5, 5)) as resp:
        image = (await resp.json())["file"]
    await desk.send({"type": "reply", "conversation": cid, "text": "亲，是这个位置吗？", "image": image})
    photo = (await fake.wait_photos(1))[0]
    assert photo["chat_id"] == 1001 and photo["data"] == png(5, 5) and photo["caption"] == "亲，是这个位置吗？"

    # too large, or not an image by its bytes: nothing is stored, the message still reaches the desk
    fake.files["big"] = png(60, 60) + b"\x00" * 5000
    fake.files["html"] = b"<html><script>alert(1)</script></html>"
    for n, file_id in ((3, "big"), (4, "html")):
        assert (await post(http, bot, update(n, photo=file_id))).status == 200
        relayed = await desk.expect("message", conversation=cid, **{"from": "customer"})
        assert relayed["id"] == f"u{n}" and "image" not in relayed


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChat]:
    server = await FakeWeChat().start()
    yield server
    await server.close()


async def test_wechat_pictures_reach_the_desk_and_agent_images_go_back(start_bot, wechat, http, desks, clock):
    bot = await start_bot(**wechat_sections(wechat), **handoff_sections(agent("alice", ["presales"])))
    platform = Platform(http, bot.url + "/wechat/callback", clock)
    openid = new_openid()
    alice = desks(bot.url)
    await alice.connect("alice")
    await platform.post(text_xml(openid, "转人工", new_msg_id(), int(clock())), mode="safe")
    cid = (await alice.expect("assigned"))["conversation"]["id"]

    wechat.pictures.media["m1"] = png(6, 4)
    status, _ = await platform.post(image_xml(openid, new_msg_id(), int(clock())), mode="safe")
    assert status == 200
    shown = await alice.expect("message", conversation=cid, **{"from": "customer"})
    async with http.get(bot.url + "/files/" + shown["image"]) as resp:
        assert resp.status == 200 and await resp.read() == png(6, 4)

    async with alice.http.post(bot.url + "/desk/api/upload", data=png(7, 7)) as resp:
        image = (await resp.json())["file"]
    await alice.send({"type": "reply", "conversation": cid, "text": "", "image": image})
    for _ in range(200):
        if wechat.sent:
            break
        await asyncio.sleep(0.05)
    sent = wechat.sent[0].body
    assert sent["msgtype"] == "image" and sent["touser"] == openid
    assert wechat.pictures.uploads[sent["image"]["media_id"]] == png(7, 7)

    del wechat.pictures.media["m1"]                                         # gone from the platform: no image, still relayed
    await platform.post(image_xml(openid, new_msg_id(), int(clock())), mode="safe")
    relayed = await alice.expect("message", conversation=cid, **{"from": "customer"})
    assert "image" not in relayed


@pytest.fixture
async def wecom() -> AsyncIterator[FakeWeCom]:
    server = await FakeWeCom().start()
    yield server
    await server.close()


async def test_wecom_kf_pictures_reach_the_desk_and_agent_images_go_back(start_bot, wecom, http, desks, clock):
    bot = await start_bot(**wecom_sections(wecom), **handoff_sections(agent("alice", ["presales"])))
    platform = KfPlatform(http, bot.url + "/wecom-kf/callback", clock, wecom)
    user = new_user()
    alice = desks(bot.url)
    await alice.connect("alice")
    wecom.buyer_text(KF, user, "转人工", platform.now())
    await platform.notify()
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    wecom.pictures.media["pic1"] = png(9, 9)
    wecom.buyer_image(KF, user, platform.now(), media_id="pic1")
    wecom.buyer_image(KF, user, platform.now(), media_id="gone")      # not served: no image, still relayed
    await platform.notify()
    shown = await alice.expect("message", conversation=cid, **{"from": "customer"})
    async with http.get(bot.url + "/files/" + shown["image"]) as resp:
        assert await resp.read() == png(9, 9)
    assert "image" not in await alice.expect("message", conversation=cid, **{"from": "customer"})

    async with alice.http.post(bot.url + "/desk/api/upload", data=png(4, 4)) as resp:
        image = (await resp.json())["file"]
    await alice.send({"type": "reply", "conversation": cid, "text": "", "image": image})
    for _ in range(200):
        if any(s.body["msgtype"] == "image" for s in wecom.sent):
            break
        await asyncio.sleep(0.05)
    sent = [s.body for s in wecom.sent if s.body["msgtype"] == "image"][0]
    assert sent["touser"] == user and sent["open_kfid"] == KF and wecom.pictures.uploads[sent["image"]["media_id"]] == png(4, 4)
