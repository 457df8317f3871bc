"""Live reload: FAQ, phrasebook and agents change without a restart in every process; a bad file is
refused with the reason and the old content stays."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from bot.app import Xiaoer
from bot.config import load_config
from bot.types import Customer, Inbound
from tests.desk_client import PASSWORD, PASSWORD_HASH

FAQ = '[[faq]]\nid = "shipping-time"\nquestions = ["什么时候发货", "多久发货"]\nanswer = "亲，付款后48小时内发货哦😊"\n'
STORE = '[[faq]]\nid = "offline-store"\nquestions = ["有实体店吗", "实体店在哪里"]\nanswer = "亲，我们暂时只在网上销售哦😊"\n'


def write_config(tmp: Path, redis_url: str, prefix: str, agents: list[tuple[str, str]]) -> Path:
    lines = ['[server]\nhost = "127.0.0.1"\nport = 0', f"[redis]\nurl = {json.dumps(redis_url)}\nprefix = {json.dumps(prefix)}",
             '[faq]\nfiles = ["faq.toml"]']
    for name, role in agents:
        lines.append(f'[[agents]]\nusername = "{name}"\npassword_hash = {json.dumps(PASSWORD_HASH)}\nrole = "{role}"')
    path = tmp / "config.toml"
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return path


async def answer(bot: Xiaoer, text: str, n: list[int] = [0]) -> str | None:
    n[0] += 1
    outcome = await bot.engine.submit(Inbound("web", f"web:r{n[0]}", f"m{n[0]}", Customer(f"r{n[0]}"), text=text))
    return outcome.replies[-1].text if outcome.replies else None


async def eventually(check) -> None:
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached")


async def test_reload_in_every_process_and_a_bad_file_keeps_the_old_content(tmp_path, redis_url, prefix, clock):
    (tmp_path / "faq.toml").write_text(FAQ, encoding="utf-8")
    path = write_config(tmp_path, redis_url, prefix, [("sam", "supervisor")])
    bots = [Xiaoer(load_config(path), clock=clock, config_path=str(path)) for _ in range(2)]
    for bot in bots:
        await bot.initialize()
        await bot.start()
    one, two = bots
    try:
        assert await answer(two, "有实体店吗") != "亲，我们暂时只在网上销售哦😊"
        # a new FAQ entry and a new agent, reloaded with the supervisor's button on process one
        (tmp_path / "faq.toml").write_text(FAQ + STORE, encoding="utf-8")
        path = write_config(tmp_path, redis_url, prefix, [("sam", "supervisor"), ("carol", "agent")])
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await http.post(one.url + "/desk/api/login", json={"username": "sam", "password": PASSWORD})
            async with http.post(one.url + "/desk/api/reload") as resp:
                assert resp.status == 200 and (await resp.json())["agents"] == 2
            assert await answer(one, "有实体店吗") == "亲，我们暂时只在网上销售哦😊"

            async def two_has_it() -> bool:
                return await answer(two, "实体店在哪里") == "亲，我们暂时只在网上销售哦😊"
            await eventually(two_has_it)  # process two reloaded on the broadcast
            async with aiohttp.ClientSession() as other:
                async with other.post(two.url + "/desk/api/login", json={"username": "carol", "password": PASSWORD}) as resp:
                    assert resp.status == 200

            # a bad FAQ file (duplicate id, empty answer): refused with the reasons, nothing changes
            (tmp_path / "faq.toml").write_text(FAQ + STORE + STORE.replace("answer = \"亲，我们暂时只在网上销售哦😊\"", 'answer = ""'),
                                               encoding="utf-8")
            async with http.post(one.url + "/desk/api/reload") as resp:
                body = await resp.json()
                assert resp.status == 422 and body["error"] == "invalid"
                assert any("faq[2].answer" in p for p in body["problems"])
            assert await one.reload() != []  # SIGHUP takes the same path
            for bot in bots:
                assert await answer(bot, "有实体店吗") == "亲，我们暂时只在网上销售哦😊"
                assert await answer(bot, "多久发货") == "亲，付款后48小时内发货哦😊"

            # a bad config (an agent without a hash): refused, carol can still log in
            path.write_text(path.read_text("utf-8").replace(f"password_hash = {json.dumps(PASSWORD_HASH)}\nrole = \"agent\"", 'role = "agent"'),
                            encoding="utf-8")
            problems = await one.reload()
            assert problems and problems[0].startswith("agents[1].password_hash")
            assert one.config.agent("carol") is not None
    finally:
        for bot in bots:
            await bot.stop()


async def test_agents_may_not_reload(start_bot):
    from tests.desk_client import agent, handoff_sections

    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(bot.url + "/desk/api/reload") as resp:
            assert resp.status == 401
        await http.post(bot.url + "/desk/api/login", json={"username": "alice", "password": PASSWORD})
        async with http.post(bot.url + "/desk/api/reload") as resp:
            assert resp.status == 403


async def test_sighup_reloads_a_running_process(tmp_path, redis_url, prefix, redis_client):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    (tmp_path / "faq.toml").write_text(FAQ, encoding="utf-8")
    path = write_config(tmp_path, redis_url, prefix, [("sam", "supervisor")])
    env = {**os.environ, "XIAOER_LOG_FORMAT": "json"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(f"{prefix}events")
    try:
        assert "Xiaoer is running" in await asyncio.to_thread(proc.stdout.readline)
        (tmp_path / "faq.toml").write_text(FAQ + STORE, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        async with asyncio.timeout(30):  # the reloaded process tells the others
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message and json.loads(message["data"]).get("type") == "reload":
                    break
    finally:
        await pubsub.aclose()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line["message"].startswith("reloaded: 2 FAQ entries, 1 agents") for line in lines)
