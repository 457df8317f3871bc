"""`python -m bot`: run the bot, check a config, try FAQ matching."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from bot.config import Config, ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Xiaoer (店小二) customer-service bot")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve everything enabled in the config")
    run.add_argument("--config", required=True)
    run.add_argument("--host", help="override server.host (e.g. 0.0.0.0 in a container)")
    run.add_argument("--port", type=int, help="override server.port")
    run.add_argument("--redis-url", help="override redis.url (e.g. redis://redis:6379/0 in docker-compose)")
    check = sub.add_parser("check-config", help="validate a config; exit 2 with one line per problem")
    check.add_argument("--config", required=True)
    check.add_argument("--strict", action="store_true", help="warnings (e.g. the demo password) fail the check too")
    sub.add_parser("hash-password", help="read a password on stdin, print its hash for [[agents]]")
    forget = sub.add_parser("forget", help="delete every key of one buyer's conversation (PIPL / GDPR requests)")
    forget.add_argument("--config", required=True)
    forget.add_argument("--conversation", required=True, help="conversation id, e.g. web:<visitor> or wechat:<openid>")
    tg = sub.add_parser("telegram", help="Telegram webhook registration")
    tg_sub = tg.add_subparsers(dest="telegram_command", required=True)
    for name in ("set-webhook", "delete-webhook"):
        tg_sub.add_parser(name).add_argument("--config", required=True)
    faq = sub.add_parser("faq", help="FAQ tools")
    faq_sub = faq.add_subparsers(dest="faq_command", required=True)
    match = faq_sub.add_parser("match", help="match buyer messages (one per line on stdin)")
    match.add_argument("--faq", action="append", required=True, help="FAQ file (repeatable)")
    match.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args.config, args.host, args.port, args.redis_url)
    if args.command == "check-config":
        return _check(args.config, args.strict)
    if args.command == "forget":
        return _forget(args.config, args.conversation)
    if args.command == "hash-password":
        return _hash_password()
    if args.command == "telegram":
        return _telegram(args.config, args.telegram_command)
    return _faq_match(args.faq, args.json)


def _load(path: str) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return None


def content_problems(config: Config) -> list[str]:
    """Problems in the files the config points to (FAQ, phrasebook), each naming the key."""
    from bot.faq import FaqFileError, load_faq_files
    from bot.phrasebook import Phrasebook, PhrasebookError

    problems = []
    for i, path in enumerate(config.faq_paths):
        try:
            load_faq_files([path])
        except FaqFileError as exc:
            problems.append(f"faq.files[{i}]: {exc}")
    try:
        load_faq_files(config.faq_paths)
    except FaqFileError as exc:
        if not problems:
            problems.append(f"faq.files: {exc}")
    try:
        Phrasebook.load(config.phrasebook_path)
    except PhrasebookError as exc:
        problems.append(f"shop.phrasebook_dir: {exc}")
    return problems


def _check(path: str, strict: bool = False) -> int:
    from bot.checks import check

    report = check(path)
    for line in report.errors:
        print(line, file=sys.stderr)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if report.errors or (strict and report.warnings):
        return 2
    config = load_config(path)
    enabled = [name for name in ("web", "telegram", "wechat", "wecom_kf") if getattr(config.channels, name).enabled]
    print(f"{path}: OK (channels: {', '.join(enabled) or 'none'}; store: {'embedded' if not config.redis.url else 'redis'})")
    return 0


def _telegram(path: str, command: str) -> int:
    """Register (or remove) the webhook with its secret, so Telegram signs every call."""
    config = _load(path)
    if config is None:
        return 2
    tg = config.channels.telegram
    if not tg.enabled or not tg.token:
        print("channels.telegram.enabled: enable the channel and set channels.telegram.token first", file=sys.stderr)
        return 2
    from telegram import Bot
    from telegram.error import TelegramError

    async def call() -> str:
        async with Bot(tg.token, base_url=tg.api_base_url.rstrip("/") + "/bot") as bot:
            if command == "delete-webhook":
                await bot.delete_webhook()
                return "webhook deleted"
            url = config.server.public_url.rstrip("/") + "/telegram/webhook"
            await bot.set_webhook(url, secret_token=tg.webhook_secret, allowed_updates=["message", "callback_query"])
            return f"webhook set to {url}"

    try:
        print(asyncio.run(call()))
    except TelegramError as exc:
        print(f"Telegram refused: {exc}", file=sys.stderr)
        return 1
    return 0


def _forget(path: str, conversation: str) -> int:
    config = _load(path)
    if config is None:
        return 2
    from bot.embedded import EmbeddedRedis
    from bot.store import Store

    async def run(url: str) -> int:
        store = Store.from_url(url, prefix=config.redis.prefix)
        try:
            return await store.forget(conversation)
        finally:
            await store.close()

    embedded = None
    url = config.redis.url
    if not url:  # the embedded store: use the running bot's server, or start it for this
        embedded = EmbeddedRedis(config.path(config.redis.data_dir))
        url = embedded.url if embedded.socket_path.exists() and _answers(embedded.url) else embedded.start()
        if not embedded._proc:
            embedded = None
    try:
        removed = asyncio.run(run(url))
    except ValueError as exc:
        print(f"--conversation: {exc}", file=sys.stderr)
        return 2
    finally:
        if embedded:
            embedded.stop()
    print(f"{conversation}: {removed} keys and entries deleted")
    return 0


def _answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _hash_password() -> int:
    from bot.auth import hash_password

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("a password needs at least 8 characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def _faq_match(files: list[str], as_json: bool) -> int:
    from bot.faq import FaqFileError, load_faq_files
    from bot.textnorm import detect_locale
    from bot.understanding import Understanding

    try:
        understanding = Understanding(load_faq_files([Path(f) for f in files]))
    except FaqFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    for line in sys.stdin:
        query = line.rstrip("\r\n")
        if not query.strip():
            continue
        r = understanding.read(query)
        answer = r.answer.answer_for(detect_locale(query)) if r.answer else None
        if as_json:
            print(json.dumps({"query": query, "id": r.answer.id if r.answer else None, "score": round(r.score, 4),
                              "answer": answer, "suggestions": [e.id for e in r.suggestions],
                              "decision": r.decision, "intent": r.intent}, ensure_ascii=False), flush=False)
        else:
            what = r.answer.id if r.answer else (
                f"did you mean {', '.join(e.id for e in r.suggestions)}" if r.suggestions
                else f"intent {r.intent}" if r.intent else "(no confident match)")
            print(f"{r.score:.2f}  {what}  {query}")
    return 0


def _run(path: str, host: str | None = None, port: int | None = None, redis_url: str | None = None) -> int:
    config = _load(path)
    if config is None:
        return 2
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:
        config = config.model_copy(update={"server": config.server.model_copy(update=overrides)})
    if redis_url is not None:
        config = config.model_copy(update={"redis": config.redis.model_copy(update={"url": redis_url})})
    problems = content_problems(config)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        return 2
    from bot.logs import setup_logging

    setup_logging(config)
    try:
        asyncio.run(_serve(config, path))
    except OSError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(config: Config, path: str | None = None) -> None:
    from bot.app import Xiaoer

    bot = Xiaoer(config, config_path=path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[list[str]]] = set()

    def reload() -> None:  # SIGHUP: FAQ, phrasebook and agents, validated first, in every process
        task = loop.create_task(bot.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    await bot.initialize()
    try:
        await bot.start()
        print(f"Xiaoer is running. Demo shop with the chat widget: {bot.url}/", flush=True)
        print(f"Health: {bot.url}/healthz   Metrics: {bot.url}/metrics   Stop: Ctrl-C", flush=True)
        await stop.wait()
        print("Stopping ...", flush=True)
    finally:
        await bot.stop()
