"""Desk login throttling: slow guessing down without letting a stranger lock the agent out.

- Per client address: at most CLIENT_LIMIT failed logins per CLIENT_WINDOW. The attempt is counted
  before the password is checked (so parallel guesses count too) and given back when it succeeds;
  beyond the limit that address alone gets 429 with Retry-After. The address is the peer's, or the
  X-Forwarded-For hop a trusted proxy (server.trusted_proxies) reports.
- Per account: after ACCOUNT_FREE failures within ACCOUNT_WINDOW, an attempt from an address that has
  never logged in as this agent waits SLOWDOWN_BASE, doubling per further failure up to SLOWDOWN_MAX,
  before its password is checked. The right password still works; addresses the agent logged in
  from before never wait. Nothing a stranger does can make the rightful agent's login fail.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

from aiohttp import web

from bot.store import Store

CLIENT_LIMIT = 10
CLIENT_WINDOW = 600
ACCOUNT_FREE = 5
ACCOUNT_WINDOW = 900
SLOWDOWN_BASE = 1.0
SLOWDOWN_MAX = 8.0
KNOWN_FOR = 30 * 86400          # an address the agent logged in from is remembered this long


def client_address(request: web.Request, trusted_proxies: Sequence[str]) -> str:
    """The peer's address; when the peer is a trusted proxy, the right-most X-Forwarded-For hop that
    is not itself a trusted proxy (hops further left are whatever the client wrote)."""
    peer = request.remote or "unknown"
    if not trusted_proxies:
        return peer
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    if not trusted(peer):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # garbage in the chain: do not believe anything further left
        if not trusted(hop):
            return hop
    return peer


def slowdown(failures: int) -> float:
    """Seconds an unknown address waits before its password is checked, given the account's failures."""
    if failures < ACCOUNT_FREE:
        return 0.0
    return min(SLOWDOWN_MAX, SLOWDOWN_BASE * 2 ** (failures - ACCOUNT_FREE))


class LoginGuard:
    def __init__(self, store: Store, trusted_proxies: Sequence[str]):
        self.store = store
        self.trusted_proxies = list(trusted_proxies)

    def client(self, request: web.Request) -> str:
        return client_address(request, self.trusted_proxies)

    async def admit(self, client: str, username: str) -> int:
        """Before checking a password: 0 to go on (after any slowdown), else the Retry-After seconds."""
        retry = await self.store.reserve_login_attempt(client, CLIENT_LIMIT, CLIENT_WINDOW)
        if retry:
            return retry
        if not await self.store.known_login_client(username, client):
            wait = slowdown(await self.store.login_failures(username))
            if wait:
                await asyncio.sleep(wait)
        return 0

    async def failed(self, username: str) -> None:
        await self.store.count_login_failure(username, ACCOUNT_WINDOW)

    async def succeeded(self, client: str, username: str) -> None:
        await self.store.release_login_attempt(client)
        await self.store.remember_login_client(username, client, KNOWN_FOR)
