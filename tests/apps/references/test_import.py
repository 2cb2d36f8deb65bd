"""Reference sets from JSON Lines files: all or nothing, and re-importing changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.references.models import Reference, ReferenceSet
from apps.references.services import InvalidReferences, references_import
from tests import support

pytestmark = pytest.mark.django_db


def _lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_sample_set_imports_once_and_again_changes_nothing(tmp_path: Path):
    first = references_import(path=support.EVAL, set_name="validation")
    assert (first.created, first.updated, first.unchanged) == (40, 0, 0)
    before = list(Reference.objects.order_by("pk").values_list("pk", "updated_at"))
    again = references_import(path=support.EVAL, set_name="validation")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 40)
    assert list(Reference.objects.order_by("pk").values_list("pk", "updated_at")) == before

    s01 = Reference.objects.get(external_id="s01")
    assert s01.status == Reference.Status.VALIDATED
    assert s01.source == Reference.Source.IMPORTED
    assert (s01.page, s01.section, s01.key_facts) == (14, "1-9", ["10%", "30"])
    assert s01.question_embedding is not None
    assert Reference.objects.filter(answerable=False).count() == 4


def test_a_changed_record_is_updated_in_place(tmp_path: Path):
    records = [json.loads(line) for line in support.EVAL.read_text().splitlines()[:3]]
    references_import(path=_lines(tmp_path / "a.jsonl", records), set_name="training")
    records[1]["reference_answer"] = "A corrected answer."
    result = references_import(path=_lines(tmp_path / "a.jsonl", records), set_name="training")
    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    assert Reference.objects.get(external_id=records[1]["id"]).answer == "A corrected answer."
    # The same ids in another set are other references.
    references_import(path=_lines(tmp_path / "a.jsonl", records), set_name="validation")
    assert Reference.objects.count() == 6
    assert set(ReferenceSet.objects.values_list("name", flat=True)) == {"training", "validation"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not JSON"),
        ('{"question": "", "reference_answer": "x"}', "line 2: 'question'"),
        ('{"question": "Why?"}', "line 2: 'reference_answer'"),
        ('{"question": "Why?", "reference_answer": "x", "page": 0}', "line 2: 'page'"),
        ('{"question": "Why?", "reference_answer": "x", "key_facts": "10%"}', "'key_facts'"),
        (
            '{"id": "a", "question": "Why?", "reference_answer": "x"}',
            "line 2: id 'a' appears twice",
        ),
        ("[1, 2]", "line 2: expected a JSON object"),
    ],
)
def test_a_bad_line_stops_the_import_and_nothing_is_written(
    tmp_path: Path, line: str, message: str
):
    good = json.dumps({"id": "a", "question": "What is it?", "reference_answer": "It is."})
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(InvalidReferences, match=message):
        references_import(path=path, set_name="validation")
    assert not Reference.objects.exists()
    assert not ReferenceSet.objects.exists()


def test_unreadable_files_and_bad_set_names_are_clear_errors(tmp_path: Path):
    with pytest.raises(InvalidReferences, match="cannot be read"):
        references_import(path=tmp_path / "missing.jsonl", set_name="validation")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidReferences, match="UTF-8"):
        references_import(path=binary, set_name="validation")
    with pytest.raises(InvalidReferences, match="not a set name"):
        references_import(path=support.EVAL, set_name="../etc")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(InvalidReferences, match="no references"):
        references_import(path=empty, set_name="validation")


def test_command_prints_counts_and_fails_loudly(tmp_path: Path, capsys: pytest.CaptureFixture):
    call_command("import_references", str(support.EVAL), "--set", "validation", "--json")
    assert json.loads(capsys.readouterr().out) == {
        "set": "validation",
        "created": 40,
        "updated": 0,
        "unchanged": 0,
    }
    call_command("import_references", str(support.EVAL), "--set", "validation")
    assert "0 created, 0 updated, 40 unchanged" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope\n")
    with pytest.raises(CommandError, match="line 1: not JSON"):
        call_command("import_references", str(bad), "--set", "validation")
