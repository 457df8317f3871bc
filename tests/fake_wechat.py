"""A local fake of the WeChat Official Account API: /cgi-bin/token, /cgi-bin/message/custom/send, and
/cgi-bin/media/get and /cgi-bin/media/upload for pictures (buyers' pictures are served from `pictures.media`,
uploads are recorded in `pictures.uploads`).

It behaves like the platform where the adapter depends on it: a new access_token invalidates the older
ones (40001), a wrong appid/secret is refused, and it can be told to answer error codes (40001, 45015,
45047, ...), HTTP errors, or to be slow. Everything it receives is recorded for the tests.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fake_media import FakeMedia

ERRMSG = {40001: "invalid credential, access_token is invalid or not latest", 42001: "access_token expired",
          45015: "response out of time limit or subscription is canceled", 45047: "out of response count limit",
          40164: "invalid ip, not in whitelist", -1: "system error"}


@dataclass
class Sent:
    token: str
    body: dict[str, Any]

    @property
    def touser(self) -> str:
        return str(self.body.get("touser"))

    @property
    def content(self) -> str:
        return str(self.body.get("text", {}).get("content"))


@dataclass
class FakeWeChat:
    app_id: str = "wx0123456789abcdef"
    secret: str = "app-secret"
    expires_in: int = 7200
    delay: float = 0.0                          # seconds before every answer
    tokens: list[str] = field(default_factory=list)       # issued, oldest first; only the last is valid
    sent: list[Sent] = field(default_factory=list)        # accepted customer-service messages
    attempts: list[Sent] = field(default_factory=list)    # every send request, accepted or not
    _errors: list[int] = field(default_factory=list)      # errcodes for the next sends
    _http_errors: list[int] = field(default_factory=list)  # HTTP statuses for the next sends
    pictures: FakeMedia | None = None                          # media/get and media/upload
    _server: TestServer | None = None

    # ---- control ---------------------------------------------------------------------------------
    def fail(self, errcode: int, times: int = 1) -> None:
        """The next `times` sends answer this errcode."""
        self._errors.extend([errcode] * times)

    def fail_http(self, status: int, times: int = 1) -> None:
        self._http_errors.extend([status] * times)

    def revoke(self) -> None:
        """Somebody else fetched a token: ours is no longer the latest (40001 on the next send)."""
        self.tokens.append(f"revoked-by-someone-else-{len(self.tokens)}")

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> FakeWeChat:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._send)
        self.pictures = FakeMedia(lambda token: bool(self.tokens) and token == self.tokens[-1], 40001)
        self.pictures.mount(app)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server:
            await self._server.close()
            self._server = None

    # ---- the API ---------------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        q = request.query
        if q.get("grant_type") != "client_credential":
            return _error(40002)
        if q.get("appid") != self.app_id:
            return _error(40013)
        if q.get("secret") != self.secret:
            return _error(40125)
        token = f"token-{len(self.tokens) + 1}"
        self.tokens.append(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    async def _send(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        token = request.query.get("access_token", "")
        try:
            body = json.loads(await request.text())
        except ValueError:
            return _error(47001)
        attempt = Sent(token, body)
        self.attempts.append(attempt)
        if self._http_errors:
            return web.Response(status=self._http_errors.pop(0), text="busy")
        if not self.tokens or token != self.tokens[-1]:
            return _error(40001)
        if self._errors:
            return _error(self._errors.pop(0))
        if body.get("msgtype") == "image":
            if body.get("image", {}).get("media_id") not in (self.pictures.uploads if self.pictures else {}):
                return _error(40007)  # invalid media_id
        elif body.get("msgtype") != "text" or not isinstance(body.get("text", {}).get("content"), str):
            return _error(40008)
        self.sent.append(attempt)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


def _error(code: int) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": ERRMSG.get(code, "error")})
