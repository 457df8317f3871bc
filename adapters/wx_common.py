"""What the WeChat Official Account and WeCom customer-service adapters share, because the two platforms
really do the same things: sha1 signatures, XML that must not carry a DOCTYPE, bounded callback bodies,
and an access_token that every process shares through the store (one refresher at a time, refreshed
before expiry, one refresh + one retry when the platform says the token is invalid)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from bot.channels import as_text, split_text
from bot.delivery import DeliveryError
from bot.files import FileRejected, FileStore
from bot.health import ChannelHealth
from bot.types import Sender, TranscriptEntry

log = logging.getLogger(__name__)

TOKEN_MARGIN = 300                   # refresh this long before the platform's expiry (old and new overlap 5 min)
LOCK_TTL = 10.0                      # the refresher's lock; the token endpoint answers in well under a second
LOCK_WAIT = 5.0                      # how long another process waits for the refresher
API_TIMEOUT = 10.0
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid / expired access_token: refresh once, retry once


class TokenStore(Protocol):
    """The shared access_token of one account, kept in Redis so every process sees the same value."""

    async def get_token(self) -> str | None:
        """The token stored by set_token, or None once its ttl has passed (None means "refresh now")."""

    async def set_token(self, token: str, ttl: float) -> None:
        """Store the access_token for `ttl` seconds."""

    async def refresh_lock(self, ttl: float) -> bool:
        """Take the refresher lock (SET NX PX); False when another process holds it."""

    async def release_refresh_lock(self) -> None:
        """Release the lock if this instance still holds it."""


WINDOW = 48 * 3600.0                 # API messages: at most 5 within 48 h of the buyer's last message
WINDOW_MESSAGES = 5


class QuotaStore(TokenStore, Protocol):
    """The token plus the per-buyer counts behind the 48-hour / 5-message rule both platforms apply."""

    async def mark_buyer_message(self, openid: str, ts: float) -> None:
        """Remember when the buyer last wrote (opens a new 48-hour window); keep it >= 48 h."""

    async def last_buyer_message(self, openid: str) -> float | None:
        """When the buyer last wrote, or None."""

    async def count_api_message(self, openid: str, message_key: str, window_start: float, now: float) -> int:
        """Record one API message (idempotent per message_key) and return how many were sent since
        window_start, this one included."""


async def check_quota(state: QuotaStore, buyer: str, key: str, now: float, closed: str, used_up: str) -> None:
    """Raise a permanent DeliveryError when the 48-hour window is closed or its 5 messages are used."""
    last = await state.last_buyer_message(buyer)
    if last is None or now - last >= WINDOW:
        raise DeliveryError(closed, permanent=True)
    if await state.count_api_message(buyer, key, last, now) > WINDOW_MESSAGES:
        raise DeliveryError(used_up, permanent=True)


def outbox_texts(message: dict[str, Any], limit: int) -> list[tuple[str, str]]:
    """An outbox message (buttons as numbered lines) cut to the platform's size, with a stable key
    per part so a retried delivery counts once against the quota."""
    buttons = tuple((str(b.get("label", "")), str(b.get("text", ""))) for b in message.get("buttons") or ())
    entry = TranscriptEntry(str(message.get("id", "")), Sender.BOT, str(message.get("text", "")), 0.0, buttons=buttons)
    key = entry.id or str(time.monotonic_ns())
    return [(f"{key}#{i}", text) for i, text in enumerate(split_text(as_text(entry), limit, "bytes")) if text]


Outbox = Callable[[str, str, Sequence[dict[str, Any]]], Awaitable[None]]  # Store.outbox_add


def outbox_messages(message_id: str, texts: Sequence[str], first: int = 0) -> list[dict[str, Any]]:
    """A turn's reply texts as outbox messages, with ids that stay the same when the turn is retried."""
    return [TranscriptEntry(f"{message_id}#{i}", Sender.BOT, text, 0.0).to_json() for i, text in enumerate(texts, start=first)]


class Reject(Exception):
    """A callback request we refuse; nothing has been submitted or stored."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def sign(*parts: str) -> str:
    """The platforms' signature: sha1 over the byte-sorted parts, joined."""
    return hashlib.sha1(b"".join(sorted(p.encode() for p in parts))).hexdigest()


def same(expected: str, given: str) -> bool:
    """Constant-time comparison; bytes, because compare_digest refuses non-ASCII str."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def no_doctype(raw: str | bytes) -> str:
    """The XML as text, refusing any DOCTYPE: the platforms never send one. (xmltodict also refuses
    entity declarations, so billion laughs and XXE fail twice.)"""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if "<!doctype" in text.lower():
        raise ValueError("DOCTYPE not allowed")
    return text


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes whether or not Content-Length says so."""
    if request.content_length is not None and request.content_length > limit:
        raise Reject(413, "body too large")
    body = bytearray()
    while chunk := await request.content.read(16384):
        body += chunk
        if len(body) > limit:
            raise Reject(413, "body too large")
    return bytes(body)


class ApiClient:
    """JSON calls to one platform account, with the shared access_token. Errors are DeliveryError and
    never carry the URL: it holds the access_token or the secret."""

    def __init__(self, name: str, base_url: str, token_path: str, token_params: dict[str, str],
                 cache: TokenStore, http: aiohttp.ClientSession | None = None, credentials: dict[int, str] | None = None):
        self.name = name
        self.health = ChannelHealth(name)      # GET /healthz: degraded while the API fails, disabled on bad credentials
        self.credentials = credentials or {}   # token-endpoint errcode -> the config key it blames
        self.base_url = base_url.rstrip("/")
        self.token_path = token_path
        self.token_params = token_params
        self.cache = cache
        self._http = http
        self._own_http = http is None
        self._refreshing = asyncio.Lock()

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    async def call(self, method: str, path: str, params: dict[str, str], body: Any = None,
                   form: aiohttp.FormData | None = None) -> dict[str, Any]:
        """One API call (a JSON body, or a multipart `form`); DeliveryError (transient) for HTTP
        errors, timeouts and non-JSON answers."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT))
        data: Any = form if form is not None else json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        headers = {"Content-Type": "application/json; charset=utf-8"} if data is not None and form is None else None
        try:
            async with self._http.request(method, self.base_url + path, params=params, data=data,
                                          headers=headers) as resp:
                if resp.status == 429 or resp.status >= 500:
                    retry = resp.headers.get("Retry-After", "")
                    if resp.status >= 500:
                        self.health.degrade(f"http {resp.status}")
                    raise DeliveryError(f"{self.name} http {resp.status}",
                                        retry_after=float(retry) if retry.isdigit() else None)
                if resp.status != 200:
                    raise DeliveryError(f"{self.name} http {resp.status}")
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            self.health.degrade(f"unreachable ({type(exc).__name__})")
            raise DeliveryError(f"{self.name} api unreachable ({type(exc).__name__})") from None
        if not isinstance(answer, dict):
            raise DeliveryError(f"{self.name} api: unexpected answer")
        self.health.ok()
        return answer

    async def post(self, path: str, body: Any) -> dict[str, Any]:
        """POST with the access_token; an invalid token is refreshed once and the call retried once.
        Returns the platform's answer (errcode may be non-zero: the caller knows what it means)."""
        token = await self.access_token()
        data = await self.call("POST", path, {"access_token": token}, body)
        if data.get("errcode", 0) in TOKEN_ERRORS:
            token = await self.access_token(stale=token)
            data = await self.call("POST", path, {"access_token": token}, body)
        return data

    async def download(self, path: str, params: dict[str, str], limit: int) -> bytes:
        """A file by GET with the access_token (e.g. a buyer's picture). DeliveryError when the
        platform answers JSON (an error), fails, or the file is larger than `limit` bytes."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT))
        token = await self.access_token()
        try:
            async with self._http.get(self.base_url + path, params={**params, "access_token": token}) as resp:
                if resp.status != 200:
                    raise DeliveryError(f"{self.name} http {resp.status}")
                if resp.content_type in ("application/json", "text/plain"):
                    answer = await resp.json(content_type=None)
                    raise DeliveryError(f"{self.name} {answer.get('errcode') if isinstance(answer, dict) else '?'}: no file")
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > limit:
                        raise DeliveryError(f"{self.name}: file over {limit} bytes", permanent=True)
                return bytes(data)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise DeliveryError(f"{self.name} api unreachable ({type(exc).__name__})") from None

    async def upload(self, path: str, params: dict[str, str], field: str, filename: str, data: bytes, ctype: str) -> dict[str, Any]:
        """A multipart upload with the access_token (e.g. an agent's picture); the platform's answer."""
        form = aiohttp.FormData()
        form.add_field(field, data, filename=filename, content_type=ctype)
        return await self.call("POST", path, {**params, "access_token": await self.access_token()}, form=form)

    async def access_token(self, stale: str | None = None) -> str:
        """The shared token; `stale` is one the platform just refused. One refresher across processes."""
        if self.health.disabled:
            raise DeliveryError(f"{self.name} disabled ({self.health.reason})", permanent=True)
        token = await self.cache.get_token()
        if token and token != stale:
            return token
        async with self._refreshing:  # one refresher per process ...
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                token = await self.cache.get_token()
                if token and token != stale:
                    return token
                if await self.cache.refresh_lock(LOCK_TTL):  # ... and one across processes
                    try:
                        token = await self.cache.get_token()
                        return token if token and token != stale else await self._fetch_token()
                    finally:
                        await self.cache.release_refresh_lock()
                if time.monotonic() > deadline:
                    raise DeliveryError(f"{self.name}: access_token refresh by another process did not finish")
                await asyncio.sleep(0.05)

    async def _fetch_token(self) -> str:
        data = await self.call("GET", self.token_path, self.token_params)
        token, expires = data.get("access_token"), data.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires, int):
            code = data.get("errcode")
            if code in self.credentials:  # one line naming the key, then no more calls until fixed
                self.health.disable(self.credentials[code], f"{self.name} refused the credentials (errcode {code})")
            else:
                log.error("%s %s refused: %s %s", self.name, self.token_path, code, data.get("errmsg", ""))
            # -1 is "system busy"; anything else (bad secret, IP not allow-listed, daily limit) needs a human.
            raise DeliveryError(f"{self.name} token {code}: {data.get('errmsg', '')}", permanent=code != -1)
        await self.cache.set_token(token, max(60, expires - TOKEN_MARGIN))
        log.info("%s access_token refreshed (expires in %d s)", self.name, expires)
        return token


def reply_texts(replies: Sequence[TranscriptEntry], limit: int) -> list[str]:
    """All replies of a turn as one text (blank lines between), cut to the platform's message size:
    fewer messages, because both platforms allow only 5 API messages per buyer message."""
    joined = "\n\n".join(t for t in (as_text(e).strip() for e in replies) if t)
    return split_text(joined, limit, "bytes") if joined else []


class BackgroundTasks:
    """Tasks that outlive the platform's request (late sends, pulls); finished or cancelled on close."""

    def __init__(self, name: str):
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], report: bool = True) -> asyncio.Task[Any]:
        """`report=False` when the caller awaits the task and handles its errors itself."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, report))
        return task

    def _done(self, task: asyncio.Task[Any], report: bool) -> None:
        self._tasks.discard(task)
        if report and not task.cancelled() and task.exception() is not None:
            log.error("%s background task failed", self.name, exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until the tasks started so far are done."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self, timeout: float = 5.0) -> None:
        """Let running tasks finish (briefly), cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


MEDIA_ID = re.compile(r"^[A-Za-z0-9_@.-]{1,256}$")


async def fetch_media(api: ApiClient, files: FileStore, media_id: str, owner: str) -> str | None:
    """A buyer's picture by media/get (the same call on WeChat and WeCom) into the file store: its
    file id, or None when it cannot be fetched or is refused (the buyer still gets an answer)."""
    try:
        data = await api.download("/cgi-bin/media/get", {"media_id": media_id}, files.max_bytes)
        return (await files.put(data, owner)).id
    except (DeliveryError, FileRejected) as exc:
        log.warning("%s: picture not fetched (%s)", owner, exc)
        return None


async def upload_image(api: ApiClient, files: FileStore, file_id: str) -> str:
    """An agent's picture uploaded as temporary media (media/upload); its media_id. DeliveryError
    when the file is gone (permanent) or the platform refuses it."""
    found = await files.get(file_id)
    if found is None:
        raise DeliveryError("the image is no longer stored", permanent=True)
    media = await api.upload("/cgi-bin/media/upload", {"type": "image"}, "media", "image", found.data, found.content_type)
    if not media.get("media_id"):
        raise DeliveryError(f"{api.name} {media.get('errcode')}: image upload refused")
    return str(media["media_id"])
