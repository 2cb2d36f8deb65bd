"""``manage.py judge``: one item from flags, or one JSON object a line from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

QUESTION = "What leak rate triggers mandatory refrigerant repair?"
REFERENCE = "A leak rate above 10% a year must be repaired within 30 days."


def _run(*args: str, capsys: pytest.CaptureFixture) -> list[dict]:
    call_command("judge", *args)
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_one_item_from_flags(capsys: pytest.CaptureFixture):
    [result] = _run(
        "--question",
        QUESTION,
        "--response",
        REFERENCE,
        "--reference",
        REFERENCE,
        "--json",
        capsys=capsys,
    )
    assert set(result) == {"score", "comment", "backend", "prompt_version"}
    assert result["backend"] == "local" and result["score"] >= 4.5 and result["comment"]
    [wrong] = _run(
        "--question",
        QUESTION,
        "--response",
        "Ducts are sealed with mastic.",
        "--reference",
        REFERENCE,
        "--json",
        capsys=capsys,
    )
    assert wrong["score"] <= 1.5


def test_a_file_gives_one_object_per_line_and_names_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    path = tmp_path / "items.jsonl"
    path.write_text(
        json.dumps({"question": QUESTION, "response": REFERENCE, "reference": REFERENCE})
        + "\n{oops\n"
        + json.dumps(
            {
                "question": QUESTION,
                "response": "The documents I searched do not cover this.",
                "reference": REFERENCE,
            }
        )
        + "\n"
        + json.dumps({"question": QUESTION})
        + "\n"
    )
    with pytest.raises(CommandError, match="2 of 4 items could not be judged"):
        call_command("judge", "--file", str(path), "--json")
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4
    assert rows[0]["score"] >= 4.5
    assert rows[1] == {
        "line": 2,
        "error": "line 2: not JSON (Expecting property name enclosed in double quotes)",
    }
    assert rows[2]["score"] <= 2
    assert rows[3]["error"] == "line 4: 'response' is missing or empty"


def test_missing_arguments_are_a_clear_error():
    with pytest.raises(CommandError, match="--question and --response"):
        call_command("judge", "--question", QUESTION)
