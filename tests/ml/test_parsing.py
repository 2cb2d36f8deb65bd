from __future__ import annotations

from pathlib import Path

import pytest

from ml.parsing import MARKDOWN, PDF, TEXT, DocumentError, clean_text, detect_kind, extract_pages
from tests import support


@pytest.fixture(scope="module")
def ufc_pages():
    return extract_pages(support.UFC, PDF, max_pages=500)


def test_pdf_pages_keep_index_and_printed_label(ufc_pages):
    assert len(ufc_pages) == 98
    page25 = ufc_pages[24]
    assert (page25.number, page25.label) == (25, "14")
    assert ufc_pages[5].label == "i"  # front matter is numbered in roman
    assert "3-5.3.4" in page25.text and "forklift" in page25.text


def test_running_headers_and_change_marks_are_removed(ufc_pages):
    text = ufc_pages[24].text
    assert "Change 9, 09 January 2024" not in text
    assert "\\1\\" not in text and "/1/" not in text
    assert text.startswith("3-5.3 Indoor Design Conditions.")


def test_scanned_pages_are_recorded_without_text(ufc_pages):
    without_text = [page.number for page in ufc_pages if not page.has_text_layer]
    assert without_text == list(range(91, 99))


def test_inline_page_labels():
    pages = extract_pages(support.HUD, PDF, max_pages=500)
    assert [p.label for p in pages[:3]] == ["1", "2", "3"]
    assert "Page 1 of 20" not in pages[0].text


def test_markdown_is_one_page_and_text_splits_on_form_feeds(tmp_path: Path):
    md = tmp_path / "a.md"
    md.write_text(
        "# Title\n\n## 502.2 Vehicle Spaces\nCar parking spaces shall be 96 inches wide.\n"
    )
    assert [p.number for p in extract_pages(md, MARKDOWN, max_pages=5)] == [1]
    txt = tmp_path / "a.txt"
    txt.write_text("first page\fsecond page\fthird page")
    pages = extract_pages(txt, TEXT, max_pages=5)
    assert [(p.number, p.text) for p in pages] == [
        (1, "first page"),
        (2, "second page"),
        (3, "third page"),
    ]
    with pytest.raises(DocumentError, match="over the limit of 2"):
        extract_pages(txt, TEXT, max_pages=2)


@pytest.mark.parametrize(
    ("name", "head", "message"),
    [
        ("scan.pdf", b"\x89PNG\r\n\x1a\n....", "named .pdf but its content is a PNG image"),
        ("notes.md", b"PK\x03\x04rest", "named .md but its content is a ZIP archive"),
        ("spec.txt", b"\x00\x01\x02binary", "named .txt but its content is binary data"),
        ("spec.docx", b"PK\x03\x04", "'.docx' files are not supported"),
        ("empty.pdf", b"", "the file is empty"),
    ],
)
def test_disguised_and_unsupported_files_are_refused(name: str, head: bytes, message: str):
    with pytest.raises(DocumentError, match=message):
        detect_kind(name, head)


def test_detect_kind_accepts_real_files():
    assert detect_kind("x.PDF", support.UFC.read_bytes()[:4096]) == PDF
    assert detect_kind("x.md", b"# heading\n") == MARKDOWN


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (support.pdf_pages(support.UFC, [24], password="secret"), "encrypted with a password"),
        (support.UFC.read_bytes()[:150_000], "damaged"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 20, "damaged"),
    ],
    ids=["encrypted", "truncated", "garbage"],
)
def test_unreadable_pdfs_raise_clear_errors(tmp_path: Path, data: bytes, message: str):
    path = tmp_path / "bad.pdf"
    path.write_bytes(data)
    with pytest.raises(DocumentError, match=message):
        extract_pages(path, PDF, max_pages=500)


def test_clean_text_drops_control_characters():
    assert clean_text("a\x00b\r\nc  \t d") == "ab\nc d"
