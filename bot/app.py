"""The application: builds the pieces from the config and runs them (initialize -> start -> stop)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.desk import Desk
from adapters.files import Files
from adapters.reports import SupervisorPages
from adapters.telegram import TelegramAdapter
from adapters.wechat import WeChatAdapter
from adapters.wecom_kf import WeComKfAdapter
from adapters.web import WebWidget
from bot import metrics
from bot.coach import Coach
from bot.delivery import Deliverer
from bot.config import Config
from bot.embedded import EmbeddedRedis
from bot.engine import Engine
from bot.encoder import Encoder
from bot.faq import load_faq_files
from bot.understanding import Understanding
from bot.files import FileStore
from bot.handoff import HandoffService
from bot.hub import Hub
from bot.phrasebook import Phrasebook
from bot.reload import ReloadError, load_content
from bot.reports import ReportMarks
from bot.router import Router
from bot.store import Store
from bot.timers import TimerRunner
from handlers.agent import AgentAction
from handlers.choice import Choice
from handlers.escalation import Escalation
from handlers.fallback import Fallback
from handlers.faq import FaqAnswer
from handlers.greeting import Greeting
from handlers.rating import Rating
from handlers.relay import HumanOwned
from handlers.smalltalk import SmallTalk
from handlers.supervisor import SupervisorAction
from handlers.timeout import TimerTick
from handlers.unfollow import Unfollow

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024


def build_router(config: Config, phrasebook: Phrasebook, understanding: Understanding) -> Router:
    """The handler order is the product's behaviour; keep it explicit."""
    clock = config.shop.clock
    groups = {g: config.group_display(g) for g in config.group_names}
    return Router([
        SupervisorAction(),                         # a supervisor takes over or reassigns a chat
        AgentAction(phrasebook, groups),            # the desk's reply / close / transfer
        TimerTick(phrasebook),                      # first-response timeout, idle close
        Unfollow(),                                 # the buyer left the account: close quietly
        Choice({e.id: e for e in understanding.entries}),  # a pick of "您是不是想问" (also while queued)
        HumanOwned(config.handoff.idle_close, phrasebook),  # a human owns the chat: the bot stays silent
        Rating(phrasebook),                         # 1-5 after a close
        Escalation(phrasebook, understanding, config.route, clock),  # asks for a human, complaint, dispute
        Greeting(phrasebook, clock, config.shop.name),
        SmallTalk(phrasebook, understanding),       # thanks, ok, bye, praise: warm, never a miss
        FaqAnswer(understanding, phrasebook, config.faq.miss_limit, config.route, clock),  # off hours: a left message
        Fallback(phrasebook),
    ])


class Xiaoer:
    """One bot process. Any number of them may share one Redis."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time, redis_url: str | None = None,
                 config_path: str | None = None):
        self.config = config
        self.config_path = config_path  # re-read on reload (None: reload the content files only)
        self.instance = uuid.uuid4().hex  # tells this process's own reload broadcast from others'
        self.desk: Desk | None = None
        self.pages: SupervisorPages | None = None
        self.understanding: Understanding | None = None
        self.clock = clock
        self._redis_url = redis_url if redis_url is not None else config.redis.url
        self.embedded: EmbeddedRedis | None = None
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.hub: Hub | None = None
        self.handoff: HandoffService | None = None
        self.timers: TimerRunner | None = None
        self.web: WebWidget | None = None
        self.telegram: TelegramAdapter | None = None
        self.wechat: WeChatAdapter | None = None
        self.wecom_kf: WeComKfAdapter | None = None
        self.deliverer: Deliverer | None = None
        self.files: FileStore | None = None
        self.app = web.Application(client_max_size=MAX_BODY)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def initialize(self) -> None:
        """Load content (failing fast on bad files), connect to Redis, build the pipeline and routes."""
        cfg = self.config
        phrasebook = Phrasebook.load(cfg.phrasebook_path, cfg.shop.locale)
        understanding = self.understanding = await asyncio.to_thread(
            Understanding, load_faq_files(cfg.faq_paths), encoder=Encoder(cfg.path(cfg.redis.data_dir) / "embeddings"))
        url = self._redis_url
        if not url:
            self.embedded = EmbeddedRedis(cfg.path(cfg.redis.data_dir))
            url = await asyncio.to_thread(self.embedded.start)
            log.info("embedded redis-server started, data in %s", self.embedded.data_dir)
        self.store = Store.from_url(url, prefix=cfg.redis.prefix, session_ttl=cfg.redis.session_ttl_days * 86400)
        await self.store.ping()
        self.handoff = HandoffService(cfg, self.store, phrasebook, self.clock)
        self.engine = Engine(self.store, build_router(cfg, phrasebook, understanding), cfg.shop.locale, self.clock,
                             routing=self.handoff.routing, after_commit=self.handoff.after_commit,
                             reports=ReportMarks(cfg.shop.zone))
        self.hub = Hub(self.store)
        self.timers = TimerRunner(self.store, self.engine.submit, self.handoff.drain, self.clock)
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/metrics", self.metrics)
        self.files = FileStore(self.store, cfg.channels.web.max_image_bytes)
        Files(self.files).mount(self.app)
        if cfg.channels.web.enabled:
            secret = cfg.channels.web.secret or await self.store.shared_secret("web")
            store = self.store
            self.web = WebWidget(
                cfg.channels.web, secret, self.engine.submit, store.history, self.hub.listen, cfg.server.public_url,
                agent_name=self.handoff.display, typing=self.handoff.buyer_typing, notice=self._phrase,
                files=self.files,
            )
            self.web.mount(self.app)
        desk = self.desk = Desk(cfg, self.handoff, Coach(phrasebook, understanding.classifier), self.engine.submit, self.hub.listen)
        desk.files = self.files
        desk.mount(self.app)
        self.pages = SupervisorPages(cfg, self.store, desk.agent_of, self.clock, self.answers, reload=self.reload,
                                     embed=lambda: self.understanding.embed if self.understanding else None)
        self.pages.mount(self.app)
        senders = {}
        if cfg.channels.telegram.enabled:
            self.telegram = TelegramAdapter(cfg.channels.telegram, self.engine.submit, files=self.files)
            self.telegram.mount(self.app)
            senders["telegram"] = self.telegram
        if cfg.channels.wechat.enabled:
            self.wechat = WeChatAdapter(cfg.channels.wechat, self.engine.submit,
                                        self.store.wechat_tokens(cfg.channels.wechat.app_id), self.store.outbox_add, clock=self.clock,
                                        files=self.files)
            self.wechat.mount(self.app)
            senders["wechat"] = self.wechat
        if cfg.channels.wecom_kf.enabled:
            self.wecom_kf = WeComKfAdapter(cfg.channels.wecom_kf, self.engine.submit,
                                           self.store.wecom_kf_state(cfg.channels.wecom_kf.corp_id), self.store.outbox_add,
                                           clock=self.clock, files=self.files)
            self.wecom_kf.mount(self.app)
            senders["wecom_kf"] = self.wecom_kf
        if senders:
            self.deliverer = Deliverer(self.store, senders, self.handoff.delivery_failed)

    async def _gauges(self) -> None:
        assert self.store is not None
        now = self.clock()
        online = {a.username: (await self.store.agent_state(a.username, now))[1] for a in self.config.agents}
        for group in self.config.group_names:
            metrics.QUEUE_LENGTH.labels(group).set(await self.store.queue_length(group))
            metrics.AGENTS_ONLINE.labels(group).set(sum(1 for a in self.config.members(group) if online.get(a.username)))

    def _phrase(self, pid: str, locale: str | None = None, **values: str) -> str:
        """A phrase from the current phrasebook (it may have been reloaded)."""
        assert self.handoff is not None
        return self.handoff.phrasebook.text(pid, locale, **values)

    def answers(self, text: str) -> bool:
        """Does the current FAQ answer this buyer message?"""
        return self.understanding is not None and self.understanding.read(text).answer is not None

    async def reload(self, broadcast: bool = True) -> list[str]:
        """Re-read the FAQ, the phrasebook and the agents. On any problem nothing changes and the
        problems are returned; otherwise every other process is told to reload too."""
        assert self.engine and self.handoff and self.desk and self.pages and self.store
        try:
            content = await asyncio.to_thread(load_content, self.config_path, self.config)
        except ReloadError as exc:
            log.warning("reload refused, the old content stays: %s", "; ".join(exc.problems))
            return exc.problems
        cfg = self.config = content.config
        self.understanding = content.understanding
        self.engine.router = build_router(cfg, content.phrasebook, content.understanding)
        self.handoff.config = self.desk.config = self.pages.config = cfg
        self.handoff.phrasebook = self.handoff.followups.phrasebook = content.phrasebook
        self.handoff.followups.config = cfg
        self.desk.coach = Coach(content.phrasebook, content.understanding.classifier)  # coaching by meaning too
        log.info("reloaded: %d FAQ entries, %d agents%s", len(content.understanding.entries), len(cfg.agents),
                 f"; restart to apply changes in {', '.join(content.needs_restart)}" if content.needs_restart else "")
        if broadcast:
            await self.store.publish({"type": "reload", "origin": self.instance})
        await self.store.publish({"type": "queue_changed", "broadcast": True})
        return []

    async def _on_reload(self, event: dict[str, Any]) -> None:
        if event.get("origin") != self.instance:
            await self.reload(broadcast=False)

    async def start(self) -> None:
        assert self.hub is not None and self.timers is not None
        self.hub.listen("reload", self._on_reload)
        await self.hub.start()
        await self.timers.start()
        if self.telegram:
            await self.telegram.start()
        if self.deliverer:
            await self.deliverer.start()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port)
        await site.start()
        bound = [a for a in self._runner.addresses if isinstance(a, tuple)]
        self.port = bound[0][1] if bound else self.config.server.port

    @property
    def url(self) -> str:
        host = self.config.server.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        return f"http://{shown}:{self.port}"

    async def stop(self) -> None:
        if self.timers:
            await self.timers.stop()
        if self.deliverer:
            await self.deliverer.stop()
        if self.telegram:
            await self.telegram.stop()
        if self.wechat:
            await self.wechat.close()
        if self.wecom_kf:
            await self.wecom_kf.close()
        if self._runner:
            await self._runner.cleanup()
            self._runner = None
        if self.hub:
            await self.hub.stop()
        if self.store:
            await self.store.close()
        if self.embedded:
            await asyncio.to_thread(self.embedded.stop)

    # ---- operational endpoints ------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        assert self.store is not None
        try:
            await asyncio.wait_for(self.store.ping(), timeout=2.0)
        except Exception as exc:
            return web.json_response({"status": "error", "redis": f"error: {type(exc).__name__}"}, status=503)
        channels = self.channel_health()
        status = "ok" if all(v == "ok" for v in channels.values()) else "degraded"
        return web.json_response({"status": status, "redis": "ok", **channels})

    def channel_health(self) -> dict[str, str]:
        """One key per enabled channel: "ok", "degraded" (platform API unreachable, retried in the
        background) or "disabled" (credentials refused). Never a reason to answer anything but 200."""
        out = {"web": "ok"} if self.config.channels.web.enabled else {}
        for name in ("telegram", "wechat", "wecom_kf"):
            adapter = getattr(self, name)
            if adapter is not None:
                health = getattr(adapter, "health", None)
                out[name] = health.state if health is not None else "ok"
        return out

    async def metrics(self, request: web.Request) -> web.Response:
        if self.store is not None:
            try:  # gauges read at scrape time: shared state, the same from every process
                await asyncio.wait_for(self._gauges(), timeout=2.0)
            except Exception as exc:
                log.warning("queue and presence gauges not updated: %s", exc)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
