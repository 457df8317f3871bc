"""Logs: one structured line per handled event, JSON or text, and never a secret of the config or a
full phone number."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from bot.logs import Masker, setup_logging
from bot.types import Customer, Inbound
from tests.conftest import make_config
from tests.desk_client import PASSWORD_HASH, agent, handoff_sections

TOKEN = "7012345678:AAHk3xQ9VZr0yTn5Lq2WcB8dE4fG6hJ1mNo"
SECRETS = {
    "channels": {"web": {"secret": "web-hmac-key-0123456789abcdef"},
                 "telegram": {"enabled": True, "mode": "polling", "token": TOKEN, "api_base_url": "http://127.0.0.1:9"}},
}


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_no_secret_in_the_logs_and_one_line_per_event(start_bot, redis_url, prefix, restore_logging, fmt):
    sections = {**SECRETS, **handoff_sections(agent("alice", ["presales"]))}
    stream = io.StringIO()
    setup_logging(make_config(redis_url, prefix, **sections), stream, env={"XIAOER_LOG_FORMAT": fmt})
    bot = await start_bot(**sections)
    await bot.engine.submit(Inbound("web", "web:v1", "m1", Customer("v1"), text="我的手机号是13812345678，什么时候发货"))
    await bot.engine.submit(Inbound("web", "web:v1", "m1", Customer("v1"), text="again"))  # a duplicate
    logging.getLogger("xiaoer.test").warning("calling https://api.telegram.org/bot%s/getMe with %s", TOKEN, PASSWORD_HASH)
    logging.getLogger("xiaoer.test").warning("buyer left a number: %s", "13812345678")
    await asyncio.sleep(0.3)  # let the Telegram channel fail to connect (and log it)
    text = stream.getvalue()
    for secret in (TOKEN, TOKEN.split(":")[1], "web-hmac-key-0123456789abcdef", PASSWORD_HASH, "13812345678"):
        assert secret not in text
    assert "138****5678" in text
    if fmt == "json":
        lines = [json.loads(line) for line in text.splitlines()]
        turns = [line for line in lines if line["message"].startswith("handled")]
        assert [t["outcome"] for t in turns] == ["replied", "duplicate"]
        assert turns[0]["conversation"] == "web:v1" and "faq" in turns[0]["handler"] and turns[0]["latency_ms"] >= 0
    else:
        assert "conversation=web:v1" in text and "outcome=replied" in text and "latency_ms=" in text


def test_mask_patterns():
    mask = Masker(["s3cr3t-value"])
    assert mask("password=hunter2 and s3cr3t-value") == "password=*** and ***"
    assert mask("?access_token=ABC.def-123&x=1") == "?access_token=***&x=1"
    assert mask("+86 13912345678 / 1391234567") == "+86 139****5678 / 1391234567"
