from __future__ import annotations

import pytest

from ml.chunking import chunk_pages, detect_heading
from ml.parsing import MARKDOWN, PDF, PageText, extract_pages
from tests import support


@pytest.mark.parametrize(
    ("line", "section"),
    [
        ("3-5.3.4 Spaces Conditioned for Heating - High to Moderate", "3-5.3.4"),
        ("4-2.4.6 (IMC D408.1) Access.", "4-2.4.6 (IMC D408.1)"),
        ("B-11 VARIABLE REFRIGERANT FLOW (VRF) SYSTEMS.", "B-11"),
        ("CHAPTER 3 DESIGN CRITERIA", "Chapter 3"),
        ("DEFICIENCY 1 – UNIT: OUTSIDE TEMPERATURE IS BELOW 68", "Deficiency 1 – Unit"),
        ("DEFINITION: Heating: A system", "Definition"),
    ],
)
def test_headings_in_pdf_text(line: str, section: str):
    heading = detect_heading(line, markdown=False)
    assert heading is not None and heading.section == section


@pytest.mark.parametrize(
    "line",
    ["2-3 times the design flow", "3-5.2 Outdoor Design Conditions.......... 13", "UFC 3-410-01"],
)
def test_lines_that_are_not_headings(line: str):
    assert detect_heading(line, markdown=False) is None


def test_markdown_headings_split_number_and_title():
    heading = detect_heading("## 502.2 Vehicle Spaces", markdown=True)
    assert heading is not None and (heading.section, heading.title) == ("502.2", "Vehicle Spaces")


def test_chunks_never_span_pages_and_carry_sections():
    pages = extract_pages(support.UFC, PDF, max_pages=500)
    chunks = chunk_pages(pages, kind=PDF)
    assert all(len(c.text) <= 900 for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    page_texts = {p.number: p.text for p in pages}
    assert all(
        c.text.replace("\n", " ")[:200] in page_texts[c.page_number].replace("\n", " ")
        for c in chunks
    )
    forklift = [c for c in chunks if "forklift loading" in c.text]
    assert [(c.page_number, c.page_label, c.section) for c in forklift] == [(25, "14", "3-5.3.4")]
    assert not any(c.page_number > 90 for c in chunks)  # scans have no text


def test_a_section_continues_on_the_next_page():
    pages = [
        PageText(1, "1", "3-7.10 Maintenance Access.\nAccess doors are required.", True),
        PageText(2, "2", "Provide catwalks where terminals are above 12 feet.", True),
    ]
    chunks = chunk_pages(pages, kind=PDF)
    assert [(c.page_number, c.section) for c in chunks] == [(1, "3-7.10"), (2, "3-7.10")]


def test_long_paragraphs_split_at_sentence_ends():
    sentence = "The contractor shall provide access for maintenance of every terminal unit. "
    pages = [PageText(1, "", "3-1 General.\n" + sentence * 40, True)]
    chunks = chunk_pages(pages, kind=PDF, max_chars=400)
    assert len(chunks) > 5
    assert all(len(c.text) <= 400 for c in chunks)
    assert all(c.text.rstrip().endswith(".") for c in chunks)


def test_markdown_chunks_cite_sections():
    chunks = chunk_pages(extract_pages(support.ADA, MARKDOWN, max_pages=5), kind=MARKDOWN)
    vehicle = [c for c in chunks if c.section == "502.2"]
    assert vehicle and vehicle[0].section_title == "Vehicle Spaces"
