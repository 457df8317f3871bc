"""A local fake of the WeCom customer-service API: /cgi-bin/gettoken, kf/sync_msg, kf/send_msg and
kf/send_msg_on_event.

It behaves like the platform where the adapter depends on it: a new access_token invalidates the older
ones (40014), sync_msg serves the queued messages of one open_kfid from a cursor, page by page with
has_more, and refuses a Token other than the one the last callback carried (95007); a welcome_code works
once. It can be told to answer error codes, and records every request (and how many sync_msg calls ran
at the same time) for the tests.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fake_media import FakeMedia

ERRMSG = {40014: "invalid access_token", 42001: "access_token expired", 95001: "send msg count limit",
          95002: "send msg time limit", 95007: "invalid msg token", 95013: "session already closed",
          95018: "session status not allowed", 60020: "not allow to access from your ip", -1: "system busy"}


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
class FakeWeCom:
    corp_id: str = "ww0123456789abcdef"
    secret: str = "kf-secret"
    expires_in: int = 7200
    page_size: int = 1000                        # at most this many messages per sync_msg page
    sync_delay: float = 0.0                      # seconds before every sync_msg answer
    sync_token: str = ""                         # the Token of the last callback; "" = not checked
    tokens: list[str] = field(default_factory=list)        # issued access_tokens; only the last is valid
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per open_kfid, in order
    syncs: list[dict[str, Any]] = field(default_factory=list)   # every sync_msg body
    sent: list[Sent] = field(default_factory=list)               # accepted send_msg
    attempts: list[Sent] = field(default_factory=list)           # every send_msg request
    welcomes: list[Sent] = field(default_factory=list)           # accepted send_msg_on_event
    max_concurrent_syncs: int = 0
    pictures: FakeMedia | None = None                          # media/get and media/upload
    _codes: set[str] = field(default_factory=set)                # unused welcome codes
    _errors: list[int] = field(default_factory=list)
    _active_syncs: int = 0
    _server: TestServer | None = None

    # ---- control ---------------------------------------------------------------------------------
    def fail(self, errcode: int, times: int = 1) -> None:
        """The next `times` send_msg calls answer this errcode."""
        self._errors.extend([errcode] * times)

    def buyer_text(self, open_kfid: str, user: str, text: str, send_time: int, msgid: str | None = None) -> str:
        return self._queue(open_kfid, {"origin": 3, "external_userid": user, "send_time": send_time,
                                       "msgtype": "text", "text": {"content": text}}, msgid)

    def buyer_image(self, open_kfid: str, user: str, send_time: int, media_id: str | None = None) -> str:
        """A picture; served by media/get when its media_id is put into `media`."""
        return self._queue(open_kfid, {"origin": 3, "external_userid": user, "send_time": send_time,
                                       "msgtype": "image", "image": {"media_id": media_id or "m-" + secrets.token_hex(4)}}, None)

    def servicer_text(self, open_kfid: str, user: str, text: str, send_time: int) -> str:
        return self._queue(open_kfid, {"origin": 5, "external_userid": user, "send_time": send_time,
                                       "servicer_userid": "zhangsan", "msgtype": "text", "text": {"content": text}}, None)

    def enter_session(self, open_kfid: str, user: str, send_time: int) -> str:
        """Queues an enter_session event; returns its welcome_code."""
        code = "wc-" + secrets.token_hex(8)
        self._codes.add(code)
        self._queue(open_kfid, {"origin": 4, "send_time": send_time, "msgtype": "event",
                                "event": {"event_type": "enter_session", "open_kfid": open_kfid,
                                          "external_userid": user, "scene": "123", "welcome_code": code}}, None)
        return code

    def _queue(self, open_kfid: str, msg: dict[str, Any], msgid: str | None) -> str:
        msgid = msgid or "from_msgid_" + str(secrets.randbelow(10**18))
        self.messages.setdefault(open_kfid, []).append({"msgid": msgid, "open_kfid": open_kfid, **msg})
        return msgid

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> FakeWeCom:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/kf/sync_msg", self._sync)
        app.router.add_post("/cgi-bin/kf/send_msg", self._send)
        app.router.add_post("/cgi-bin/kf/send_msg_on_event", self._send_on_event)
        self.pictures = FakeMedia(self._token_ok, 40014)
        self.pictures.mount(app)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server:
            await self._server.close()
            self._server = None

    # ---- the API ---------------------------------------------------------------------------------
    async def _gettoken(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("corpid") != self.corp_id:
            return _error(40013)
        if q.get("corpsecret") != self.secret:
            return _error(40001)
        token = f"kf-token-{len(self.tokens) + 1}"
        self.tokens.append(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in})

    async def _body(self, request: web.Request) -> tuple[str, dict[str, Any] | None]:
        try:
            body = json.loads(await request.text())
        except ValueError:
            body = None
        return request.query.get("access_token", ""), body if isinstance(body, dict) else None

    def _token_ok(self, token: str) -> bool:
        return bool(self.tokens) and token == self.tokens[-1]

    async def _sync(self, request: web.Request) -> web.Response:
        token, body = await self._body(request)
        if body is None:
            return _error(47001)
        self.syncs.append(body)
        self._active_syncs += 1
        self.max_concurrent_syncs = max(self.max_concurrent_syncs, self._active_syncs)
        try:
            await asyncio.sleep(self.sync_delay)
        finally:
            self._active_syncs -= 1
        if not self._token_ok(token):
            return _error(40014)
        if self.sync_token and body.get("token") != self.sync_token:
            return _error(95007)
        queued = self.messages.get(str(body.get("open_kfid")), [])
        cursor = str(body.get("cursor") or "")
        start = int(cursor.removeprefix("c")) if cursor.startswith("c") else 0
        end = min(len(queued), start + min(int(body.get("limit") or 1000), self.page_size))
        return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": f"c{end}",
                                  "has_more": int(end < len(queued)), "msg_list": queued[start:end]})

    async def _send(self, request: web.Request) -> web.Response:
        token, body = await self._body(request)
        if body is None:
            return _error(47001)
        attempt = Sent(token, body)
        self.attempts.append(attempt)
        if not self._token_ok(token):
            return _error(40014)
        if self._errors:
            return _error(self._errors.pop(0))
        if body.get("msgtype") == "image" and body.get("open_kfid") and body.get("touser"):
            if body.get("image", {}).get("media_id") not in (self.pictures.uploads if self.pictures else {}):
                return _error(40007)
            self.sent.append(attempt)
            return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": "m" + secrets.token_hex(8)})
        if body.get("msgtype") != "text" or not body.get("open_kfid") or not body.get("touser") \
                or not isinstance(body.get("text", {}).get("content"), str):
            return _error(40008)
        if len(body["text"]["content"].encode()) > 2048:
            return _error(45002)
        self.sent.append(attempt)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": "m" + secrets.token_hex(8)})

    async def _send_on_event(self, request: web.Request) -> web.Response:
        token, body = await self._body(request)
        if body is None:
            return _error(47001)
        if not self._token_ok(token):
            return _error(40014)
        if body.get("code") not in self._codes:
            return _error(95016)
        self._codes.discard(body["code"])
        self.welcomes.append(Sent(token, body))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": "m" + secrets.token_hex(8)})


def _error(code: int) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": ERRMSG.get(code, "error")})
