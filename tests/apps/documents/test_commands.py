from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.documents.models import Document
from tests import support

pytestmark = pytest.mark.django_db


def test_ingest_folder_prints_one_json_object_per_document(
    tmp_path: Path, small_pdf: bytes, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / "criteria.pdf").write_bytes(small_pdf)
    (tmp_path / "notes.md").write_text(
        "# Notes\n\n## 1-1 Scope\nHeating of vestibules is not required.\n"
    )
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    call_command("ingest", str(tmp_path), "--json")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["status"] for r in records] == ["ready", "ready"]
    assert set(records[0]) >= {"document", "status", "pages", "chunks", "error"}
    assert records[0]["pages"] == 3 and records[0]["chunks"] > 0 and records[0]["error"] is None


def test_ingest_same_file_again_reports_duplicate(
    tmp_path: Path, small_pdf: bytes, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "criteria.pdf"
    path.write_bytes(small_pdf)
    call_command("ingest", str(path), "--json")
    call_command("ingest", str(path), "--json")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["status"] for r in records] == ["ready", "duplicate"]
    assert Document.objects.count() == 1


def test_ingest_bad_file_reports_error_and_fails(
    tmp_path: Path, small_pdf: bytes, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / "a-good.pdf").write_bytes(small_pdf)
    (tmp_path / "b-locked.pdf").write_bytes(support.pdf_pages(support.UFC, [24], password="x"))
    with pytest.raises(CommandError, match="1 of 2 files failed"):
        call_command("ingest", str(tmp_path), "--json")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["status"] for r in records] == ["ready", "failed"]
    assert "encrypted" in records[1]["error"]


def test_ingest_missing_path_is_a_clear_error():
    with pytest.raises(CommandError, match="no such file or folder"):
        call_command("ingest", "/nonexistent/file.pdf")
