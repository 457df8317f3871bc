"""The WeCom customer-service (微信客服) channel: `GET|POST /wecom-kf/callback` and the kf API.

WeCom's callback carries no message, only "something happened on customer-service account OpenKfId"
and a Token for kf/sync_msg (valid 10 minutes). So the callback is answered "success" at once and the
messages are pulled in the background: sync_msg from the cursor kept in the store per open_kfid, page
after page while has_more, by one puller at a time (a store lock; a callback that finds the lock taken
leaves its Token for the running puller, which pulls again before it lets go). The cursor advances only
after a page was handled, so a crash re-reads the page and the engine's dedupe (msgid) drops repeats.

There is no passive reply: every reply goes by kf/send_msg, which WeCom allows while the session is new
or with the bot (state 0/1), at most 5 messages within 48 h of the buyer's last message. The welcome on
`enter_session` goes by kf/send_msg_on_event with the event's welcome_code instead (outside that quota).

wechatpy is used for the AES crypto only; 2.0.0a26's `kf.sync_msg` lacks open_kfid, and its client is
synchronous, so the API is called with aiohttp (adapters/wx_common.py, shared with the WeChat adapter).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

import aiohttp
import xmltodict
from aiohttp import web
from wechatpy.work.crypto import WeChatCrypto
from wechatpy.work.exceptions import InvalidCorpIdException

from adapters.wx_common import ApiClient, BackgroundTasks, QuotaStore, Reject, check_quota, no_doctype, outbox_texts
from adapters.wx_common import Outbox, outbox_messages, read_body, reply_texts, same, sign
from adapters.wx_common import MEDIA_ID, fetch_media, upload_image
from bot.channels import capabilities
from bot.config import WeComKfChannel
from bot.delivery import DeliveryError
from bot.files import FileStore
from bot.types import Customer, Inbound, Kind, Outcome

log = logging.getLogger(__name__)

PATH = "/wecom-kf/callback"
MAX_BODY = 64 * 1024                 # a kf callback is a few hundred bytes
FRESHNESS = 300.0                    # seconds a signed timestamp may differ from our clock
SYNC_LIMIT = 1000                    # sync_msg's maximum page
MAX_PAGES = 50                       # per Token: a runaway has_more cannot keep a puller forever
PULL_LOCK_TTL = 60.0                 # renewed after every page
FIRST_PULL_HORIZON = 600.0           # with no cursor yet, older buyer messages (up to 3 days) are not answered
BUYER, EVENT, SERVICER = 3, 4, 5     # sync_msg origins: buyer, system event, agent in the WeCom client
# The kf error codes that retrying cannot fix (from WeCom's global error-code list; 95001/95002 are the
# quota and the window, 95013/95018 a session that ended or moved to a human or the queue).
REFUSALS = {95001: "5-message quota used", 95002: "outside the 48-hour window", 95013: "session ended",
            95018: "session state does not allow API messages", 95000: "invalid open_kfid",
            95004: "open_kfid not found", 40096: "invalid external_userid", 48002: "no API permission",
            60020: "server IP not trusted"}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")            # open_kfid, external_userid as WeCom issues them
_MSGID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
_SYNC_TOKEN = re.compile(r"^[\x21-\x7e]{1,512}$")
_ENCODED = "x."                                        # prefix of an external_userid we had to encode
_SUCCESS = "success"

Submit = Callable[[Inbound, str | None], Awaitable[Outcome]]


class KfState(QuotaStore, Protocol):
    """Shared WeCom state of one corp (bot/store.py WeComKfState)."""

    async def get_cursor(self, open_kfid: str) -> str: ...
    async def set_cursor(self, open_kfid: str, cursor: str) -> None: ...
    async def offer_pull(self, open_kfid: str, sync_token: str) -> None: ...
    async def take_pull(self, open_kfid: str) -> str | None: ...
    async def has_pull(self, open_kfid: str) -> bool: ...
    async def pull_lock(self, open_kfid: str, ttl: float) -> bool: ...
    async def extend_pull_lock(self, open_kfid: str, ttl: float) -> bool: ...
    async def release_pull_lock(self, open_kfid: str) -> None: ...


def conversation_id(open_kfid: str, external_userid: str) -> str | None:
    """`wecom_kf:<open_kfid>:<external_userid>`; an external_userid outside the characters conversation
    ids allow is base32-encoded behind "x." (raw ids never contain "."). None when it cannot fit."""
    if not _ID.match(open_kfid) or not external_userid or len(external_userid) > 64:
        return None
    user = external_userid if _ID.match(external_userid) else (
        _ENCODED + base64.b32encode(external_userid.encode("utf-8", "replace")).decode().rstrip("=").lower())
    part = f"{open_kfid}:{user}"
    return f"wecom_kf:{part}" if len(part) <= 128 else None


def parse_conversation(cid: str) -> tuple[str, str] | None:
    """(open_kfid, external_userid) of a conversation id made by conversation_id()."""
    channel, _, rest = cid.partition(":")
    open_kfid, _, user = rest.partition(":")
    if channel != "wecom_kf" or not _ID.match(open_kfid):
        return None
    if user.startswith(_ENCODED):
        raw = user[len(_ENCODED):].upper()
        try:
            user = base64.b32decode(raw + "=" * (-len(raw) % 8)).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        return open_kfid, user
    return (open_kfid, user) if _ID.match(user) else None


class WeComKfAdapter:
    """Mounts `/wecom-kf/callback`, pulls messages, and delivers by kf/send_msg (the Sender protocol)."""

    channel = "wecom_kf"

    def __init__(self, config: WeComKfChannel, submit: Submit, state: KfState, outbox: Outbox,
                 clock: Callable[[], float] = time.time, http: aiohttp.ClientSession | None = None,
                 files: FileStore | None = None):
        self.config = config
        self.files = files  # buyers' pictures are fetched into it; agents' images are sent from it
        self.outbox = outbox
        self.state = state
        self.clock = clock
        self._submit = submit
        try:
            self._crypto = WeChatCrypto(config.token, config.encoding_aes_key, config.corp_id)
        except Exception:
            raise ValueError("channels.wecom_kf.encoding_aes_key: expected the 43-character key from the console") from None
        self.api = ApiClient("wecom_kf", config.api_base_url, "/cgi-bin/gettoken",
                             {"corpid": config.corp_id, "corpsecret": config.secret}, state, http,
                             credentials={40013: "channels.wecom_kf.corp_id", 40001: "channels.wecom_kf.secret",
                                          40091: "channels.wecom_kf.secret"})
        self.health = self.api.health
        self._limit = capabilities(self.channel).max_text
        self._tasks = BackgroundTasks("wecom_kf")

    def mount(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.callback)
        app.router.add_post(PATH, self.callback)

    async def close(self) -> None:
        """Let running pulls finish (briefly), then close our HTTP session. Idempotent."""
        await self._tasks.close()
        await self.api.close()

    async def idle(self) -> None:
        """Wait until the background pulls started so far are done (tests, shutdown)."""
        await self._tasks.idle()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.spawn(coro)

    # ---- the callback ---------------------------------------------------------------------------
    async def callback(self, request: web.Request) -> web.StreamResponse:
        """Refusals get their status and an empty body; anything unexpected is logged and answered
        "success" (the pull is driven by the cursor, so nothing is lost by not being retried)."""
        try:
            self._check_request(request)
            if request.method == "GET":
                return web.Response(text=self._echo(request))
            return await self._event(request)
        except Reject as exc:
            log.warning("wecom_kf callback refused (%d): %s", exc.status, exc)
            return web.Response(status=exc.status, text="")
        except Exception:
            log.exception("wecom_kf callback failed")
            return web.Response(text=_SUCCESS)

    def _check_request(self, request: web.Request) -> None:
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not timestamp.isdigit() or not nonce or not q.get("msg_signature"):
            raise Reject(403, "timestamp, nonce or msg_signature missing")
        if abs(self.clock() - int(timestamp)) > FRESHNESS:
            raise Reject(403, "stale timestamp")

    def _echo(self, request: web.Request) -> str:
        """URL verification: msg_signature over the encrypted echostr, answered with its plaintext."""
        q = request.query
        echostr = q.get("echostr", "")
        if not echostr or not same(sign(self.config.token, q["timestamp"], q["nonce"], echostr), q["msg_signature"]):
            raise Reject(403, "bad msg_signature")
        try:
            return str(self._crypto.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], echostr))
        except InvalidCorpIdException:
            raise Reject(403, "echostr encrypted for another corp_id") from None
        except Exception as exc:
            raise Reject(400, f"cannot decrypt echostr ({type(exc).__name__})") from None

    def _decrypt(self, request: web.Request, body: bytes) -> dict[str, Any]:
        q = request.query
        try:
            encrypt = xmltodict.parse(no_doctype(body))["xml"]["Encrypt"]
        except Exception as exc:
            raise Reject(400, f"bad encrypted envelope ({type(exc).__name__})") from None
        if not isinstance(encrypt, str):
            raise Reject(400, "bad encrypted envelope")
        expected = sign(self.config.token, q["timestamp"], q["nonce"], encrypt)
        if not same(expected, q["msg_signature"]):
            raise Reject(403, "bad msg_signature")
        try:
            xml = self._crypto.decrypt_message({"Encrypt": encrypt}, expected, q["timestamp"], q["nonce"])
        except InvalidCorpIdException:
            raise Reject(403, "encrypted for another corp_id") from None
        except Exception as exc:
            raise Reject(400, f"cannot decrypt ({type(exc).__name__})") from None
        try:
            message = xmltodict.parse(no_doctype(xml))["xml"]
        except Exception as exc:  # ExpatError, ValueError (entities, DOCTYPE), KeyError (root) ...
            raise Reject(400, f"malformed message ({type(exc).__name__})") from None
        if not isinstance(message, dict):
            raise Reject(400, "malformed message")
        return message

    async def _event(self, request: web.Request) -> web.StreamResponse:
        message = self._decrypt(request, await read_body(request, MAX_BODY))
        if message.get("MsgType") != "event" or message.get("Event") != "kf_msg_or_event":
            return web.Response(text=_SUCCESS)  # other corp events (if any share this URL): not ours
        sync_token, open_kfid = message.get("Token"), message.get("OpenKfId")
        if not isinstance(sync_token, str) or not _SYNC_TOKEN.match(sync_token):
            raise Reject(400, "bad Token")
        if not isinstance(open_kfid, str) or not _ID.match(open_kfid):
            raise Reject(400, "bad OpenKfId")
        await self.state.offer_pull(open_kfid, sync_token)
        self._spawn(self._pull(open_kfid))
        return web.Response(text=_SUCCESS)

    # ---- pulling --------------------------------------------------------------------------------
    async def _pull(self, open_kfid: str) -> None:
        """Pull while callbacks keep offering Tokens; only the lock holder pulls. The offer is checked
        again after releasing, so a callback that arrived just before the release is not missed."""
        held = await self.state.pull_lock(open_kfid, PULL_LOCK_TTL)
        if not held:
            return  # the running puller takes our Token
        try:
            while True:
                sync_token = await self.state.take_pull(open_kfid)
                if sync_token is None:
                    await self.state.release_pull_lock(open_kfid)
                    held = False
                    if not await self.state.has_pull(open_kfid):
                        return
                    held = await self.state.pull_lock(open_kfid, PULL_LOCK_TTL)
                    if not held:
                        return
                    continue
                await self._drain(open_kfid, sync_token)
        finally:
            if held:
                await self.state.release_pull_lock(open_kfid)

    async def _drain(self, open_kfid: str, sync_token: str) -> None:
        cursor = await self.state.get_cursor(open_kfid)
        horizon = self.clock() - FIRST_PULL_HORIZON if not cursor else None
        for _ in range(MAX_PAGES):
            body = {"cursor": cursor, "token": sync_token, "limit": SYNC_LIMIT, "open_kfid": open_kfid}
            data = await self.api.post("/cgi-bin/kf/sync_msg", body)
            code = data.get("errcode", 0)
            if code != 0:
                log.warning("wecom_kf sync_msg for %s refused: %s %s", open_kfid, code, data.get("errmsg", ""))
                return
            for msg in data.get("msg_list") or []:
                if isinstance(msg, dict):
                    await self._handle(open_kfid, msg, horizon)
            next_cursor = data.get("next_cursor")
            if isinstance(next_cursor, str) and next_cursor and next_cursor != cursor:
                cursor = next_cursor
                await self.state.set_cursor(open_kfid, cursor)
            if not data.get("has_more"):
                return
            if not await self.state.extend_pull_lock(open_kfid, PULL_LOCK_TTL):
                log.warning("wecom_kf pull lock for %s lost; leaving the rest to its holder", open_kfid)
                return
        log.warning("wecom_kf sync_msg for %s: still has_more after %d pages", open_kfid, MAX_PAGES)

    async def _handle(self, open_kfid: str, msg: dict[str, Any], horizon: float | None) -> None:
        """One pulled message. Malformed ones are skipped; engine or store errors propagate, so the
        cursor stays and the page is read again by the next pull."""
        msgid, origin = msg.get("msgid"), msg.get("origin")
        if not isinstance(msgid, str) or msg.get("open_kfid", open_kfid) != open_kfid:
            return
        message_id = msgid if _MSGID.match(msgid) else sign(msgid)  # never braces in a store key
        now = self.clock()
        if origin == BUYER:
            user, sent_at = msg.get("external_userid"), msg.get("send_time")
            cid = conversation_id(open_kfid, user) if isinstance(user, str) else None
            if cid is None or not isinstance(sent_at, int):
                log.warning("wecom_kf: skipping buyer message %s with unexpected ids", message_id)
                return
            if horizon is not None and sent_at < horizon:
                return
            await self.state.mark_buyer_message(cid.partition(":")[2], min(float(sent_at), now))
            body = msg.get("text")
            text = body.get("content") if msg.get("msgtype") == "text" and isinstance(body, dict) else None
            picture = msg.get("image") if msg.get("msgtype") == "image" and isinstance(msg.get("image"), dict) else {}
            media = picture.get("media_id")
            stored = await fetch_media(self.api, self.files, media, cid) \
                if self.files is not None and isinstance(media, str) and MEDIA_ID.match(media) else None
            if isinstance(text, str) and text.strip():
                inbound = Inbound(self.channel, cid, message_id, Customer(id=user), text.strip(), Kind.TEXT, now)
            elif stored:
                inbound = Inbound(self.channel, cid, message_id, Customer(id=user), "", Kind.IMAGE, now, image=stored)
            else:  # image, voice, video, file, location, link, mini-program, channels product ...
                inbound = Inbound(self.channel, cid, message_id, Customer(id=user), "", Kind.UNSUPPORTED, now)
            await self._reply(inbound, self._texts(await self._submit(inbound, self.channel)))
        elif origin == EVENT and msg.get("msgtype") == "event":
            event = msg.get("event") if isinstance(msg.get("event"), dict) else {}
            user, code = event.get("external_userid"), event.get("welcome_code")
            if event.get("event_type") != "enter_session" or not isinstance(code, str) or not code:
                return  # session status changes, failed sends, servicer changes ...: nothing to say
            cid = conversation_id(open_kfid, user) if isinstance(user, str) else None
            if cid is None:
                return
            # The buyer opened the chat: the welcome, sent with the event's one-time welcome code.
            inbound = Inbound(self.channel, cid, message_id, Customer(id=user), "", Kind.FOLLOW, now)
            texts = self._texts(await self._submit(inbound, self.channel))
            if texts:
                await self._welcome(inbound, code, texts)
        # origin 5 (an agent in the WeCom client) and anything else: not for the bot

    def _texts(self, outcome: Outcome) -> list[str]:
        return [] if outcome.duplicate else reply_texts(outcome.replies, self._limit)

    async def _welcome(self, inbound: Inbound, code: str, texts: Sequence[str]) -> None:
        """The first message by send_msg_on_event (each welcome_code works once, for 20 s); the rest,
        rare for a greeting, by send_msg."""
        body = {"code": code, "msgtype": "text", "text": {"content": texts[0]}}
        try:
            data = await self.api.post("/cgi-bin/kf/send_msg_on_event", body)
        except DeliveryError as exc:
            log.warning("%s: welcome not sent (%s)", inbound.conversation_id, exc.reason)
            return
        if data.get("errcode", 0) != 0:
            log.warning("%s: welcome refused: %s %s", inbound.conversation_id, data.get("errcode"), data.get("errmsg", ""))
            return
        await self._reply(inbound, texts[1:], first=1)

    async def _reply(self, inbound: Inbound, texts: Sequence[str], first: int = 0) -> None:
        """A turn's replies (as one text, cut to size: fewer of the 5 API messages) into the outbox,
        delivered by send_msg in order with retries; a refusal is reported to the desk."""
        if texts:
            await self.outbox(self.channel, inbound.conversation_id, outbox_messages(inbound.message_id, texts, first))

    # ---- kf/send_msg (delivery) -----------------------------------------------------------------
    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        """Send one outbox message (agent reply, notice); DeliveryError when WeCom refuses it."""
        if parse_conversation(conversation_id) is None:
            raise DeliveryError(f"not a wecom_kf conversation: {conversation_id}", permanent=True)
        if message.get("image") and self.files is not None:
            await self._send(conversation_id, "", f"{message.get('id', '')}#image", image=str(message["image"]))
        for key, text in outbox_texts(message, self._limit):
            await self._send(conversation_id, text, key)

    async def _send(self, cid: str, text: str, key: str, image: str = "") -> None:
        ids = parse_conversation(cid)
        if ids is None:
            raise DeliveryError(f"not a wecom_kf conversation: {cid}", permanent=True)
        open_kfid, user = ids
        buyer = cid.partition(":")[2]
        await check_quota(self.state, buyer, key, self.clock(), f"wecom_kf: {REFUSALS[95002]}", f"wecom_kf: {REFUSALS[95001]}")
        body: dict[str, Any] = {"touser": user, "open_kfid": open_kfid, "msgtype": "text", "text": {"content": text}}
        if image:  # an agent's picture: uploaded as temporary media, sent as an image message
            assert self.files is not None
            body = {"touser": user, "open_kfid": open_kfid, "msgtype": "image",
                    "image": {"media_id": await upload_image(self.api, self.files, image)}}
        data = await self.api.post("/cgi-bin/kf/send_msg", body)
        code = data.get("errcode", 0)
        if code != 0:
            reason = f"wecom_kf {code}: {REFUSALS.get(code) or data.get('errmsg', '')}"
            raise DeliveryError(reason, permanent=code in REFUSALS)
