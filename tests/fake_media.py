"""Temporary media as WeChat and WeCom serve it (media/get, media/upload), shared by their fakes."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


class FakeMedia:
    """`media`: media_id -> bytes a buyer sent (served by media/get); `uploads`: what media/upload got."""

    def __init__(self, token_ok: Callable[[str], bool], bad_token: int):
        self.media: dict[str, bytes] = {}
        self.uploads: dict[str, bytes] = {}
        self._token_ok, self._bad_token = token_ok, bad_token

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/cgi-bin/media/get", self.get)
        app.router.add_post("/cgi-bin/media/upload", self.upload)

    async def get(self, request: web.Request) -> web.Response:
        if not self._token_ok(request.query.get("access_token", "")):
            return _error(self._bad_token)
        data = self.media.get(request.query.get("media_id", ""))
        if data is None:
            return _error(40007)  # invalid media_id
        return web.Response(body=data, content_type="image/jpeg")

    async def upload(self, request: web.Request) -> web.Response:
        if not self._token_ok(request.query.get("access_token", "")):
            return _error(self._bad_token)
        if request.query.get("type") != "image":
            return _error(40004)
        media = (await request.post()).get("media")
        if not hasattr(media, "file"):
            return _error(41005)  # media data missing
        media_id = f"media-{len(self.uploads) + 1}"
        self.uploads[media_id] = media.file.read()  # type: ignore[union-attr]
        return web.json_response({"errcode": 0, "errmsg": "ok", "type": "image", "media_id": media_id, "created_at": 0})


def _error(code: int) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": "error"})
