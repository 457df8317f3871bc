"""The WeChat Official Account (公众号) channel: `GET|POST /wechat/callback` and the customer-service API.

WeChat waits 5 s for the HTTP answer, then retries the same message (three tries in all, possibly while
the first is still open). So a turn gets `passive_budget` seconds: an answer ready by then rides in the
HTTP response (free, no quota); a later one is answered "success" and sent through the customer-service
API, which allows 5 messages within 48 h of the buyer's last message. Retries are deduped by the engine
(MsgId, or FromUserName + CreateTime for events), so a retry is answered "success" and never twice.

wechatpy is used for crypto and parsing only; its client is synchronous, so the HTTP API is called with
aiohttp. The access_token is shared by all processes through a `TokenCache` (Redis, in the store); the
token client, signatures and body limits live in adapters/wx_common.py, shared with WeCom.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import aiohttp
import xmltodict
from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import BaseEvent
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import ImageMessage, TextMessage, UnknownMessage

from adapters.wx_common import ApiClient, BackgroundTasks, QuotaStore, Reject as _Reject, check_quota, fetch_media, upload_image
from adapters.wx_common import MEDIA_ID
from adapters.wx_common import Outbox, no_doctype as _no_doctype, outbox_messages, outbox_texts, read_body, reply_texts, same as _same, sign
from bot.channels import capabilities
from bot.config import WeChatChannel
from bot.delivery import DeliveryError
from bot.files import FileStore
from bot.types import Customer, Inbound, Kind, Outcome

log = logging.getLogger(__name__)

PATH = "/wechat/callback"
MAX_BODY = 64 * 1024                 # WeChat's own messages are a few KiB
FRESHNESS = 300.0                    # seconds a signed timestamp may differ from our clock
REFUSALS = {45015: "outside the 48-hour window", 45047: "5-message quota used", 43004: "buyer unsubscribed",
            40003: "unknown openid", 43019: "buyer blocked the account", 45002: "message too long",
            48001: "no customer-service API permission"}
WINDOW_EVENTS = {"subscribe", "subscribe_scan", "subscribe_scan_product", "scan", "click", "scancode_push",
                 "scancode_waitmsg"}   # the interactions that open the 48-hour window (WeChat docs)
GREETING_EVENTS = {"subscribe", "subscribe_scan", "subscribe_scan_product"}
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PENDING = "wechat-media:"   # Inbound.image of a picture not fetched yet
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SUCCESS = "success"

Submit = Callable[[Inbound, str | None], Awaitable[Outcome]]


TokenCache = QuotaStore  # one app_id's shared state (bot/store.py WeChatTokens)


def cdata(text: str) -> str:
    """A CDATA section that survives `]]>` and characters XML forbids (wechatpy escapes neither)."""
    return "<![CDATA[" + _NOT_XML.sub("", text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def reply_xml(to_user: str, from_user: str, create_time: int, content: str) -> str:
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(content)}</Content></xml>")


class WeChatAdapter:
    """Mounts `/wechat/callback` and delivers by the customer-service API (the delivery Sender protocol)."""

    channel = "wechat"

    def __init__(self, config: WeChatChannel, submit: Submit, token_cache: TokenCache, outbox: Outbox,
                 clock: Callable[[], float] = time.time, passive_budget: float = 4.0,
                 http: aiohttp.ClientSession | None = None, files: FileStore | None = None):
        self.config = config
        self.outbox = outbox
        self.files = files  # buyers' pictures are fetched into it; agents' images are sent from it
        self.cache = token_cache
        self.clock = clock
        self.passive_budget = passive_budget
        self._submit = submit
        self.api = ApiClient("wechat", config.api_base_url, "/cgi-bin/token",
                             {"grant_type": "client_credential", "appid": config.app_id, "secret": config.app_secret},
                             token_cache, http, credentials={40013: "channels.wechat.app_id", 40125: "channels.wechat.app_secret",
                                                             40001: "channels.wechat.app_secret"})
        self.health = self.api.health
        self._crypto: WeChatCrypto | None = None
        if config.encoding_aes_key:
            try:
                self._crypto = WeChatCrypto(config.token, config.encoding_aes_key, config.app_id)
            except Exception:
                raise ValueError("channels.wechat.encoding_aes_key: expected the 43-character key from the console") from None
        self._limit = capabilities(self.channel).max_text
        self._tasks = BackgroundTasks("wechat")

    def mount(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.callback)
        app.router.add_post(PATH, self.callback)

    async def close(self) -> None:
        """Let late deliveries finish (briefly), then close our HTTP session. Idempotent."""
        await self._tasks.close()
        await self.api.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any], report: bool = True) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, report)

    # ---- the callback ---------------------------------------------------------------------------
    async def callback(self, request: web.Request) -> web.StreamResponse:
        """Never a traceback to WeChat: refusals get their status, anything unexpected is logged and
        answered "success" so WeChat does not retry into a turn that already failed."""
        try:
            self._check_request(request)
            if request.method == "GET":
                return web.Response(text=request.query.get("echostr", ""))
            return await self._message(request)
        except _Reject as exc:
            log.warning("wechat callback refused (%d): %s", exc.status, exc)
            return web.Response(status=exc.status, text="")
        except Exception:
            log.exception("wechat callback failed")
            return web.Response(text=_SUCCESS)

    def _check_request(self, request: web.Request) -> None:
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not self.config.token:
            raise _Reject(403, "channels.wechat.token is not set")
        if not timestamp.isdigit() or not nonce:
            raise _Reject(403, "timestamp or nonce missing")
        if abs(self.clock() - int(timestamp)) > FRESHNESS:
            raise _Reject(403, "stale timestamp")
        if request.method == "GET" or q.get("encrypt_type", "raw").lower() != "aes":  # else: msg_signature
            if not _same(sign(self.config.token, timestamp, nonce), q.get("signature", "")):
                raise _Reject(403, "bad signature")

    async def _read_body(self, request: web.Request) -> bytes:
        return await read_body(request, MAX_BODY)

    def _decrypt(self, request: web.Request, body: bytes) -> str:
        """Compatible and safe modes: check msg_signature over the Encrypt field, then decrypt."""
        if self._crypto is None:
            raise _Reject(403, "encrypted message but channels.wechat.encoding_aes_key is not set")
        q = request.query
        try:
            outer = xmltodict.parse(_no_doctype(body))["xml"]
            encrypt = outer["Encrypt"]
        except Exception as exc:
            raise _Reject(400, f"bad encrypted envelope ({type(exc).__name__})") from None
        if not isinstance(encrypt, str):
            raise _Reject(400, "bad encrypted envelope")
        expected = sign(self.config.token, q["timestamp"], q["nonce"], encrypt)
        if not _same(expected, q.get("msg_signature", "")):
            raise _Reject(403, "bad msg_signature")
        try:
            return self._crypto.decrypt_message({"Encrypt": encrypt}, expected, q["timestamp"], q["nonce"])
        except (InvalidSignatureException, InvalidAppIdException):
            raise _Reject(403, "encrypted for another app_id") from None
        except Exception as exc:
            raise _Reject(400, f"cannot decrypt ({type(exc).__name__})") from None

    async def _message(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        body = await self._read_body(request)
        encrypted = request.query.get("encrypt_type", "raw").lower() == "aes"
        xml = self._decrypt(request, body) if encrypted else body
        try:
            message = parse_message(_no_doctype(xml))  # xmltodict refuses entity declarations
            openid, gh_id, create_time, msg_id = message.source, message.target, message.time, message.id
        except Exception as exc:  # ExpatError, ValueError (entities), KeyError (no MsgType), TypeError ...
            raise _Reject(400, f"malformed message ({type(exc).__name__})") from None
        if not isinstance(openid, str) or not _OPENID.match(openid) or not isinstance(gh_id, str):
            raise _Reject(400, "bad FromUserName/ToUserName")
        if not isinstance(create_time, int) or not isinstance(msg_id, int):
            raise _Reject(400, "bad CreateTime/MsgId")

        opens_window, inbound = self._inbound(message, openid, create_time, msg_id)
        if opens_window:
            await self.cache.mark_buyer_message(openid, min(float(create_time), self.clock()))
        if inbound is None:
            return web.Response(text=_SUCCESS)
        inbound = await self.fetch_image(inbound)

        turn = self._spawn(self._submit(inbound, self.channel), report=False)  # see callback() and _late()
        budget = max(0.0, self.passive_budget - (time.monotonic() - started))
        try:
            done, _ = await asyncio.wait({turn}, timeout=budget)
        except asyncio.CancelledError:  # the request was dropped: the turn goes on, its replies by API
            self._spawn(self._late(turn, inbound))
            raise
        if not done:
            self._spawn(self._late(turn, inbound))
            return web.Response(text=_SUCCESS)
        outcome = turn.result()  # an exception is logged by callback() and answered "success"
        texts = self._texts(outcome)
        if not texts:
            return web.Response(text=_SUCCESS)
        transport = request.transport
        if transport is None or transport.is_closing():  # WeChat gave up on this request meanwhile
            await self._send_late(inbound, texts)
            return web.Response(text=_SUCCESS)
        if texts[1:]:
            await self._send_late(inbound, texts[1:], first=1)
        xml_reply = reply_xml(openid, gh_id, int(self.clock()), texts[0])
        if encrypted:
            assert self._crypto is not None
            xml_reply = self._crypto.encrypt_message(xml_reply, request.query["nonce"], str(int(self.clock())))
        return web.Response(text=xml_reply, content_type="application/xml")

    def _inbound(self, message: Any, openid: str, create_time: int, msg_id: int) -> tuple[bool, Inbound | None]:
        """(does it open the 48-hour window, the Inbound to submit or None to submit nothing)."""
        customer = Customer(id=openid)
        conversation = f"wechat:{openid}"
        now = self.clock()
        if isinstance(message, BaseEvent):
            event = message.event
            event_id = f"{openid}:{create_time}"
            if event in GREETING_EVENTS:  # a new follower gets the welcome
                return True, Inbound(self.channel, conversation, event_id, customer, "", Kind.FOLLOW, now)
            if event == "unsubscribe":    # closes an open handoff; nothing is sent
                return False, Inbound(self.channel, conversation, event_id, customer, "", Kind.UNFOLLOW, now)
            return event in WINDOW_EVENTS, None  # view, template results ...: no turn
        if isinstance(message, UnknownMessage):
            return False, None
        message_id = str(msg_id) if msg_id else f"{openid}:{create_time}"
        text = message.content if isinstance(message, TextMessage) else None
        media = message.media_id if isinstance(message, ImageMessage) else None
        if self.files is not None and isinstance(media, str) and MEDIA_ID.match(media):  # fetched by fetch_image
            return True, Inbound(self.channel, conversation, message_id, customer, "", Kind.IMAGE, now, image=PENDING + media)
        if isinstance(text, str) and text.strip():
            return True, Inbound(self.channel, conversation, message_id, customer, text.strip(), Kind.TEXT, now)
        return True, Inbound(self.channel, conversation, message_id, customer, "", Kind.UNSUPPORTED, now)

    async def fetch_image(self, inbound: Inbound) -> Inbound:
        """A buyer's picture, downloaded with media/get into the file store; one that cannot be
        fetched or is refused still reaches the bot, as a message it cannot read."""
        if not inbound.image.startswith(PENDING) or self.files is None:
            return inbound
        stored = await fetch_media(self.api, self.files, inbound.image[len(PENDING):], inbound.conversation_id)
        return dataclasses.replace(inbound, image=stored) if stored else dataclasses.replace(inbound, kind=Kind.UNSUPPORTED, image="")

    def _texts(self, outcome: Outcome) -> list[str]:
        """All replies of a turn as one text (blank lines between), cut to WeChat's message size."""
        return [] if outcome.duplicate else reply_texts(outcome.replies, self._limit)

    async def _late(self, turn: asyncio.Task[Outcome], inbound: Inbound) -> None:
        try:
            outcome = await turn
        except Exception:
            log.exception("wechat turn failed for %s", inbound.conversation_id)
            return
        texts = self._texts(outcome)
        if texts:
            await self._send_late(inbound, texts)

    async def _send_late(self, inbound: Inbound, texts: Sequence[str], first: int = 0) -> None:
        """Replies that miss the passive reply go to the outbox, delivered by the customer-service API
        (in order, with retries; a refusal is reported to the desk)."""
        await self.outbox(self.channel, inbound.conversation_id, outbox_messages(inbound.message_id, texts, first))

    # ---- the customer-service API (delivery) ----------------------------------------------------
    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        """Send one outbox message (agent reply, notice); DeliveryError when WeChat refuses it."""
        channel, _, openid = conversation_id.partition(":")
        if channel != self.channel or not _OPENID.match(openid):
            raise DeliveryError(f"not a wechat conversation: {conversation_id}", permanent=True)
        if message.get("image") and self.files is not None:
            await self._send_image(openid, str(message["image"]), f"{message.get('id', '')}#image")
        for key, text in outbox_texts(message, self._limit):
            await self._send(openid, text, key)

    async def _send_image(self, openid: str, file_id: str, key: str) -> None:
        """An agent's picture: uploaded as temporary media, then sent as an image message."""
        assert self.files is not None
        await check_quota(self.cache, openid, key, self.clock(), f"wechat: {REFUSALS[45015]}", f"wechat: {REFUSALS[45047]}")
        media_id = await upload_image(self.api, self.files, file_id)
        data = await self.api.post("/cgi-bin/message/custom/send", {"touser": openid, "msgtype": "image", "image": {"media_id": media_id}})
        code = data.get("errcode", 0)
        if code != 0:
            raise DeliveryError(f"wechat {code}: {REFUSALS.get(code) or data.get('errmsg', '')}", permanent=code in REFUSALS)

    async def _send(self, openid: str, text: str, key: str) -> None:
        await check_quota(self.cache, openid, key, self.clock(), f"wechat: {REFUSALS[45015]}", f"wechat: {REFUSALS[45047]}")
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        data = await self.api.post("/cgi-bin/message/custom/send", body)
        code = data.get("errcode", 0)
        if code != 0:
            reason = f"wechat {code}: {REFUSALS.get(code) or data.get('errmsg', '')}"
            raise DeliveryError(reason, permanent=code in REFUSALS)

    async def access_token(self, stale: str | None = None) -> str:
        """The shared token (see ApiClient.access_token)."""
        return await self.api.access_token(stale)
