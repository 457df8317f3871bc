"""The Telegram channel: a webhook (or long polling for development) on our own aiohttp server,
python-telegram-bot for the types and the Bot API client.

Every update is checked (secret header, constant time), validated field by field (any JSON gets 200 or
400, never 500), normalised and submitted. The turn's replies are committed to the outbox with the
turn, and the webhook answers 200 once that commit is done: the outbox worker sends them through
`deliver`, in order, retrying while the Bot API fails. The channel connects in the background, so
the rest of the bot runs while the Bot API is unreachable (GET /healthz says "degraded"); a token the
Bot API rejects disables the channel with one log line naming channels.telegram.token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

# Opt in to PTB's future behaviour (retry_after as a timedelta); _seconds() accepts both.
os.environ.setdefault("PTB_TIMEDELTA", "1")
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from adapters.wx_common import BackgroundTasks
from bot.channels import capabilities, split_text
from bot.config import TelegramChannel
from bot.delivery import DeliveryError
from bot.files import FileRejected, FileStore
from bot.health import ChannelHealth
from bot.types import Customer, Inbound, Kind, Outcome

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
SEND_ATTEMPTS = 3
CONNECT_BACKOFF = (1.0, 60.0)        # first and longest wait between connection attempts
PENDING = "telegram-file:"           # Inbound.image of a photo not fetched yet
MAX_ID = 2 ** 53                     # Telegram's ids fit in 52 bits; anything larger is not an update
TOKEN_KEY = "channels.telegram.token"
_SURROGATE = re.compile("[\ud800-\udfff]")
Submit = Callable[[Inbound, str | None], Awaitable[Outcome]]


class RateLimiter:
    """Telegram's (approximate) limits: ~1 message/s per chat, 20/min per group, 30/s overall."""

    def __init__(self, per_chat: float = 1.0, per_group_minute: int = 20, overall: int = 30, clock: Callable[[], float] = time.monotonic):
        self.per_chat, self.per_group, self.overall, self.clock = per_chat, per_group_minute, overall, clock
        self._last: dict[int, float] = {}
        self._group: dict[int, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def wait(self, chat_id: int, group: bool) -> None:
        async with self._lock:
            while True:
                now = self.clock()
                delay = max(0.0, self._last.get(chat_id, -1e9) + self.per_chat - now)
                _trim(self._all, now - 1.0)
                if len(self._all) >= self.overall:
                    delay = max(delay, self._all[0] + 1.0 - now)
                if group:
                    window = self._group.setdefault(chat_id, deque())
                    _trim(window, now - 60.0)
                    if len(window) >= self.per_group:
                        delay = max(delay, window[0] + 60.0 - now)
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            self._last[chat_id] = now
            self._all.append(now)
            if group:
                self._group[chat_id].append(now)


def _trim(window: deque[float], before: float) -> None:
    while window and window[0] <= before:
        window.popleft()


class TelegramAdapter:
    channel = "telegram"

    def __init__(self, config: TelegramChannel, submit: Submit, bot: Bot | None = None, limiter: RateLimiter | None = None,
                 files: FileStore | None = None):
        self.config = config
        self._submit = submit
        self.files = files  # buyers' photos are fetched into it; agents' images are sent from it
        self.bot = bot or Bot(config.token, base_url=config.api_base_url.rstrip("/") + "/bot",
                              base_file_url=config.api_base_url.rstrip("/") + "/file/bot",
                              request=HTTPXRequest(connection_pool_size=64, read_timeout=15.0))
        self.limiter = limiter or RateLimiter()
        self.health = ChannelHealth(self.channel)
        self._connector: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._groups: set[int] = set()
        self._parts_sent: dict[str, int] = {}   # long messages: parts already accepted, so a retry skips them
        self._tasks = BackgroundTasks("telegram")

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/telegram/webhook", self.webhook)

    async def start(self) -> None:
        """Connect in the background: an unreachable Bot API must not stop the other channels."""
        self._connector = asyncio.create_task(self._run(), name="xiaoer-telegram")

    async def stop(self) -> None:
        if self._connector:
            self._connector.cancel()
            try:
                await self._connector
            except (asyncio.CancelledError, Exception):
                pass
        await self._tasks.close(timeout=2.0)
        try:
            await self.bot.shutdown()
        except Exception as exc:
            log.warning("telegram shutdown: %s", type(exc).__name__)

    async def connected(self) -> bool:
        """Wait until the Bot API accepted the token (or the channel was disabled); True when usable."""
        await self._connected.wait()
        return not self.health.disabled

    async def _run(self) -> None:
        """getMe until it works (backoff 1 s doubling to 60 s), then poll when configured to."""
        wait = CONNECT_BACKOFF[0]
        while not await self._connect():
            if self.health.disabled:
                return
            await asyncio.sleep(wait)
            wait = min(wait * 2, CONNECT_BACKOFF[1])
        if self.config.mode == "polling":
            await self._poll()

    async def _connect(self) -> bool:
        try:
            await self.bot.initialize()
            if self.config.mode == "polling":
                await self.bot.delete_webhook()
        except InvalidToken:
            self._disable()
            return False
        except Exception as exc:  # NetworkError, TimedOut, httpx errors ...
            self.health.degrade(_why(exc))
            return False
        self.health.ok()
        if not self._connected.is_set():
            log.info("telegram: connected to the Bot API")
        self._connected.set()
        return True

    def _disable(self) -> None:
        # Never log PTB's message: it contains the token.
        self.health.disable(TOKEN_KEY, "the Bot API rejected the token (401/404)")
        self._connected.set()

    # ---- inbound --------------------------------------------------------------------------------
    async def webhook(self, request: web.Request) -> web.Response:
        """403 wrong secret, 413 too large, 400 not an update; 200 once the turn is committed (or the
        update is one we ignore); 503 only when the store is down, so Telegram retries."""
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not self.config.webhook_secret or not hmac.compare_digest(given.encode("utf-8", "replace"), self.config.webhook_secret.encode()):
            return web.json_response({"error": "forbidden", "message": "wrong or missing secret token"}, status=403)
        if (request.content_length or 0) > MAX_BODY:
            return web.json_response({"error": "too_large", "message": "update too large"}, status=413)
        try:
            data = json.loads(await request.read())
        except (ValueError, RecursionError):
            data = None
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not _is_id(update_id) or update_id < 0:  # type: ignore[operator]
            return web.json_response({"error": "bad_request", "message": "not a Telegram update"}, status=400)
        try:
            inbound = self.parse(data)  # type: ignore[arg-type]
        except Exception as exc:  # a shape PTB or we cannot read: acknowledged, so Telegram does not resend it
            log.warning("telegram update %d ignored: unreadable (%s)", update_id, type(exc).__name__)
            return web.json_response({})
        if inbound is None:
            return web.json_response({})
        try:
            inbound = await self.fetch_photo(inbound)
            outcome = await self._submit(inbound, None)
        except Exception as exc:
            log.error("telegram update %d not handled (%s); Telegram will resend it", update_id, type(exc).__name__)
            return web.json_response({"error": "unavailable", "message": "try again"}, status=503, headers={"Retry-After": "1"})
        if outcome.in_progress:  # an earlier attempt holds it; if that one died, the resend is handled
            return web.json_response({"error": "in_progress", "message": "try again"}, status=503, headers={"Retry-After": "1"})
        return web.json_response({})

    def parse(self, data: dict[str, Any]) -> Inbound | None:
        """An update as an Inbound, or None for kinds the bot does not answer. Raises on shapes that
        are not Telegram's (wrong types, huge ids), which the webhook acknowledges and ignores."""
        update = Update.de_json(data, self.bot)
        inbound = self.to_inbound(update)
        query = update.callback_query
        if inbound is not None and query is not None:
            self._tasks.spawn(self._answer_callback(_text(query.id)))
        return inbound

    async def handle(self, update: Update) -> None:
        """Submit one update (polling); its replies go out through the outbox."""
        inbound = self.to_inbound(update)
        if inbound is not None:
            if update.callback_query is not None:
                self._tasks.spawn(self._answer_callback(_text(update.callback_query.id)))
            await self._submit(await self.fetch_photo(inbound), None)

    def to_inbound(self, update: Update) -> Inbound | None:
        query, pending = update.callback_query, ""
        if query is not None and query.message is not None:
            chat, user, text, kind = query.message.chat, query.from_user, _text(query.data or ""), Kind.TEXT
        elif update.message is not None and update.message.from_user is not None:
            message = update.message
            chat, user = message.chat, message.from_user
            body = _text(message.text or message.caption or "")
            text, kind = (body, Kind.TEXT) if body.strip() else ("", Kind.UNSUPPORTED)
            photo = self._pick_photo(message.photo)
            if photo:  # fetched (async) by fetch_photo before the turn
                kind, pending = Kind.IMAGE, photo
        else:
            return None  # edits, channel posts, member updates: nothing for the bot to answer
        if not _is_id(chat.id) or user is None or not _is_id(user.id) or not _is_id(update.update_id):
            raise ValueError("ids must be integers")
        if chat.type != "private":
            self._groups.add(chat.id)
        locale = _text(user.language_code or "").lower()
        name = _text(user.first_name or "")[:64] or None
        return Inbound(
            channel=self.channel, conversation_id=f"telegram:{chat.id}", message_id=f"u{update.update_id}",
            customer=Customer(id=str(user.id), name=name,
                              locale="zh-TW" if locale in ("zh-hant", "zh-tw", "zh-hk") else ("zh-CN" if locale.startswith("zh") else ("en" if locale else None))),
            text=text.strip(), kind=kind, ts=time.time(), image=PENDING + pending if kind == Kind.IMAGE else "",
        )

    def _pick_photo(self, sizes: Any) -> str:
        """The file id of the largest size under the image limit (Telegram lists sizes small to large)."""
        if not sizes or self.files is None:
            return ""
        fitting = [p for p in sizes if (p.file_size or 0) <= self.files.max_bytes]
        return _text((fitting[-1] if fitting else sizes[0]).file_id)

    async def fetch_photo(self, inbound: Inbound) -> Inbound:
        """Download a buyer's photo through the Bot API into the file store. A photo that cannot be
        fetched or is refused (size, type) still reaches the bot, as a message it cannot read."""
        if not inbound.image.startswith(PENDING) or self.files is None:
            return inbound
        try:
            found = await self.bot.get_file(inbound.image[len(PENDING):])
            data = bytes(await found.download_as_bytearray())
            stored = await self.files.put(data, inbound.conversation_id)
        except (TelegramError, FileRejected, OSError) as exc:
            log.warning("%s: photo not fetched (%s)", inbound.conversation_id, type(exc).__name__)
            return dataclasses.replace(inbound, kind=Kind.UNSUPPORTED, image="")
        return dataclasses.replace(inbound, image=stored.id)

    async def _answer_callback(self, query_id: str) -> None:
        try:
            await self.bot.answer_callback_query(query_id)
        except TelegramError as exc:
            log.warning("answerCallbackQuery failed: %s", type(exc).__name__)

    async def _poll(self) -> None:
        """Long polling. The offset moves past an update only once it was handled, so an update that
        failed (store down) is read again."""
        offset, wait = 0, CONNECT_BACKOFF[0]
        while True:
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=25, allowed_updates=["message", "callback_query"])
            except InvalidToken:
                self._disable()
                return
            except TelegramError as exc:
                self.health.degrade(_why(exc))
                await asyncio.sleep(wait)
                wait = min(wait * 2, CONNECT_BACKOFF[1])
                continue
            self.health.ok()
            wait = CONNECT_BACKOFF[0]
            for update in updates:
                try:
                    await self.handle(update)
                except (ValueError, TypeError) as exc:
                    log.warning("telegram update %s ignored: unreadable (%s)", update.update_id, type(exc).__name__)
                except Exception as exc:
                    log.error("telegram update %s not handled (%s); reading it again", update.update_id, type(exc).__name__)
                    await asyncio.sleep(1.0)
                    break
                offset = update.update_id + 1

    # ---- outbound -------------------------------------------------------------------------------
    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        """The outbox's Sender: every message to a Telegram buyer."""
        if self.health.disabled:
            raise DeliveryError(f"telegram disabled ({TOKEN_KEY} rejected)", permanent=True)
        if not self._connected.is_set() and not await self._connect():
            if self.health.disabled:
                raise DeliveryError(f"telegram disabled ({TOKEN_KEY} rejected)", permanent=True)
            raise DeliveryError(f"telegram: Bot API unreachable ({self.health.reason})")
        chat_id = int(conversation_id.split(":", 1)[1])
        try:
            await self.send(chat_id, message)
        except RetryAfter as exc:
            raise DeliveryError("rate limited", retry_after=_seconds(exc.retry_after)) from exc
        except InvalidToken as exc:
            self._disable()
            raise DeliveryError(f"telegram disabled ({TOKEN_KEY} rejected)", permanent=True) from exc
        except (Forbidden, BadRequest) as exc:
            raise DeliveryError(f"refused: {exc.message}", permanent=True) from exc
        except NetworkError as exc:  # 5xx, timeouts, connection refused
            self.health.degrade(_why(exc))
            raise DeliveryError(f"telegram: {_why(exc)}") from exc
        except TelegramError as exc:
            raise DeliveryError(f"telegram: {_why(exc)}") from exc
        self.health.ok()

    async def send(self, chat_id: int, message: dict[str, Any]) -> None:
        """One message: split at 4096 characters, buttons as an inline keyboard under the last part.
        When a part fails, a retry of the same message starts at that part."""
        caps = capabilities(self.channel)
        if message.get("image") and self.files is not None:
            await self._send_photo(chat_id, message)
            return
        parts = split_text(str(message.get("text", "")), caps.max_text, caps.unit)
        buttons = message.get("buttons") or []
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(b["label"], callback_data=str(b["text"])[:64])] for b in buttons]) if buttons else None
        key = f"{chat_id}:{message.get('id', '')}"
        start = self._parts_sent.pop(key, 0) if message.get("id") else 0
        for i, part in enumerate(parts):
            if i < start:
                continue
            try:
                await self._send_one(chat_id, part, markup if i == len(parts) - 1 else None)
            except Exception:
                if i and message.get("id"):
                    if len(self._parts_sent) > 10000:
                        self._parts_sent.clear()
                    self._parts_sent[key] = i
                raise

    async def _send_photo(self, chat_id: int, message: dict[str, Any]) -> None:
        """An agent's image (with its text as the caption); an image gone from the store is refused."""
        assert self.files is not None
        found = await self.files.get(str(message["image"]))
        if found is None:
            raise DeliveryError("the image is no longer stored", permanent=True)
        await self.limiter.wait(chat_id, chat_id in self._groups)
        caption = str(message.get("text", ""))[:1024] or None
        await self.bot.send_photo(chat_id, photo=found.data, caption=caption)

    async def _send_one(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None) -> None:
        for attempt in range(SEND_ATTEMPTS):
            await self.limiter.wait(chat_id, chat_id in self._groups)
            try:
                await self.bot.send_message(chat_id, text, reply_markup=markup)
                return
            except RetryAfter as exc:
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(_seconds(exc.retry_after))


def _seconds(value: Any) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


def _is_id(value: Any) -> bool:
    """An integer id as Telegram sends them (bool is an int in Python, and not an id)."""
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_ID < value < MAX_ID


def _text(value: Any) -> str:
    """A string field, with lone surrogates (valid JSON, invalid UTF-8) replaced."""
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return _SURROGATE.sub("\ufffd", value)


def _why(exc: BaseException) -> str:
    """A short reason without URLs (they carry the token)."""
    message = getattr(exc, "message", "") or ""
    return f"{type(exc).__name__}: {message}"[:120] if message and "bot" not in message.lower() else type(exc).__name__
