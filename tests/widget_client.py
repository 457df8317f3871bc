"""A small test client for the widget WebSocket protocol (docs/widget.md)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp


class WidgetClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, origin: str | None = None):
        self.http = http
        self.url = base_url.replace("http://", "ws://") + "/widget/ws"
        self.origin = origin if origin is not None else base_url
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.visitor: str | None = None
        self.token: str | None = None

    async def connect(self, visitor: str | None = None, token: str | None = None, **hello: Any) -> dict[str, Any]:
        self.ws = await self.http.ws_connect(self.url, headers={"Origin": self.origin})
        await self.send({"type": "hello", "visitor": visitor, "token": token, **hello})
        ready = await self.receive()
        if ready["type"] == "ready":
            self.visitor, self.token = ready["visitor"], ready["token"]
        return ready

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(frame, ensure_ascii=False))

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.ws is not None
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return {"type": "closed", "code": self.ws.close_code, "ws_type": msg.type}
        return json.loads(msg.data)

    async def ask(self, text: str, id: str | None = None, **extra: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Send a message (extra fields such as `page` go into the frame); return the frames of its
        turn and the final ack (or error)."""
        client_id = id or uuid.uuid4().hex
        await self.send({"type": "message", "id": client_id, "text": text, **extra})
        frames: list[dict[str, Any]] = []
        while True:
            frame = await self.receive()
            if frame["type"] in ("ack", "error", "closed") and frame.get("id", client_id) == client_id:
                return frames, frame
            frames.append(frame)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
