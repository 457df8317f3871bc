"""Channel health, as GET /healthz reports it: one channel never stops the others.

A channel is "ok", "degraded" (its platform API is unreachable or failing; work is retried in the
background and the rest of the bot runs on) or "disabled" (the platform refused our credentials; only
a config change helps). Each change of state is logged once, so an outage is one line, not a line per
message.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

OK, DEGRADED, DISABLED = "ok", "degraded", "disabled"


class ChannelHealth:
    def __init__(self, channel: str):
        self.channel = channel
        self.state = OK
        self.reason = ""

    @property
    def disabled(self) -> bool:
        return self.state == DISABLED

    def ok(self) -> None:
        if self.state == DEGRADED:
            log.info("%s: platform API reachable again", self.channel)
            self.state, self.reason = OK, ""

    def degrade(self, reason: str) -> None:
        if self.state == OK:
            log.warning("%s: platform API unavailable (%s); retrying in the background", self.channel, reason)
            self.state, self.reason = DEGRADED, reason

    def disable(self, key: str, reason: str) -> None:
        """The platform refused the credentials named by `key` (e.g. channels.telegram.token)."""
        if self.state != DISABLED:
            log.error("%s: %s; the %s channel is disabled until the config is fixed", key, reason, self.channel)
            self.state, self.reason = DISABLED, f"{key}: {reason}"
