"""A small test client for the agent desk: login over HTTP, then the desk WebSocket."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bot.auth import hash_password

PASSWORD = "correct horse battery"
PASSWORD_HASH = hash_password(PASSWORD)  # hashed once: argon2 is slow on purpose

GROUPS = [
    {"name": "presales", "display_name": "售前"},
    {"name": "aftersales", "display_name": "售后"},
    {"name": "reviews", "display_name": "评价专员"},
]


def agent(username: str, groups: list[str], capacity: int = 3) -> dict[str, Any]:
    return {"username": username, "display_name": username.title(), "password_hash": PASSWORD_HASH,
            "groups": groups, "capacity": capacity}


def handoff_sections(*agents: dict[str, Any], **handoff: Any) -> dict[str, Any]:
    """Config sections for start_bot(): three groups, the given agents, routes by dispute class."""
    return {
        "groups": GROUPS,
        "agents": list(agents),
        "handoff": {"default_group": "presales",
                    "routes": {"product": "aftersales", "logistics": "aftersales", "service": "aftersales"},
                    **handoff},
    }


class DeskClient:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.hello: dict[str, Any] = {}
        self.seen: list[dict[str, Any]] = []

    async def login(self, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        async with self.http.post(self.base_url + "/desk/api/login", json={"username": username, "password": password}) as resp:
            await resp.read()
            return resp

    async def connect(self, username: str | None = None) -> dict[str, Any]:
        if username:
            assert (await self.login(username)).status == 200
        self.ws = await self.http.ws_connect(self.base_url.replace("http", "ws") + "/desk/ws", headers={"Origin": self.base_url})
        self.hello = await self.receive()
        assert self.hello["type"] in ("hello", "error"), self.hello
        return self.hello

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(frame, ensure_ascii=False))

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.ws is not None
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return {"type": "closed", "code": self.ws.close_code}
        frame = json.loads(msg.data)
        self.seen.append(frame)
        return frame

    async def expect(self, type_: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """The next frame of this type (and matching fields), skipping others (queue updates ...)."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == "closed":
                raise AssertionError(f"desk socket closed while waiting for {type_}")
            if frame["type"] == type_ and all(_get(frame, k) == v for k, v in match.items()):
                return frame

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.close()


def _get(frame: dict[str, Any], key: str) -> Any:
    value: Any = frame
    for part in key.split("__"):
        value = value.get(part) if isinstance(value, dict) else None
    return value
