"""Supervisors' pages and APIs: reports with charts, CSV export, FAQ gaps.

Every route needs a desk login (401 without) of an agent whose role is "supervisor" (403 otherwise).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import date, timedelta
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import Config
from bot.gaps import Embed, find_gaps
from bot.reports import CSV_COLUMNS, RangeError, build_report, csv_rows, parse_range, shop_day
from bot.store import Store
from bot.types import Sender

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
MAX_GAP_DAYS = 90


class SupervisorPages:
    def __init__(self, config: Config, store: Store, agent_of: Callable[[web.Request], Awaitable[str | None]],
                 clock: Callable[[], float], answered: Callable[[str], bool], embed: Callable[[], Embed | None] = lambda: None,
                 reload: Callable[[], Awaitable[list[str]]] | None = None):
        self.config = config
        self.store = store
        self.agent_of = agent_of
        self.clock = clock
        self.answered = answered  # does the current FAQ answer this text? (it may have been reloaded)
        self.embed = embed
        self._reload = reload

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/desk/reports", self.page)
        app.router.add_get("/desk/reports.js", self._static("reports.js", "text/javascript"))
        app.router.add_get("/desk/supervisor", self.live)
        app.router.add_get("/desk/supervisor.js", self._static("supervisor.js", "text/javascript"))
        app.router.add_get("/desk/ui.js", self._static("ui.js", "text/javascript"))
        app.router.add_get("/desk/api/reports", self.reports)
        app.router.add_get("/desk/api/reports.csv", self.reports_csv)
        app.router.add_get("/desk/api/faq-gaps", self.faq_gaps)
        app.router.add_post("/desk/api/reload", self.reload)

    async def supervisor(self, request: web.Request) -> str:
        """The logged-in supervisor, or an HTTP error (401 not logged in, 403 not a supervisor)."""
        username = await self.agent_of(request)
        if username is None:
            raise _error(web.HTTPUnauthorized, "not_logged_in", "log in at /desk/ first")
        if not self.config.is_supervisor(username):
            raise _error(web.HTTPForbidden, "forbidden", "仅主管可以查看 / supervisors only")
        return username

    async def page(self, request: web.Request) -> web.StreamResponse:
        return await self._page(request, "reports.html")

    async def live(self, request: web.Request) -> web.StreamResponse:
        return await self._page(request, "supervisor.html")

    async def _page(self, request: web.Request, name: str) -> web.StreamResponse:
        if await self.agent_of(request) is None:
            raise web.HTTPFound("/desk/")
        await self.supervisor(request)
        return web.FileResponse(STATIC / name, headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})

    def _static(self, name: str, ctype: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(STATIC / name, headers={"Content-Type": f"{ctype}; charset=utf-8", "Cache-Control": "no-cache"})
        return serve

    async def _report(self, request: web.Request) -> dict[str, Any]:
        await self.supervisor(request)
        today = shop_day(self.clock(), self.config.shop.zone)[0]
        try:
            days = parse_range(request.query.get("from"), request.query.get("to"), today)
        except RangeError as exc:
            raise _error(web.HTTPBadRequest, "bad_range", str(exc)) from None
        hashes = await self.store.report_days(days)
        agents = {a.username: a.display_name or a.username for a in self.config.agents}
        groups = {g: self.config.group_display(g) for g in self.config.group_names}
        return build_report(days, hashes, self.config.shop.timezone, agents, groups)

    async def reports(self, request: web.Request) -> web.Response:
        return web.json_response(await self._report(request), dumps=_dumps)

    async def reports_csv(self, request: web.Request) -> web.Response:
        report = await self._report(request)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_rows(report))
        name = f"xiaoer-report-{report['from']}-{report['to']}.csv"
        return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def faq_gaps(self, request: web.Request) -> web.Response:
        await self.supervisor(request)
        raw = request.query.get("days", "7")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_GAP_DAYS:
            raise _error(web.HTTPBadRequest, "bad_days", f"days is a whole number from 1 to {MAX_GAP_DAYS}")
        last = date.fromisoformat(shop_day(self.clock(), self.config.shop.zone)[0])
        days = [(last - timedelta(days=i)).isoformat() for i in range(int(raw))]
        rows = [row for day in await self.store.gap_days(days) for row in day]
        gaps = find_gaps(rows, self.answered, self.embed())
        for gap in gaps[:50]:
            gap.answers = await self.human_answers(gap.refs[:20])
        return web.json_response({"days": int(raw), "gaps": [g.to_json() for g in gaps[:50]]}, dumps=_dumps)

    async def reload(self, request: web.Request) -> web.Response:
        """The supervisor's reload button: FAQ, phrasebook and agents, in every process."""
        await self.supervisor(request)
        if self._reload is None:
            raise _error(web.HTTPNotFound, "not_available", "reload is not available here")
        problems = await self._reload()
        if problems:
            return web.json_response({"error": "invalid", "message": "refused; the old content stays", "problems": problems},
                                     status=422, dumps=_dumps)
        return web.json_response({"ok": True, "agents": len(self.config.agents)}, dumps=_dumps)

    async def human_answers(self, refs: list[tuple[str, str]], limit: int = 3) -> list[str]:
        """The first agent reply after each unanswered question, where an agent took the chat."""
        answers: list[str] = []
        for cid, mid in refs:
            history = await self.store.history(cid)
            ids = [e.id for e in history]
            if mid not in ids:
                continue  # expired or forgotten
            reply = next((e.text for e in history[ids.index(mid) + 1:] if e.sender is Sender.AGENT), None)
            if reply and reply not in answers:
                answers.append(reply)
            if len(answers) >= limit:
                break
        return answers


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _error(cls: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    return cls(text=json.dumps({"error": code, "message": message}, ensure_ascii=False), content_type="application/json")
