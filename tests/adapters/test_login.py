"""Desk login throttling (adapters/login.py): per client address, a slowdown per account that never
locks the rightful agent out, X-Forwarded-For believed only from trusted proxies, argon2 off the loop."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from adapters import login
from bot.config import ConfigError
from tests.conftest import make_config
from tests.desk_client import PASSWORD, agent, handoff_sections
from tests.widget_client import WidgetClient


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the per-account slowdown (seconds in production) short in tests."""
    monkeypatch.setattr(login, "SLOWDOWN_BASE", 0.01)
    monkeypatch.setattr(login, "SLOWDOWN_MAX", 0.02)


def sections(**server: Any) -> dict[str, Any]:
    return {**handoff_sections(agent("alice", ["presales"])), "server": {"host": "127.0.0.1", "port": 0, **server}}


async def attempt(http: aiohttp.ClientSession, bot: Any, username: str, password: str, via: str | None = None) -> int:
    headers = {"X-Forwarded-For": via} if via else {}
    async with http.post(bot.url + "/desk/api/login", json={"username": username, "password": password}, headers=headers) as resp:
        await resp.read()
        if resp.status == 429:
            assert int(resp.headers["Retry-After"]) > 0
        return resp.status


async def test_a_guessing_client_is_throttled_and_the_agent_elsewhere_is_not(start_bot, http, quick):
    bot = await start_bot(**sections(trusted_proxies=["127.0.0.1"]))
    stranger, office = "203.0.113.9", "198.51.100.7"
    statuses = [await attempt(http, bot, "alice", f"guess {i}", via=stranger) for i in range(login.CLIENT_LIMIT)]
    assert statuses == [401] * login.CLIENT_LIMIT
    assert await attempt(http, bot, "alice", "guess again", via=stranger) == 429
    assert await attempt(http, bot, "alice", PASSWORD, via=stranger) == 429     # that client is throttled ...
    assert await attempt(http, bot, "alice", PASSWORD, via=office) == 200       # ... the agent is not locked out
    assert await attempt(http, bot, "alice", PASSWORD, via=f"{stranger}, {office}") == 200  # right-most hop counts


async def test_a_successful_login_does_not_count_against_its_address(start_bot, http, quick):
    bot = await start_bot(**sections())
    for _ in range(login.CLIENT_LIMIT * 2):
        assert await attempt(http, bot, "alice", PASSWORD) == 200
    assert await attempt(http, bot, "alice", "wrong") == 401


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(start_bot, http, quick):
    bot = await start_bot(**sections(trusted_proxies=["10.0.0.0/8"]))  # loopback is not trusted here
    for i in range(login.CLIENT_LIMIT):
        assert await attempt(http, bot, f"nobody{i}", "x", via=f"192.0.2.{i}") == 401
    assert await attempt(http, bot, "alice", PASSWORD, via="192.0.2.200") == 429  # all were one client: the peer


async def test_many_strangers_guessing_one_account_never_lock_the_agent_out(start_bot, http, quick):
    bot = await start_bot(**sections(trusted_proxies=["127.0.0.1"]))
    assert await attempt(http, bot, "alice", PASSWORD, via="198.51.100.7") == 200  # her usual address
    results = await asyncio.gather(*(attempt(http, bot, "alice", "guess", via=f"203.0.113.{i}") for i in range(30)))
    assert results == [401] * 30
    assert await bot.store.login_failures("alice") == 30
    assert await attempt(http, bot, "alice", PASSWORD, via="198.51.100.7") == 200
    assert await attempt(http, bot, "alice", PASSWORD, via="192.0.2.1") == 200  # a new address: slowed down, not refused


def test_slowdown_grows_per_failure_and_is_capped():
    assert [login.slowdown(n) for n in range(login.ACCOUNT_FREE)] == [0.0] * login.ACCOUNT_FREE
    waits = [login.slowdown(login.ACCOUNT_FREE + n) for n in range(6)]
    assert waits == sorted(waits) and waits[0] == login.SLOWDOWN_BASE and waits[-1] == login.SLOWDOWN_MAX


async def test_password_checks_do_not_block_buyers(start_bot, http, quick):
    """Wrong logins keep argon2 busy in worker threads; a widget round trip started at the same time
    is answered before they are all done."""
    bot = await start_bot(**sections())
    widget = WidgetClient(http, bot.url)
    await widget.connect()
    order: list[str] = []

    async def guess(i: int) -> None:
        await attempt(http, bot, f"nobody{i}", "x")
        order.append("login")

    async def buyer() -> None:
        await asyncio.sleep(0.01)
        _, ack = await widget.ask("什么时候发货")
        assert ack["type"] == "ack"
        order.append("widget")

    await asyncio.gather(*(guess(i) for i in range(login.CLIENT_LIMIT)), buyer())
    await widget.close()
    assert order.index("widget") < len(order) - 1 and order.count("login") == login.CLIENT_LIMIT


def test_trusted_proxies_must_be_addresses_or_networks():
    with pytest.raises(ConfigError) as info:
        make_config("redis://127.0.0.1:6379/0", "p:", server={"trusted_proxies": ["10.0.0.0/8", "proxy.local"]})
    assert any(p.startswith("server.trusted_proxies") and "proxy.local" in p for p in info.value.problems)
