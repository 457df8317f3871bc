"""check-config: each rule with a bad file, and every problem reported in one run."""

from __future__ import annotations

import json

from bot.auth import hash_password
from bot.checks import DEMO_PASSWORD, check
from tests.bot.test_config import run_cli
from tests.desk_client import PASSWORD_HASH

DEMO_HASH = hash_password(DEMO_PASSWORD)


def write(tmp_path, agents: list[tuple[str, str]] = (), faq: str | None = None, extra: str = "") -> str:
    lines = [extra]
    if faq is not None:
        (tmp_path / "faq.toml").write_text(faq, encoding="utf-8")
        lines.append('[faq]\nfiles = ["faq.toml"]')
    for name, value in agents:
        lines.append(f"[[agents]]\nusername = {json.dumps(name)}\npassword_hash = {json.dumps(value)}")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


GOOD_FAQ = '[[faq]]\nid = "a"\nquestions = ["q"]\nanswer = "亲，好的"\n'


def test_a_plaintext_password_is_an_error(tmp_path):
    report = check(write(tmp_path, [("alice", "hunter2-secret")], GOOD_FAQ))
    assert report.errors == ["agents[0].password_hash: looks like a plain password, not a hash; store the output of "
                             "`python -m bot hash-password` instead"]


def test_a_malformed_hash_is_an_error(tmp_path):
    report = check(write(tmp_path, [("alice", "$argon2id$v=19$m=65536,t=3,p=4$broken")], GOOD_FAQ))
    assert report.errors == ["agents[0].password_hash: not a valid argon2 hash (make one with `python -m bot hash-password`)"]


def test_the_demo_password_warns_and_fails_only_when_strict(tmp_path):
    path = write(tmp_path, [("alice", PASSWORD_HASH), ("bob", DEMO_HASH)], GOOD_FAQ)
    report = check(path)
    assert report.errors == [] and report.warnings == [
        "agents[1].password_hash: still the published demo password 'xiaoer-demo'; set a new one before going live"]
    relaxed = run_cli("check-config", "--config", path)
    assert relaxed.returncode == 0 and "warning: agents[1].password_hash" in relaxed.stderr
    assert run_cli("check-config", "--config", path, "--strict").returncode == 2


def test_faq_duplicate_ids_and_empty_answers_are_all_reported(tmp_path):
    faq = GOOD_FAQ + '[[faq]]\nid = "b"\nquestions = ["x"]\nanswer = "  "\n[[faq]]\nid = "a"\nquestions = ["y"]\nanswer = "ok"\n'
    report = check(write(tmp_path, faq=faq))
    name = str(tmp_path / "faq.toml")
    assert report.errors == [f"faq.files[0]: {name}: faq[1].answer: must be a non-empty string",
                             f'faq.files[0]: {name}: faq[2].id: duplicate id "a"']


def test_every_problem_in_one_run(tmp_path):
    faq = '[[faq]]\nid = "a"\nquestions = ["q"]\nanswer = ""\n'
    path = write(tmp_path, [("alice", "plain-password")], faq, extra='[shop]\ntimezone = "Mars/Olympus"\n[server]\nport = "x"\n')
    result = run_cli("check-config", "--config", path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert any(line.startswith("shop.timezone:") for line in lines)
    assert any(line.startswith("server.port:") for line in lines)
    assert any(line.startswith("agents[0].password_hash: looks like a plain password") for line in lines)
    assert any(line.endswith("faq[0].answer: must be a non-empty string") for line in lines)


def test_the_demo_faq_warns_and_fails_only_when_strict(tmp_path):
    """Leaving [faq] out answers buyers from the demo shop's FAQ: fine for a try, not for going live."""
    path = write(tmp_path, [("alice", PASSWORD_HASH)])
    report = check(path)
    assert report.errors == [] and report.warnings == [
        "faq.files[0]: the demo shop's FAQ (demo-shop.toml); list your shop's own FAQ files before going live"]
    assert run_cli("check-config", "--config", path).returncode == 0
    assert run_cli("check-config", "--config", path, "--strict").returncode == 2
    assert check(write(tmp_path, [("alice", PASSWORD_HASH)], GOOD_FAQ)).warnings == []
