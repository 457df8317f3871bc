"""The web widget channel: `/widget.js`, the demo shop page `/` and the widget WebSocket `/widget/ws`.

The visitor id is random; its token is HMAC-SHA256(secret, visitor id), so any process can check it
without a lookup, and a visitor id without its token is refused. The adapter only translates and
transports: it hands normalised messages to the engine and sends back what the engine returns, plus
what other processes commit for this conversation (another tab, later an agent).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from adapters.common import OpenSockets, encodable, own_origins
from adapters.files import Files
from bot.config import WebChannel
from bot.files import FILE_ID, FileStore
from bot.store import StoreBusy, StoreUnavailable
from bot.types import Customer, Inbound, Kind, Outcome, TranscriptEntry

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
MAX_FRAME_BYTES = 64 * 1024           # a frame larger than this closes the socket (1009)
HELLO_TIMEOUT = 15.0
_VISITOR = re.compile(r"^[0-9a-f]{32}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_LOCALES = {"zh-CN", "zh-TW", "en"}
TYPING_EVERY = 2.0
MAX_PAGE_URL = 512
MAX_PAGE_TITLE = 200

Submit = Callable[[Inbound, str | None], Awaitable[Outcome]]
History = Callable[[str], Awaitable[list[TranscriptEntry]]]
Listen = Callable[[str, Callable[[dict[str, Any]], Awaitable[None]]], Callable[[], None]]
Notice = Callable[[str, str | None], str]  # (phrase id, locale) -> buyer-facing text
# Seconds the widget waits before it resends by itself after "busy" / "unavailable".
RETRY_BUSY = 1.0
RETRY_UNAVAILABLE = 2.0


class RateLimit:
    """A small token bucket per socket: a burst of `burst`, refilled at `rate` per second."""

    def __init__(self, rate: float = 1.0, burst: int = 8):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def refund(self) -> None:
        """A message the service refused (busy, outage) does not count: the client resends it."""
        self.tokens = min(self.burst, self.tokens + 1)


class WebWidget:
    """Mounts its own routes (Rasa-style) and hands messages to one callback."""

    channel = "web"

    def __init__(self, config: WebChannel, secret: str, submit: Submit, history: History, listen: Listen,
                 public_url: str = "", agent_name: Callable[[str], str] = str,
                 typing: Callable[[str], Awaitable[None]] | None = None, notice: Notice | None = None,
                 files: FileStore | None = None):
        self.config = config
        self.files = files
        self._typing = typing  # tells the chat's agent that the buyer is typing
        self.agent_name = agent_name  # buyers see an agent's display name, never the login name
        self._key = secret.encode()
        self._submit = submit
        self._history = history
        self._listen = listen
        self.public_url = public_url
        self.notice = notice or (lambda phrase, locale: phrase)
        self._sockets = OpenSockets()

    def mount(self, app: web.Application) -> None:
        app.on_shutdown.append(self._sockets.close_all)
        app.router.add_get("/", self.shop_page)
        app.router.add_get("/widget.js", self.widget_js)
        app.router.add_get("/widget/ws", self.socket)
        if self.files is not None:
            app.router.add_post("/widget/upload", self.upload)
            app.router.add_route("OPTIONS", "/widget/upload", self.upload_preflight)

    # ---- static -------------------------------------------------------------------------------
    async def shop_page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "shop.html", headers={"Content-Type": "text/html; charset=utf-8"})

    async def widget_js(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            STATIC / "widget.js",
            headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=300"},
        )

    # ---- identity -----------------------------------------------------------------------------
    def token_for(self, visitor: str) -> str:
        return hmac.new(self._key, f"visitor:{visitor}".encode(), hashlib.sha256).hexdigest()

    def _valid(self, visitor: Any, token: Any) -> bool:
        return (
            isinstance(visitor, str) and isinstance(token, str) and bool(_VISITOR.match(visitor))
            and hmac.compare_digest(self.token_for(visitor), token)
        )

    def origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser: CSWSH protection is about browsers
        allowed = self.config.allowed_origins
        if "*" in allowed:
            return True
        if origin.rstrip("/") in {o.rstrip("/") for o in allowed}:
            return True
        return origin.rstrip("/") in own_origins(request, self.public_url)

    # ---- images ---------------------------------------------------------------------------------
    def _cors(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}

    async def upload_preflight(self, request: web.Request) -> web.Response:
        if not self.origin_allowed(request):
            return web.Response(status=403)
        return web.Response(status=204, headers={
            **self._cors(request), "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type, X-Xiaoer-Visitor, X-Xiaoer-Token", "Access-Control-Max-Age": "600",
        })

    async def upload(self, request: web.Request) -> web.Response:
        """A buyer's image: the visitor id and its token in X-Xiaoer-Visitor / X-Xiaoer-Token."""
        assert self.files is not None
        visitor = request.headers.get("X-Xiaoer-Visitor")
        allowed = self.origin_allowed(request) and self._valid(visitor, request.headers.get("X-Xiaoer-Token"))
        headers = self._cors(request) if self.origin_allowed(request) else {}
        return await Files(self.files).receive(request, f"web:{visitor}" if allowed else None, headers)

    # ---- the socket -----------------------------------------------------------------------------
    async def socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_FRAME_BYTES)
        if not self.origin_allowed(request):
            # Accept only to say why and close: a plain 403 reaches a browser as close code 1006 and the
            # widget could not tell a misconfigured shop from a network blip. Nothing is read from it.
            await ws.prepare(request)
            await ws.send_json({"type": "error", "code": "origin_not_allowed",
                                "message": "this page's origin may not open the chat (channels.web.allowed_origins)"})
            await ws.close(code=4403, message=b"origin not allowed")
            return ws
        await ws.prepare(request)
        session = _Socket(self, ws)
        with self._sockets.track(ws):
            try:
                await session.run()
            finally:
                session.detach()
        return ws


class _Socket:
    """One open widget socket: the hello handshake, then messages in order."""

    def __init__(self, widget: WebWidget, ws: web.WebSocketResponse):
        self.widget = widget
        self.ws = ws
        self.id = secrets.token_hex(8)
        self.visitor: str | None = None
        self.customer: Customer | None = None
        self.limit = RateLimit()
        self.page: tuple[str, str] = ("", "")  # (url, title) of the page the widget runs on
        self._typed = 0.0
        self.replies_in_ack = False  # the client asked for one frame per turn (docs/widget.md)
        self._unlisten: Callable[[], None] | None = None
        self._send_lock = asyncio.Lock()
        # Events that arrive between subscribing and "ready" (a turn committed just before this
        # socket opened): held, then sent after "ready" unless the history already holds them.
        self._held: list[dict[str, Any]] | None = None

    async def send(self, frame: dict[str, Any]) -> None:
        if frame.get("agent"):
            frame = {**frame, "agent": self.widget.agent_name(frame["agent"])}
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(frame, ensure_ascii=False))

    async def error(self, code: str, message: str, **extra: Any) -> None:
        await self.send({"type": "error", "code": code, "message": message, **extra})

    async def retry_later(self, code: str, client_id: str | None = None) -> None:
        """Overload or a Redis outage: a notice in the buyer's language; the client resends by itself."""
        phrase, after = ("service.busy", RETRY_BUSY) if code == "busy" else ("service.unavailable", RETRY_UNAVAILABLE)
        locale = self.customer.locale if self.customer else None
        extra = {"id": client_id} if client_id else {}
        if client_id:
            self.limit.refund()
        await self.error(code, self.widget.notice(phrase, locale), retry_after=after, **extra)

    def detach(self) -> None:
        if self._unlisten:
            self._unlisten()
            self._unlisten = None

    async def run(self) -> None:
        try:
            first = await self.ws.receive(timeout=HELLO_TIMEOUT)
        except asyncio.TimeoutError:
            await self.ws.close(code=4408, message=b"hello expected")
            return
        pending = [first]
        while True:
            msg = pending.pop() if pending else await self.ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            if msg.type != WSMsgType.TEXT:
                await self.error("bad_frame", "only JSON text frames are accepted")
                continue
            try:
                frame = json.loads(msg.data)
            except ValueError:
                await self.error("bad_json", "the frame is not valid JSON")
                continue
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                await self.error("bad_frame", "a frame is a JSON object with a string 'type'")
                continue
            kind = frame["type"]
            if kind == "ping":
                await self.send({"type": "pong"})
            elif kind == "hello":
                if not await self.hello(frame):
                    return
            elif kind == "message":
                await self.message(frame)
            elif kind == "typing":
                await self.typing()
            else:
                await self.error("bad_frame", f"unknown frame type {kind[:32]!r}")

    async def hello(self, frame: dict[str, Any]) -> bool:
        visitor, token = frame.get("visitor"), frame.get("token")
        if visitor is None and token is None:
            visitor = secrets.token_hex(16)
        elif not self.widget._valid(visitor, token):
            await self.error("bad_token", "this visitor id and token do not match; start a new conversation")
            await self.ws.close(code=4401, message=b"bad token")
            return False
        assert isinstance(visitor, str)
        if self.visitor and self.visitor != visitor:
            await self.error("bad_frame", "this socket already belongs to another visitor")
            return True
        page = page_of(frame)
        if page is None:
            await self.error("bad_frame", "'page' must be {\"url\": \"http(s)://...\", \"title\": \"...\"}")
            return True
        if any(page):
            self.page = page
        name = frame.get("name")
        name = name if isinstance(name, str) and encodable(name) else None
        locale = frame.get("locale")
        self.visitor = visitor
        self.customer = Customer(
            id=visitor,
            name=name.strip()[:64] or None if isinstance(name, str) else None,
            locale=locale if locale in _LOCALES else None,
        )
        self.replies_in_ack = frame.get("replies_in_ack") is True
        self.detach()
        self._held = []
        self._unlisten = self.widget._listen(f"conv:{self.conversation_id}", self.on_event)
        try:
            history = await self.widget._history(self.conversation_id)
        except Exception as exc:
            self.detach()
            self._held = None
            if not isinstance(exc, StoreUnavailable) and not isinstance(exc, StoreBusy):
                raise
            # Say why in the buyer's language, then close: the widget reconnects with backoff.
            await self.retry_later("busy" if isinstance(exc, StoreBusy) else "unavailable")
            await self.ws.close(code=1013, message=b"try again later")
            return False
        await self.send({
            "type": "ready", "visitor": visitor, "token": self.widget.token_for(visitor),
            "history": [self._public(e.to_json()) for e in history],
        })
        held, self._held = self._held or [], None
        seen = {e.id for e in history}
        for frame in held:
            if frame.get("type") != "message" or frame.get("id") not in seen:
                await self.send(frame)
        return True

    def _public(self, message: dict[str, Any]) -> dict[str, Any]:
        return {**message, "agent": self.widget.agent_name(message["agent"])} if message.get("agent") else message

    @property
    def conversation_id(self) -> str:
        return f"web:{self.visitor}"

    async def message(self, frame: dict[str, Any]) -> None:
        client_id, text = frame.get("id"), frame.get("text")
        if self.visitor is None or self.customer is None:
            await self.error("not_ready", "send hello first")
            return
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            await self.error("bad_frame", "'id' must be 1-64 letters, digits or - _ . :")
            return
        image = frame.get("image")
        if image is not None and not await self._own_image(image):
            await self.error("bad_image", "'image' must be the id of an image this visitor uploaded", id=client_id)
            return
        if not isinstance(text, str) or (not text.strip() and not image):
            await self.error("bad_frame", "'text' must be a non-empty string (or empty with an 'image')", id=client_id)
            return
        if not encodable(text):
            await self.error("bad_frame", "'text' is not valid Unicode", id=client_id)
            return
        if len(text) > self.widget.config.max_message_chars:
            limit = self.widget.config.max_message_chars
            await self.error("too_long", f"a message may have at most {limit} characters", id=client_id, limit=limit)
            return
        page = page_of(frame)
        if page is None:
            await self.error("bad_frame", "'page' must be {\"url\": \"http(s)://...\", \"title\": \"...\"}", id=client_id)
            return
        if not self.limit.allow():
            await self.error("rate_limited", "too many messages at once; please wait a moment", id=client_id)
            return
        if any(page):
            self.page = page
        self._typed = 0.0  # a message ends the bout of typing
        inbound = Inbound(
            channel=self.widget.channel, conversation_id=self.conversation_id, message_id=client_id,
            customer=self.customer, text=text.strip(), ts=time.time(), page_url=self.page[0], page_title=self.page[1],
            kind=Kind.IMAGE if image else Kind.TEXT, image=image or "",
        )
        try:
            outcome = await self.widget._submit(inbound, self.id)
        except StoreBusy:
            await self.retry_later("busy", client_id)
            return
        except StoreUnavailable:
            await self.retry_later("unavailable", client_id)
            return
        except Exception:
            log.exception("turn failed for %s", self.conversation_id)
            await self.error("internal", "sorry, something went wrong; the message will be retried", id=client_id)
            return
        if outcome.in_progress:
            # The first attempt may have died with its process: no ack (that would mark the message
            # stored); the client resends, and once that attempt's lease has run out it is handled.
            await self.retry_later("busy", client_id)
            return
        ack: dict[str, Any] = {"type": "ack", "id": client_id, "duplicate": outcome.duplicate}
        if self.replies_in_ack:
            replies = await self._stored_replies(client_id) if outcome.duplicate else outcome.replies
            ack["messages"] = [self._public(e.to_json()) for e in replies]
            await self.send(ack)  # one frame per turn
            return
        for entry in outcome.replies:
            await self.send(entry.to_json())
        # The ack comes last: it marks the end of this message's turn on this socket.
        await self.send(ack)

    async def _own_image(self, image: Any) -> bool:
        if self.widget.files is None or not isinstance(image, str) or not FILE_ID.match(image):
            return False
        found = await self.widget.files.get(image)
        return found is not None and found.owner == self.conversation_id

    async def typing(self) -> None:
        """The buyer is typing: passed on to the agent's desk, at most every TYPING_EVERY seconds."""
        if self.visitor is None or self.widget._typing is None:
            return
        now = time.monotonic()
        if now - self._typed < TYPING_EVERY:
            return
        self._typed = now
        try:
            await self.widget._typing(self.conversation_id)
        except Exception:  # a hint only: never worth an error to the buyer
            log.warning("typing signal of %s failed", self.conversation_id, exc_info=True)

    async def _stored_replies(self, client_id: str) -> list[TranscriptEntry]:
        """The replies a repeated message got the first time: its answer may have been lost with the
        connection (a resend after an outage), and the widget ignores what it already shows."""
        try:
            history = await self.widget._history(self.conversation_id)
        except Exception:
            return []  # the ack still says it is stored; the next hello brings the history
        return [e for e in history if e.id.startswith(f"{client_id}~")]

    async def on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "typing" and event.get("from") == "agent" and event.get("conversation") == self.conversation_id:
            if self._held is None:
                await self.send({"type": "typing", "from": "agent"})
            return
        if event.get("type") != "messages" or event.get("conversation") != self.conversation_id:
            return
        if event.get("origin") == self.id:
            return  # this socket already got the replies from the engine
        for message in event.get("messages", ()):
            if self._held is not None:
                self._held.append(message)
            else:
                await self.send(message)


def page_of(frame: dict[str, Any]) -> tuple[str, str] | None:
    """The optional `page` of a hello or message frame: ("", "") when absent, None when malformed.

    Only http(s) URLs are kept (a desk link must never be javascript:); both parts are cut to size.
    """
    page = frame.get("page")
    if page is None:
        return ("", "")
    if not isinstance(page, dict):
        return None
    url, title = page.get("url", ""), page.get("title", "")
    if not isinstance(url, str) or not isinstance(title, str) or not encodable(url) or not encodable(title):
        return None
    if not re.match(r"^https?://", url, re.IGNORECASE):
        url = ""
    return (url[:MAX_PAGE_URL], " ".join(title.split())[:MAX_PAGE_TITLE])
