"""`python -m bot faq match` as in the contract: one JSON object per input line."""

from __future__ import annotations

import json

from tests.bot.test_config import run_cli

FAQ = "phrasebook/faq/demo-shop.toml"


def test_faq_match_json_lines():
    result = run_cli("faq", "match", "--faq", FAQ, "--json", stdin="什么时候发货\n\n今天天气怎么样\n請問怎麼退貨\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["什么时候发货", "今天天气怎么样", "請問怎麼退貨"]
    assert {"query", "id", "score", "answer", "suggestions"} <= set(rows[0])
    assert rows[0]["id"] == "shipping-time" and rows[0]["answer"] and isinstance(rows[0]["score"], float)
    assert rows[0]["suggestions"] == []  # [] whenever id is set
    assert rows[1]["id"] is None and rows[1]["answer"] is None and rows[1]["suggestions"] == []  # out of scope
    assert rows[2]["id"] and rows[2]["answer"] != json.loads(
        run_cli("faq", "match", "--faq", FAQ, "--json", stdin="请问怎么退货\n").stdout)["answer"]  # answered in Traditional


def test_faq_match_plain_output_and_bad_file(tmp_path):
    plain = run_cli("faq", "match", "--faq", FAQ, stdin="发票怎么开\n")
    assert plain.returncode == 0 and "invoice" in plain.stdout
    bad = tmp_path / "x.toml"
    bad.write_text("[[faq]]\nid = 1\n", encoding="utf-8")
    result = run_cli("faq", "match", "--faq", str(bad))
    assert result.returncode == 2 and "x.toml" in result.stderr and "Traceback" not in result.stderr


def test_faq_match_suggests_when_unsure():
    """An unsure reading offers 1-3 plausible entries (ids of the FAQ) and answers nothing."""
    result = run_cli("faq", "match", "--faq", FAQ, "--json", stdin="衣服洗完会不会变小\n")
    row = json.loads(result.stdout)
    assert row["id"] is None and 1 <= len(row["suggestions"]) <= 3
    assert "washing" in row["suggestions"]
