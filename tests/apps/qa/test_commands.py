from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.apps.qa.conftest import FORKLIFT

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("library", "default_generator")]


def test_ask_json_contract(capsys: pytest.CaptureFixture[str]):
    call_command("ask", FORKLIFT, "--json")
    record = json.loads(capsys.readouterr().out)
    assert set(record) >= {"answer", "citations", "adapter", "timings"}
    assert set(record["timings"]) == {"retrieve_ms", "first_token_ms", "total_ms"}
    assert record["adapter"] == "base" and record["answer"]
    assert all(set(c) == {"document", "page", "section"} for c in record["citations"])


def test_ask_file_answers_one_question_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "questions.jsonl"
    path.write_text(
        json.dumps({"question": FORKLIFT}) + "\n\n" + json.dumps({"question": ""}) + "\n"
    )
    call_command("ask", "--file", str(path), "--json")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (
        len(records) == 2
        and records[0]["answer"]
        and "Please type a question." in records[1]["error"]
    )


def test_ask_file_with_a_bad_line_names_it(tmp_path: Path):
    path = tmp_path / "questions.jsonl"
    path.write_text('{"question": "ok"}\n{"q": 1}\n')
    with pytest.raises(CommandError, match=r"questions\.jsonl:2"):
        call_command("ask", "--file", str(path), "--json")
