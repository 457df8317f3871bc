"""Config: ${VAR} substitution, validation with errors that name the key, the example file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_config
from tests.conftest import ROOT


def problems(data: dict, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env=env or {})
    return info.value.problems


def test_example_config_is_valid():
    config = load_config(ROOT / "config.example.toml", env={})
    assert config.redis.url == "" and config.channels.web.enabled
    assert config.faq_paths[0] == ROOT / "phrasebook/faq/demo-shop.toml"
    assert config.shop.business_hours == "00:00-24:00"  # the demo is staffed around the clock


def test_environment_variables_are_substituted():
    config = parse_config({"redis": {"url": "redis://${HOST}:6379/0"}}, env={"HOST": "cache"})
    assert config.redis.url == "redis://cache:6379/0"


def test_missing_environment_variable_names_the_key():
    assert problems({"channels": {"web": {"secret": "${WIDGET_SECRET}"}}}) == [
        "channels.web.secret: environment variable WIDGET_SECRET is not set"
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"shop": {"colour": "red"}}, "shop.colour: unknown key"),
        ({"shop": {"timezone": "Mars/Olympus"}}, "shop.timezone: unknown time zone"),
        ({"shop": {"business_hours": "9-6"}}, "shop.business_hours: expected HH:MM-HH:MM"),
        ({"server": {"port": 70000}}, "server.port: "),
        ({"faq": {"miss_limit": 0}}, "faq.miss_limit: "),
        ({"channels": {"web": {"allowed_origins": "*"}}}, "channels.web.allowed_origins: "),
        ({"channels": {"telegram": {"mode": "carrier-pigeon"}}}, "channels.telegram.mode: "),
        ({"agents": [{"username": "ann", "password_hash": "x", "groups": ["vip"]}]}, "agents[0].groups[0]: unknown group 'vip'"),
        ({"agents": [{"username": "ann"}]}, "agents[0].password_hash: "),
        ({"groups": [{"name": "a"}, {"name": "a"}]}, "groups[1].name: duplicate group 'a'"),
        ({"redis": {"prefix": "{x}"}}, "redis.prefix: "),
        ({"base_dir": "/"}, "base_dir: unknown key"),
    ],
)
def test_invalid_values_name_the_key(data: dict, expected: str):
    found = problems(data)
    assert any(line.startswith(expected) for line in found), found


def test_every_problem_is_reported_on_its_own_line():
    found = problems({"server": {"port": -1, "hostname": "x"}, "faq": {"miss_limit": 0}})
    assert len(found) == 3


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_check_config_exit_codes(tmp_path: Path):
    ok = run_cli("check-config", "--config", "config.example.toml")
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[channels.telegram]\nenabled = true\ntokn = "x"\n[shop]\ntimezone = "Nowhere/Land"\n', encoding="utf-8")
    result = run_cli("check-config", "--config", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "channels.telegram.tokn: unknown key" in lines
    assert any(line.startswith("shop.timezone: ") for line in lines)
    assert "Traceback" not in result.stderr


def test_check_config_reports_a_broken_faq_file(tmp_path: Path):
    faq = tmp_path / "faq.toml"
    faq.write_text('[[faq]]\nid = "Bad Id"\nquestions = ["x"]\nanswer = "y"\n', encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[faq]\nfiles = ["{faq.name}"]\n', encoding="utf-8")
    result = run_cli("check-config", "--config", str(cfg))
    assert result.returncode == 2 and result.stderr.startswith("faq.files[0]: ")
    assert "faq[0].id" in result.stderr


def test_check_config_on_unreadable_or_invalid_toml(tmp_path: Path):
    missing = run_cli("check-config", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nport = 1", encoding="utf-8")
    result = run_cli("check-config", "--config", str(broken))
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_agent_role_defaults_to_agent_and_a_bad_role_names_the_key():
    base = {"username": "li", "password_hash": "x"}
    config = parse_config({"agents": [base, {**base, "username": "wang", "role": "supervisor"}]}, env={})
    assert [a.is_supervisor for a in config.agents] == [False, True]
    assert problems({"agents": [{**base, "role": "boss"}]})[0].startswith("agents[0].role:")
