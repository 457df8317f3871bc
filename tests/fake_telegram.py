"""A local fake of the Telegram Bot API (loopback only) that records what it is sent and can be told
to answer 429 with retry_after, to fail sendMessage with a given HTTP status, to be down (502 for
every method) or to reject the token (401). Buyers' photos are served from `files` (getFile and the
file download URL); sendPhoto uploads are recorded in `photos`."""

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
        self.files: dict[str, bytes] = {}            # file_id -> bytes, for getFile and downloads
        self.photos: list[dict[str, Any]] = []       # sendPhoto calls: chat_id, caption, data
        self._message_id = 0
        self.arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.method)
        app.router.add_get("/file/bot{token}/{path:.+}", self.download)
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
        if name == "getFile":
            file_id = str(params.get("file_id"))
            if file_id not in self.files:
                return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}, status=400)
            return _ok({"file_id": file_id, "file_unique_id": "u" + file_id, "file_size": len(self.files[file_id]),
                        "file_path": f"photos/{file_id}.jpg"})
        if name == "sendPhoto":
            photo = params.get("photo")
            data = photo.file.read() if hasattr(photo, "file") else b""
            self._message_id += 1
            async with self.arrived:
                self.photos.append({"chat_id": int(params["chat_id"]), "caption": params.get("caption"), "data": data})
                self.arrived.notify_all()
            return _ok({"message_id": self._message_id, "date": int(time.time()),
                        "chat": {"id": int(params["chat_id"]), "type": "private"}, "photo": []})
        if name == "getUpdates":
            updates, self.updates = self.updates, []
            if not updates:
                await asyncio.sleep(0.2)
            return _ok(updates)
        return _ok(True)  # answerCallbackQuery, setWebhook, deleteWebhook ...

    async def download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].removeprefix("photos/").removesuffix(".jpg")
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def wait_photos(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.photos) >= count), timeout)
        return self.photos

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
           callback: str | None = None, photo: bool | str = False, language: str = "zh-hans",
           caption: str | None = None) -> dict[str, Any]:
    """An update as Telegram sends it."""
    user = {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": language}
    chat = {"id": chat_id, "type": "private", "first_name": first_name}
    if callback is not None:
        return {"update_id": update_id, "callback_query": {
            "id": f"cb{update_id}", "from": user, "chat_instance": "ci", "data": callback,
            "message": {"message_id": 1, "date": int(time.time()), "chat": chat, "text": "…"}}}
    message: dict[str, Any] = {"message_id": update_id, "date": int(time.time()), "chat": chat, "from": user}
    if photo:
        file_id = photo if isinstance(photo, str) else "f"
        message["photo"] = [{"file_id": file_id + "-small", "file_unique_id": "s", "width": 1, "height": 1, "file_size": 10},
                            {"file_id": file_id, "file_unique_id": "u", "width": 2, "height": 2}]
        if caption:
            message["caption"] = caption
    else:
        message["text"] = text
    return {"update_id": update_id, "message": message}
