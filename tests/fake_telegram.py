"""A local fake of the Telegram Bot API (loopback only) that records what it is sent and can be told
to answer 429 with retry_after, to fail sendMessage with a given HTTP status, to be down (502 for
every method) or to reject the token (401)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


class FakeTelegram:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []        # sendMessage calls, in order
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[int] = []               # retry_after seconds for the next sendMessage calls
        self.updates: list[dict[str, Any]] = []      # served by getUpdates
        self.fail_status: list[int] = []             # HTTP status (500, 429 ...) for the next sendMessage calls
        self.down = False                            # every method answers 502
        self.reject_token = False                    # every method answers 401 Unauthorized
        self._message_id = 0
        self.arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.method)
        self.server = TestServer(app, host="127.0.0.1")

    async def start(self) -> str:
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        await self.server.close()

    async def method(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = {k: _maybe_json(v) for k, v in (await request.post()).items()}
        self.calls.append((name, params))
        if self.reject_token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        if self.down:
            return web.json_response({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502)
        if name == "sendMessage" and self.fail_status:
            status = self.fail_status.pop(0)
            extra = {"parameters": {"retry_after": 1}} if status == 429 else {}
            return web.json_response({"ok": False, "error_code": status, "description": "failing on purpose", **extra}, status=status)
        if name == "getMe":
            return _ok({"id": 42, "is_bot": True, "first_name": "Xiaoer", "username": "xiaoer_bot"})
        if name == "sendMessage":
            if self.fail_next:
                retry = self.fail_next.pop(0)
                return web.json_response({"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry}",
                                          "parameters": {"retry_after": retry}}, status=429)
            self._message_id += 1
            async with self.arrived:
                self.sent.append(params)
                self.arrived.notify_all()
            return _ok({"message_id": self._message_id, "date": int(time.time()),
                        "chat": {"id": int(params["chat_id"]), "type": "private"}, "text": params.get("text", "")})
        if name == "getUpdates":
            updates, self.updates = self.updates, []
            if not updates:
                await asyncio.sleep(0.2)
            return _ok(updates)
        return _ok(True)  # answerCallbackQuery, setWebhook, deleteWebhook ...

    async def wait_sent(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.sent) >= count), timeout)
        return self.sent


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def update(update_id: int, text: str | None = None, chat_id: int = 1001, first_name: str = "Amy",
           callback: str | None = None, photo: bool = False, language: str = "zh-hans") -> dict[str, Any]:
    """An update as Telegram sends it."""
    user = {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": language}
    chat = {"id": chat_id, "type": "private", "first_name": first_name}
    if callback is not None:
        return {"update_id": update_id, "callback_query": {
            "id": f"cb{update_id}", "from": user, "chat_instance": "ci", "data": callback,
            "message": {"message_id": 1, "date": int(time.time()), "chat": chat, "text": "…"}}}
    message: dict[str, Any] = {"message_id": update_id, "date": int(time.time()), "chat": chat, "from": user}
    if photo:
        message["photo"] = [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]
    else:
        message["text"] = text
    return {"update_id": update_id, "message": message}
