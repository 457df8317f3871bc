"""The Telegram channel: a webhook (or long polling for development) on our own aiohttp server,
python-telegram-bot for the types and the Bot API client.

Every update is checked (secret header, constant time), normalised and submitted; the turn's replies
go back through a rate limiter (per chat, per group, overall) that honours 429 retry_after. Later
messages (agent replies, notices) come through `deliver`, called by the outbox worker.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

# Opt in to PTB's future behaviour (retry_after as a timedelta); _seconds() accepts both.
os.environ.setdefault("PTB_TIMEDELTA", "1")
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from bot.channels import capabilities, split_text
from bot.config import TelegramChannel
from bot.delivery import DeliveryError
from bot.types import Customer, Inbound, Kind, Outcome

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
SEND_ATTEMPTS = 3
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

    def __init__(self, config: TelegramChannel, submit: Submit, bot: Bot | None = None, limiter: RateLimiter | None = None):
        self.config = config
        self._submit = submit
        self.bot = bot or Bot(config.token, base_url=config.api_base_url.rstrip("/") + "/bot",
                              request=HTTPXRequest(connection_pool_size=64, read_timeout=15.0))
        self.limiter = limiter or RateLimiter()
        self._polling: asyncio.Task[None] | None = None
        self._groups: set[int] = set()

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/telegram/webhook", self.webhook)

    async def start(self) -> None:
        await self.bot.initialize()
        if self.config.mode == "polling":
            await self.bot.delete_webhook()
            self._polling = asyncio.create_task(self._poll(), name="xiaoer-telegram-polling")

    async def stop(self) -> None:
        if self._polling:
            self._polling.cancel()
            try:
                await self._polling
            except (asyncio.CancelledError, Exception):
                pass
        await self.bot.shutdown()

    # ---- inbound --------------------------------------------------------------------------------
    async def webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not self.config.webhook_secret or not hmac.compare_digest(given.encode(), self.config.webhook_secret.encode()):
            return web.json_response({"error": "forbidden", "message": "wrong or missing secret token"}, status=403)
        if (request.content_length or 0) > MAX_BODY:
            return web.json_response({"error": "too_large", "message": "update too large"}, status=413)
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, self.bot) if isinstance(data, dict) and "update_id" in data else None
        except (ValueError, TypeError, KeyError):
            update = None
        if update is None:
            return web.json_response({"error": "bad_request", "message": "not a Telegram update"}, status=400)
        await self.handle(update)
        return web.json_response({})

    async def handle(self, update: Update) -> None:
        """Submit one update and send the turn's replies. Unknown update kinds are acknowledged."""
        inbound = await self.to_inbound(update)
        if inbound is None:
            return
        outcome = await self._submit(inbound, "telegram")
        chat_id = int(inbound.conversation_id.split(":", 1)[1])
        for entry in outcome.replies:
            await self.send(chat_id, entry.to_json())

    async def to_inbound(self, update: Update) -> Inbound | None:
        query = update.callback_query
        if query is not None and query.message is not None:
            await self._answer_callback(query.id)
            chat, user, text, kind = query.message.chat, query.from_user, query.data or "", Kind.TEXT
        elif update.message is not None and update.message.from_user is not None:
            message = update.message
            chat, user = message.chat, message.from_user
            text, kind = (message.text, Kind.TEXT) if message.text else ("", Kind.UNSUPPORTED)
        else:
            return None  # edits, channel posts, member updates: nothing for the bot to answer
        if chat.type != "private":
            self._groups.add(chat.id)
        locale = user.language_code or ""
        return Inbound(
            channel=self.channel, conversation_id=f"telegram:{chat.id}", message_id=f"u{update.update_id}",
            customer=Customer(id=str(user.id), name=user.first_name or None,
                              locale="zh-TW" if locale in ("zh-hant", "zh-tw", "zh-hk") else ("zh-CN" if locale.startswith("zh") else ("en" if locale else None))),
            text=text.strip(), kind=kind, ts=time.time(),
        )

    async def _answer_callback(self, query_id: str) -> None:
        try:
            await self.bot.answer_callback_query(query_id)
        except TelegramError as exc:
            log.warning("answerCallbackQuery failed: %s", exc)

    async def _poll(self) -> None:
        offset = 0
        while True:
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=25, allowed_updates=["message", "callback_query"])
            except TelegramError as exc:
                log.warning("getUpdates failed: %s", exc)
                await asyncio.sleep(2.0)
                continue
            for update in updates:
                offset = update.update_id + 1
                try:
                    await self.handle(update)
                except Exception:
                    log.exception("update %s failed", update.update_id)

    # ---- outbound -------------------------------------------------------------------------------
    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        """The outbox's Sender: agent replies and notices."""
        chat_id = int(conversation_id.split(":", 1)[1])
        try:
            await self.send(chat_id, message)
        except RetryAfter as exc:
            raise DeliveryError("rate limited", retry_after=_seconds(exc.retry_after)) from exc
        except (Forbidden, BadRequest) as exc:
            raise DeliveryError(f"refused: {exc.message}", permanent=True) from exc
        except TelegramError as exc:
            raise DeliveryError(str(exc)) from exc

    async def send(self, chat_id: int, message: dict[str, Any]) -> None:
        """One message: split at 4096 characters, buttons as an inline keyboard under the last part."""
        caps = capabilities(self.channel)
        parts = split_text(str(message.get("text", "")), caps.max_text, caps.unit)
        buttons = message.get("buttons") or []
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(b["label"], callback_data=str(b["text"])[:64])] for b in buttons]) if buttons else None
        for i, part in enumerate(parts):
            await self._send_one(chat_id, part, markup if i == len(parts) - 1 else None)

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
