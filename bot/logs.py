"""Logging: one line per record, JSON in production or readable in a terminal, never a secret.

`[logging] format = "json"` (or XIAOER_LOG_FORMAT=json, which wins) gives one JSON object per line
with the record's structured fields (conversation, handler, outcome, latency_ms ...); "text" gives
`time level logger: message key=value ...`. Every line passes through the mask: the config's
secrets (tokens, app secrets, AES keys, password hashes, the Redis password), anything shaped like
a Telegram bot token or an access_token parameter, and mainland mobile numbers (kept as 138****5678).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import IO, Any
from urllib.parse import urlsplit

from bot.config import Config

MASK = "***"
_PHONE = re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_PATTERNS = (
    re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b"),                            # Telegram bot token
    re.compile(r"(?i)((?:access_token|secret|password|token)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"),
)
# Fields of a LogRecord that are not extras.
_STANDARD = set(vars(logging.LogRecord("x", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def config_secrets(config: Config) -> list[str]:
    """Every secret value in the config (long enough to be worth masking)."""
    ch = config.channels
    values = [ch.web.secret, ch.telegram.token, ch.telegram.webhook_secret, ch.wechat.app_secret, ch.wechat.token,
              ch.wechat.encoding_aes_key, ch.wecom_kf.secret, ch.wecom_kf.token, ch.wecom_kf.encoding_aes_key]
    values += [a.password_hash for a in config.agents]
    password = urlsplit(config.redis.url).password if config.redis.url else None
    if password:
        values.append(password)
    return sorted({v for v in values if v and len(v) >= 6}, key=len, reverse=True)


class Masker:
    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = list(secrets)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
        return _PHONE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    def __init__(self, mask: Masker):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return self.mask(line)


class JsonFormatter(logging.Formatter):
    def __init__(self, mask: Masker):
        super().__init__()
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return self.mask(json.dumps(out, ensure_ascii=False, default=str))


def setup_logging(config: Config, stream: IO[str] | None = None, env: dict[str, str] | None = None) -> logging.Handler:
    """Install the one handler on the root logger; returns it (tests read its stream)."""
    env = os.environ if env is None else env
    fmt = env.get("XIAOER_LOG_FORMAT") or config.logging.format
    mask = Masker(config_secrets(config))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(mask) if fmt == "json" else TextFormatter(mask))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.logging.level.upper())
    return handler
