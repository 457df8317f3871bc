"""The agent desk: login, the desk page, and the desk WebSocket.

Agents see only their own chats and their groups' queues. Replies, closes and transfers enter the
engine as events of the conversation (so ownership is checked atomically at commit); a reply the
service standard forbids comes back as a coaching hint unless the agent sends it anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from adapters.common import OpenSockets, encodable, own_origins
from adapters.files import Files
from adapters.login import LoginGuard
from bot.auth import check_password, new_token
from bot.coach import Coach
from bot.config import Config
from bot.handoff import HandoffService
from bot.files import FILE_ID, FileStore
from bot.history import History, day_range
from bot.supervisor import monitor
from bot.types import Customer, Inbound, Kind, Note, Outcome

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "xiaoer_desk"
LOGIN_TTL = 12 * 3600
HEARTBEAT = 1.5  # renews the desk's presence lease (bot.handoff.PRESENCE_TTL)
MAX_REPLY_CHARS = 4000
MAX_NOTE_CHARS = 2000
MAX_QUERY_CHARS = 100
TYPING_EVERY = 2.0          # seconds: at most one typing signal per socket and chat in this time
_CONVERSATION = re.compile(r"^[a-z_]+:[A-Za-z0-9_.:@-]{1,128}$")
_CASE = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")  # a transcript stream id

Submit = Callable[[Inbound, str | None], Awaitable[Outcome]]


class Desk:
    def __init__(self, config: Config, service: HandoffService, coach: Coach, submit: Submit, listen: Callable[..., Callable[[], None]]):
        self.config = config
        self.service = service
        self.coach = coach
        self._submit = submit
        self._listen = listen
        self._sockets = OpenSockets()
        self._guard = LoginGuard(service.store, config.server.trusted_proxies)
        self.history = History(service.store)
        self.files: FileStore | None = None  # set by the app: agents may send images

    def mount(self, app: web.Application) -> None:
        app.on_shutdown.append(self._sockets.close_all)
        app.router.add_get("/desk", self.to_desk)
        app.router.add_get("/desk/", self.page)
        app.router.add_get("/desk/desk.js", self._static("desk.js", "text/javascript"))
        app.router.add_get("/desk/desk.css", self._static("desk.css", "text/css"))
        app.router.add_post("/desk/api/login", self.login)
        app.router.add_post("/desk/api/logout", self.logout)
        app.router.add_get("/desk/api/me", self.me)
        app.router.add_get("/desk/api/search", self.search)
        app.router.add_post("/desk/api/upload", self.upload)
        app.router.add_get("/desk/api/cases", self.cases)
        app.router.add_get("/desk/api/case", self.case)
        app.router.add_get("/desk/ws", self.socket)

    async def to_desk(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/desk/")

    def _static(self, name: str, ctype: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(STATIC / name, headers={"Content-Type": f"{ctype}; charset=utf-8", "Cache-Control": "no-cache"})
        return serve

    async def agent_of(self, request: web.Request) -> str | None:
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 128:
            return None
        username = await self.service.store.login_user(token)
        return username if username and self.config.agent(username) else None

    async def page(self, request: web.Request) -> web.StreamResponse:
        name = "desk.html" if await self.agent_of(request) else "login.html"
        return web.FileResponse(STATIC / name, headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})

    async def login(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _error(400, "bad_json", "the body must be JSON: {\"username\": ..., \"password\": ...}")
        if not isinstance(body, dict) or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
            return _error(400, "bad_request", "username and password are required")
        username, password = body["username"].strip().lower()[:64], body["password"][:1024]
        agent = self.config.agent(username)
        guard = self._guard
        client = guard.client(request)
        retry = await guard.admit(client, username)
        if retry:
            resp = _error(429, "too_many_attempts", "too many failed logins from this address; try again later")
            resp.headers["Retry-After"] = str(retry)
            return resp
        if not await check_password(agent.password_hash if agent else None, password):
            await guard.failed(username)
            return _error(401, "invalid_credentials", "用户名或密码不正确 / wrong username or password")
        await guard.succeeded(client, username)
        token = new_token()
        await self.service.store.create_login(token, username, LOGIN_TTL)
        resp = web.json_response({"ok": True, "agent": {"username": username, "display_name": agent.display_name or username}})  # type: ignore[union-attr]
        # Secure when the browser reached us over https, directly or through a TLS-terminating proxy
        # (the header can only make the cookie stricter, so trusting it is harmless).
        secure = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
        resp.set_cookie(COOKIE, token, max_age=LOGIN_TTL, httponly=True, samesite="Strict", secure=secure, path="/desk")
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        token = request.cookies.get(COOKIE)
        if token:
            await self.service.store.delete_login(token)
        resp = web.json_response({"ok": True})
        resp.del_cookie(COOKIE, path="/desk")
        return resp

    async def me(self, request: web.Request) -> web.Response:
        username = await self.agent_of(request)
        if not username:
            return _error(401, "not_logged_in", "log in first")
        return web.json_response({"agent": {"username": username}})

    async def upload(self, request: web.Request) -> web.Response:
        """An agent's image (session cookie, same origin); sent afterwards as the `image` of a reply."""
        if self.files is None:
            return _error(404, "not_found", "images are not enabled")
        username = await self.agent_of(request) if self.same_origin(request) else None
        return await Files(self.files).receive(request, f"agent:{username}" if username else None)

    # ---- history of closed chats ------------------------------------------------------------------
    async def search(self, request: web.Request) -> web.Response:
        """Closed chats by buyer, text and date: an agent's own; with scope=all (supervisors) everyone's."""
        username = await self.agent_of(request)
        if not username:
            return _error(401, "not_logged_in", "log in first")
        q = request.query
        text, buyer, scope = q.get("q", ""), q.get("buyer", ""), q.get("scope", "mine")
        if len(text) > MAX_QUERY_CHARS or len(buyer) > MAX_QUERY_CHARS or scope not in ("mine", "all"):
            return _error(400, "bad_request", f"q and buyer have at most {MAX_QUERY_CHARS} characters; scope is mine or all")
        if scope == "all" and not self.config.agent(username).is_supervisor:  # type: ignore[union-attr]
            return _error(403, "supervisors_only", "只有主管可以搜索全部会话 / only supervisors search every chat")
        try:
            since, until = day_range(q.get("from") or None, q.get("to") or None, self.config.shop.zone)
        except ValueError:
            return _error(400, "bad_date", "from and to are dates YYYY-MM-DD, from not after to")
        results = await self.history.search(None if scope == "all" else username, text, buyer, since, until)
        return web.json_response({"results": results})

    async def cases(self, request: web.Request) -> web.Response:
        """A buyer's past (closed) conversations, for the agent now serving them (or a supervisor)."""
        username, cid = await self.agent_of(request), request.query.get("conversation", "")
        if not username:
            return _error(401, "not_logged_in", "log in first")
        if not _CONVERSATION.match(cid):
            return _error(400, "bad_request", "conversation must be a conversation id")
        cases = await self.history.cases_of(cid)
        if not await self._may_view(username, cid, cases):
            return _error(403, "not_yours", "这不是您接待过的顾客 / not a buyer you served")
        return web.json_response({"cases": cases})

    async def case(self, request: web.Request) -> web.Response:
        """One closed case (read-only), named by the conversation and the `case` id of a search result."""
        username, cid, case_id = await self.agent_of(request), request.query.get("conversation", ""), request.query.get("case", "")
        if not username:
            return _error(401, "not_logged_in", "log in first")
        if not _CONVERSATION.match(cid) or not _CASE.match(case_id):
            return _error(400, "bad_request", "conversation and case (from a search result) are required")
        found = await self.history.find(cid, case_id)
        if found is None:
            return _error(404, "not_found", "no such closed conversation")
        if not await self._may_view(username, cid, [{"agent": found.agent}]):
            return _error(403, "not_yours", "这不是您接待过的会话 / not a chat you served")
        return web.json_response({"case": await self.history.case(found)})

    async def _may_view(self, username: str, cid: str, cases: list[dict[str, Any]]) -> bool:
        """Supervisors see everything; an agent sees a buyer it serves now or a case it closed."""
        if self.config.agent(username).is_supervisor:  # type: ignore[union-attr]
            return True
        handoff = await self.service.store.handoff_of(cid)
        return (handoff is not None and handoff.agent == username) or any(c.get("agent") == username for c in cases)

    def same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        return origin.rstrip("/") in own_origins(request, self.config.server.public_url)

    async def socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        username = await self.agent_of(request) if self.same_origin(request) else None
        if username is None:
            await ws.send_json({"type": "error", "code": "not_logged_in", "message": "log in at /desk/ first"})
            await ws.close(code=4401, message=b"not logged in")
            return ws
        with self._sockets.track(ws):
            await _DeskSocket(self, ws, username).run()
        return ws


class _DeskSocket:
    def __init__(self, desk: Desk, ws: web.WebSocketResponse, username: str):
        self.desk = desk
        self.ws = ws
        self.username = username
        self.id = secrets.token_hex(8)
        self._send_lock = asyncio.Lock()
        self._typed: dict[str, float] = {}
        self.supervisor = desk.config.is_supervisor(username)

    async def send(self, frame: dict[str, Any]) -> None:
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(frame, ensure_ascii=False))

    async def error(self, code: str, message: str, **extra: Any) -> None:
        await self.send({"type": "error", "code": code, "message": message, **extra})

    async def run(self) -> None:
        service = self.desk.service
        unlisten = [self.desk._listen(f"agent:{self.username}", self.on_event), self.desk._listen("desks", self.on_event)]
        if self.supervisor:
            unlisten.append(self.desk._listen("supervisors", self.on_event))
        beat = asyncio.create_task(self._heartbeat())
        try:
            await service.socket_alive(self.username, self.id)
            await self.send(await service.snapshot(self.username))
            if self.supervisor:
                await self.send(await monitor(service))
            await service.drain()
            async for msg in self.ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.ERROR:
                        break
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
                await self.handle(frame)
        finally:
            beat.cancel()
            for remove in unlisten:
                remove()
            await service.socket_closed(self.username, self.id)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self.desk.service.socket_alive(self.username, self.id)
            except Exception as exc:  # a Redis blip must not make an open desk look offline for good
                if not self.desk.service.store.transient(exc):
                    log.warning("desk heartbeat of %s failed; retrying", self.username, exc_info=True)

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "ping":
            await self.send({"type": "pong"})
            return
        if kind == "status":
            status = frame.get("status")
            if status not in ("online", "away"):
                await self.error("bad_frame", "status is 'online' or 'away'")
                return
            await self.desk.service.set_status(self.username, status)
            await self.send({"type": "status", "status": status})
            return
        if kind in ("take_over", "reassign"):
            await self.supervise(kind, frame)
            return
        if kind == "take_followup":
            await self.take_followup(frame)
            return
        if kind not in ("reply", "close", "transfer", "pick", "note", "typing"):
            await self.error("bad_frame", f"unknown frame type {kind[:32]!r}")
            return
        cid = frame.get("conversation")
        if not isinstance(cid, str) or not _CONVERSATION.match(cid):
            await self.error("bad_frame", "'conversation' must be a conversation id")
            return
        if kind == "reply":
            await self.reply(cid, frame)
        elif kind == "note":
            await self.note(cid, frame)
        elif kind == "typing":
            await self.typing(cid)
        elif kind == "pick":
            await self.act(Inbound(channel="", conversation_id=cid, message_id=f"desk:{uuid.uuid4().hex}",
                                   customer=Customer(self.username), kind=Kind.AGENT_PICK, agent=self.username),
                           {"target_full": "您的接待量已满，请先结束一个会话 / you have no free capacity",
                            "target_offline": "您的客服台未连接 / your desk is not connected"})
        elif kind == "close":
            await self.act(Inbound(channel="", conversation_id=cid, message_id=f"desk:{uuid.uuid4().hex}",
                                   customer=Customer(self.username), kind=Kind.AGENT_CLOSE, agent=self.username))
        else:
            await self.transfer(cid, frame)

    async def take_followup(self, frame: dict[str, Any]) -> None:
        """A supervisor takes a follow-up: it is theirs, and gone from every supervisor's list."""
        followups = self.desk.service.followups
        fid = frame.get("id")
        if not isinstance(fid, str) or not fid.isdigit() or len(fid) > 20:
            await self.error("bad_frame", "'id' must be a follow-up id")
            return
        if not followups.is_supervisor(self.username):
            await self.error("not_supervisor", "只有主管可以处理跟进事项 / only supervisors take follow-ups", id=fid)
            return
        outcome = await followups.take(fid, self.username)
        if outcome == "already":
            await self.error("already_taken", "该事项已由其他主管跟进 / another supervisor took it", id=fid)
        elif outcome == "unknown":
            await self.error("unknown_followup", "没有这个跟进事项 / no such follow-up", id=fid)

    async def reply(self, cid: str, frame: dict[str, Any]) -> None:
        text, image = frame.get("text", ""), frame.get("image")
        if image is not None and not await self._own_image(image):
            await self.error("bad_image", "'image' must be the id of an image you uploaded", conversation=cid)
            return
        if not isinstance(text, str) or (not text.strip() and not image):
            await self.error("bad_frame", "'text' must be a non-empty string (or empty with an 'image')", conversation=cid)
            return
        if len(text) > MAX_REPLY_CHARS:
            await self.error("too_long", f"a reply may have at most {MAX_REPLY_CHARS} characters", conversation=cid)
            return
        if not encodable(text):
            await self.error("bad_frame", "'text' is not valid Unicode", conversation=cid)
            return
        handoff = await self.desk.service.store.handoff_of(cid)
        if handoff is None or handoff.agent != self.username:
            await self.error("not_assigned", "这个会话已不在您名下 / this chat is not yours", conversation=cid)
            return
        if frame.get("force") is not True and text.strip():
            service, coach = self.desk.service, self.desk.coach
            bargaining = coach.is_bargaining(await service.recent_buyer_texts(cid))
            session = await service.store.load_session(cid, "")
            # by meaning, the check embeds the reply: off the event loop
            warnings = await asyncio.to_thread(coach.check, text, self.desk.config.shop.locale, bargaining,
                                               session.customer_name or "", self.desk.config.shop.name)
            if warnings:
                await self.send({"type": "coach", "conversation": cid, "text": text, "warnings": [w.to_json() for w in warnings]})
                return
        self._typed.pop(cid, None)  # the reply ends the bout of typing
        await self.act(Inbound(channel="", conversation_id=cid, message_id=f"desk:{uuid.uuid4().hex}",
                               customer=Customer(self.username), text=text.strip(), kind=Kind.AGENT_REPLY, agent=self.username,
                               image=image or ""))

    async def _own_image(self, image: Any) -> bool:
        files = self.desk.files
        if files is None or not isinstance(image, str) or not FILE_ID.match(image):
            return False
        found = await files.get(image)
        return found is not None and found.owner == f"agent:{self.username}"

    async def note(self, cid: str, frame: dict[str, Any]) -> None:
        """An internal note: stored beside the conversation, shown on desks, never sent to the buyer."""
        text = frame.get("text")
        if not isinstance(text, str) or not text.strip() or not encodable(text):
            await self.error("bad_frame", "'text' must be a non-empty string", conversation=cid)
            return
        if len(text) > MAX_NOTE_CHARS:
            await self.error("too_long", f"a note may have at most {MAX_NOTE_CHARS} characters", conversation=cid)
            return
        store = self.desk.service.store
        handoff = await store.handoff_of(cid)
        supervisor = self.desk.config.agent(self.username).is_supervisor  # type: ignore[union-attr]
        if not supervisor and (handoff is None or handoff.agent != self.username):
            await self.error("not_assigned", "这个会话已不在您名下 / this chat is not yours", conversation=cid)
            return
        note = Note(f"note-{uuid.uuid4().hex[:12]}", self.username, text.strip(), self.desk.service.clock())
        await store.add_note(cid, note)
        # "chat", not "conversation": the event must never reach the buyer's sockets
        await store.publish({"type": "note", "chat": cid, "agent": handoff.agent if handoff else None,
                             "desk": self.username, "note": note.to_json()})

    async def typing(self, cid: str) -> None:
        now = time.monotonic()
        if now - self._typed.get(cid, 0.0) < TYPING_EVERY:
            return  # throttled: the desk sends at most every few seconds anyway
        self._typed[cid] = now
        handoff = await self.desk.service.store.handoff_of(cid)
        if handoff is not None and handoff.agent == self.username:
            await self.desk.service.agent_typing(cid)

    async def transfer(self, cid: str, frame: dict[str, Any]) -> None:
        config = self.desk.config
        group, agent = frame.get("group"), frame.get("agent")
        if isinstance(group, str) and group in config.group_names:
            target = f"group:{group}"
        elif isinstance(agent, str) and config.agent(agent):
            target = f"agent:{agent}"
        else:
            await self.error("unknown_target", "transfer to a known 'group' or 'agent'", conversation=cid)
            return
        await self.act(Inbound(channel="", conversation_id=cid, message_id=f"desk:{uuid.uuid4().hex}",
                               customer=Customer(self.username), kind=Kind.AGENT_TRANSFER, agent=self.username, target=target))

    async def supervise(self, kind: str, frame: dict[str, Any]) -> None:
        """take_over: the supervisor takes the chat; reassign: it goes to the named agent."""
        cid = frame.get("conversation")
        if not self.supervisor:
            await self.error("forbidden", "仅主管可以操作 / supervisors only", conversation=cid if isinstance(cid, str) else None)
            return
        if not isinstance(cid, str) or not _CONVERSATION.match(cid):
            await self.error("bad_frame", "'conversation' must be a conversation id")
            return
        target = self.username if kind == "take_over" else frame.get("agent")
        if not isinstance(target, str) or not self.desk.config.agent(target):
            await self.error("unknown_target", "reassign to a known 'agent'", conversation=cid)
            return
        await self.act(Inbound(channel="", conversation_id=cid, message_id=f"desk:{uuid.uuid4().hex}",
                               customer=Customer(self.username), kind=Kind.SUPERVISOR_ASSIGN, agent=self.username,
                               target=f"agent:{target}"))

    async def act(self, inbound: Inbound, own: dict[str, str] | None = None) -> None:
        try:
            outcome = await self.desk._submit(inbound, None)
        except Exception:
            log.exception("desk action failed for %s", inbound.conversation_id)
            await self.error("internal", "操作未完成，请重试 / not done, please try again", conversation=inbound.conversation_id)
            return
        if outcome.error:
            messages = {
                "not_assigned": "这个会话已不在您名下（可能已转给其他客服或已结束） / this chat is no longer yours",
                "target_offline": "对方客服不在线 / that agent is not online",
                "same_agent": "会话已经在该客服名下 / the chat is already with that agent",
                "target_full": "对方客服接待已满 / that agent has no free capacity",
                "not_queued": "这位顾客已不在排队中（可能已被其他客服接入） / this buyer is no longer waiting",
                "not_open": "这个会话已结束 / this chat is no longer open",
            }
            messages |= own or {}
            await self.error(outcome.error, messages.get(outcome.error, outcome.error), conversation=inbound.conversation_id)

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "desk" and event.get("desk") == self.username:
            await self.send(event["frame"])
        elif kind == "messages" and self.supervisor and event.get("agent") != self.username:
            await self.send({"type": "watch", "conversation": event["conversation"], "agent": event.get("agent"),
                             "messages": event.get("messages", [])})
        elif kind == "messages" and event.get("agent") == self.username:
            for message in event.get("messages", ()):
                from_ = message.get("from")
                await self.send({
                    "type": "message", "conversation": event["conversation"], "id": message.get("id"),
                    "from": "customer" if from_ == "visitor" else from_, "text": message.get("text"),
                    "ts": message.get("ts"), **({"agent": message["agent"]} if message.get("agent") else {}),
                    **({"image": message["image"]} if message.get("image") else {}),
                })
        elif kind == "note" and self.username in (event.get("agent"), event.get("desk")):
            await self.send({"type": "note", "conversation": event.get("chat"), "note": event.get("note")})
        elif kind == "typing" and event.get("agent") == self.username and event.get("from") == "customer":
            await self.send({"type": "typing", "conversation": event.get("chat"), "from": "customer"})
        elif kind == "queue_changed":
            await self.send({"type": "queue", "queue": await self.desk.service.queue_view(self.username)})
            if self.supervisor:
                await self.send(await monitor(self.desk.service))


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)



