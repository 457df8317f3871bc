"""Three bot processes on one Redis under load; one is killed with SIGKILL in the middle.

Every buyer message still gets exactly one reply (the widget resends what was not acked to another
process; a message the dead process had claimed is taken over when its 5 s lease runs out), and the
dead process's desk stops receiving chats once its presence lease has run out."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from bot.handoff import PRESENCE_TTL
from tests.conftest import ROOT
from tests.desk_client import GROUPS, PASSWORD_HASH, DeskClient
from tests.widget_client import WidgetClient

PROCESSES, VISITORS = 3, 24
# questions the bot answers itself (a handoff would leave later messages to the human)
QUESTIONS = ["在吗", "什么时候发货", "可以退货吗", "請問有發票嗎", "包邮吗", "这个偏大还是偏小"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, port: int, redis_url: str, prefix: str) -> None:
    q = json.dumps  # a JSON string is a TOML basic string
    agents = "".join(
        f'[[agents]]\nusername = {q(u)}\ndisplay_name = {q(u.title())}\npassword_hash = {q(PASSWORD_HASH)}\n'
        f'groups = ["presales"]\ncapacity = 50\n\n' for u in ("alice", "bob"))
    groups = "".join(f'[[groups]]\nname = {q(g["name"])}\ndisplay_name = {q(g["display_name"])}\n\n' for g in GROUPS)
    path.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n\n[redis]\nurl = {q(redis_url)}\nprefix = {q(prefix)}\n\n'
        f'[shop]\nbusiness_hours = "00:00-24:00"\n\n'
        f'[faq]\nfiles = [{q(str(ROOT / "phrasebook/faq/demo-shop.toml"))}]\n\n'
        f'[handoff]\ndefault_group = "presales"\n\n{groups}{agents}', encoding="utf-8")


async def wait_healthy(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert proc.poll() is None, f"bot process exited with {proc.returncode}"
        try:
            async with http.get(url + "/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy")


class Visitor:
    """Behaves like the widget: resends on busy, and on a lost socket reconnects (to the next process,
    as a load balancer would) and resends every unacked message with its original id."""

    def __init__(self, http: aiohttp.ClientSession, urls: list[str], n: int):
        self.http, self.urls, self.n = http, urls, n
        self.at = n % len(urls)
        self.client = WidgetClient(http, urls[self.at])
        self.sent: list[str] = []
        self.reconnects = 0

    async def reconnect(self) -> None:
        self.reconnects += 1
        await self.client.close()
        while True:
            self.at = (self.at + 1) % len(self.urls)
            self.client = WidgetClient(self.http, self.urls[self.at])
            self.client.visitor, self.client.token = self.visitor, self.token
            try:
                ready = await self.client.connect(self.visitor, self.token, replies_in_ack=True)
                if ready["type"] == "ready":
                    return
            except (aiohttp.ClientError, ConnectionError, OSError):
                pass
            await asyncio.sleep(0.1)

    async def run(self, started: asyncio.Event, stop: asyncio.Event) -> None:
        """Chat until `stop` (set a while after the kill), so messages are in flight when it happens."""
        ready = await self.client.connect(replies_in_ack=True)
        self.visitor, self.token = ready["visitor"], ready["token"]
        await started.wait()
        i = 0
        while not stop.is_set():
            i += 1
            client_id = uuid.uuid4().hex
            self.sent.append(client_id)
            while True:
                try:
                    _, answer = await self.client.ask(QUESTIONS[(self.n + i) % len(QUESTIONS)], id=client_id)
                except (aiohttp.ClientError, ConnectionError, RuntimeError, AssertionError):
                    answer = {"type": "closed"}
                if answer["type"] == "ack":
                    break
                if answer["type"] == "closed":
                    await self.reconnect()
                    continue
                assert answer["type"] == "error" and answer["code"] in ("busy", "unavailable"), answer
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.25)  # a brisk typist, inside the widget's rate limit (burst 8, 1/s)


async def test_kill_9_of_one_of_three_processes_under_load(tmp_path: Path, redis_url: str, prefix: str):
    ports = [free_port() for _ in range(PROCESSES)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    procs: list[subprocess.Popen[bytes]] = []
    desks: list[DeskClient] = []
    probe = aioredis.from_url(redis_url, decode_responses=True)
    try:
        for i, port in enumerate(ports):
            config = tmp_path / f"bot{i}.toml"
            write_config(config, port, redis_url, prefix)
            log = open(tmp_path / f"bot{i}.log", "wb")
            procs.append(subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(config)],
                                          cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            for url, proc in zip(urls, procs):
                await wait_healthy(http, url, proc)
            alice, bob = DeskClient(urls[1]), DeskClient(urls[0])  # alice's desk is on the doomed process
            desks += [alice, bob]
            await alice.connect("alice")
            await bob.connect("bob")
            secs, _ = await probe.time()
            [(_, lease_end)] = await probe.zrange(f"{prefix}presence:alice", -1, -1, withscores=True)
            assert lease_end <= secs + PRESENCE_TTL + 1  # a short lease, in Redis server time

            started, stop = asyncio.Event(), asyncio.Event()
            visitors = [Visitor(http, urls, n) for n in range(VISITORS)]
            runs = asyncio.gather(*(v.run(started, stop) for v in visitors))
            await asyncio.sleep(0.5)
            started.set()
            await asyncio.sleep(0.5)
            procs[1].kill()  # SIGKILL: no cleanup, claims and the lock leases stay behind
            procs[1].wait()
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.wait_for(runs, timeout=90)
            assert sum(v.reconnects for v in visitors) >= VISITORS // PROCESSES  # the dead one's buyers moved

            for v in visitors:  # every message stored once and answered exactly once
                history = (await WidgetClient(http, urls[0]).connect(v.visitor, v.token))["history"]
                assert [m["id"] for m in history if m["from"] == "visitor"] == v.sent
                replies = [m["id"] for m in history if m["from"] != "visitor"]
                assert len(replies) == len(set(replies))
                assert {r.split("~")[0] for r in replies} >= set(v.sent)

            # The dead desk's presence runs out (no heartbeat renews it); then chats go to bob only.
            for _ in range(200):
                if not await probe.zcount(f"{prefix}presence:alice", (await probe.time())[0], "+inf"):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("alice's presence never ran out")
            for n in range(4):
                buyer = WidgetClient(http, urls[n % 2 * 2])
                await buyer.connect(replies_in_ack=True)
                await buyer.ask("转人工")
                owner = await probe.hget(f"{prefix}conv:{{web:{buyer.visitor}}}:handoff", "agent")
                assert owner == "bob"
                await buyer.close()
    finally:
        for desk in desks:
            await desk.close()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        await probe.aclose()
