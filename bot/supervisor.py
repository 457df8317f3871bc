"""What a supervisor sees live: every open chat with its owner, every group's queue, who is online.

Built from the same store reads as an agent's desk snapshot, over all agents and groups.
"""

from __future__ import annotations

from typing import Any

from bot.handoff import HandoffService
from bot.types import Sender


async def monitor(service: HandoffService) -> dict[str, Any]:
    """The supervisor's overview frame: agents, open chats and queues of every group."""
    store, config = service.store, service.config
    now = service.clock()
    agents, chats = [], []
    for a in config.agents:
        status, online, open_chats = await store.agent_state(a.username, now)
        agents.append({"username": a.username, "display_name": a.display_name or a.username, "role": a.role,
                       "status": status, "online": online, "capacity": a.capacity, "load": len(open_chats),
                       "groups": list(a.groups) or config.group_names})
        for cid in open_chats:
            chats.append(await _chat(service, cid, a.username))
    queue = []
    for group in config.group_names:
        for position, (cid, _) in enumerate(await store.queue(group), start=1):
            queue.append({**await _chat(service, cid, None), "group": group, "position": position})
    return {"type": "monitor", "agents": agents, "chats": chats, "queue": queue,
            "groups": [{"name": g, "display_name": config.group_display(g)} for g in config.group_names]}


async def _chat(service: HandoffService, cid: str, agent: str | None) -> dict[str, Any]:
    session = await service.store.load_session(cid, "")
    handoff = session.handoff
    last = [e for e in await service.store.history(cid, limit=10) if e.sender is Sender.VISITOR]
    return {
        "id": cid, "agent": agent, "channel": session.channel or cid.split(":", 1)[0],
        "customer": {"name": session.customer_name},
        "group": handoff.group if handoff else None, "reason": handoff.reason if handoff else None,
        "queued_at": handoff.queued_at if handoff else None,
        "assigned_at": handoff.assigned_at if handoff else None,
        "first_reply_at": handoff.first_reply_at if handoff else None,
        "preview": last[-1].text if last else "",
    }
