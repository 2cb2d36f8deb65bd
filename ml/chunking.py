"""Page text into search chunks that never cross a page and know their section.

A section heading starts a new chunk; a section that runs across pages keeps its number on
the next page. Long sections are split at line or sentence ends near ``max_chars``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ml.parsing import MARKDOWN, PageText


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    page_number: int
    page_label: str
    section: str  # e.g. "3-5.3.4", "502.2", "Deficiency 1 – Unit"; "" when none is known
    section_title: str
    text: str


@dataclass(frozen=True)
class Heading:
    section: str
    title: str


# Numbered paragraphs as design criteria print them: 3-5.3.4, B-11, 4-2.4.6 (IMC D408.1).
_NUMBERED = re.compile(
    r"^(?P<num>(?:\d{1,2}|[A-H])-\d{1,3}(?:\.\d{1,3}){0,5})\.?\s+"
    r"(?P<paren>\([A-Z][^)]{0,40}\)\s*)?(?P<title>[A-Z(\"“][^\n]{0,160})$"
)
_CHAPTER = re.compile(
    r"^(?P<kind>CHAPTER|APPENDIX)\s+(?P<num>[0-9A-Z]{1,3})\b[\s:.–-]*(?P<title>.*)$"
)
# Inspection standards (HUD NSPIRE): "DEFICIENCY 1 – UNIT: ...", "DEFINITION: ...".
_DEFICIENCY = re.compile(
    r"^DEFICIENCY\s+(?P<num>\d{1,2})\s*[–-]\s*(?P<where>UNIT|INSIDE|OUTSIDE)\s*:?\s*(?P<title>.*)$"
)
_DEFINITION = re.compile(r"^DEFINITION\s*:\s*(?P<title>.*)$")
_MARKDOWN = re.compile(r"^#{1,6}\s+(?P<heading>.+?)\s*#*$")
_MD_NUMBER = re.compile(
    r"^(?P<num>\d{1,4}(?:\.\d{1,3}){0,5}|[A-Z]\d{0,2}(?:\.\d{1,3}){1,5})\s+(?P<title>.*)$"
)
_SENTENCE_END = re.compile(r"(?<=[.;:!?])\s+")
_TOC_LEADER = re.compile(r"\.{5,}\s*[0-9ivxlcdm-]+$", re.IGNORECASE)


def detect_heading(line: str, *, markdown: bool) -> Heading | None:
    if markdown:
        match = _MARKDOWN.match(line)
        if not match:
            return None
        heading = match.group("heading").strip("*_ ").strip()
        numbered = _MD_NUMBER.match(heading)
        if numbered:
            return Heading(numbered.group("num"), numbered.group("title").strip("*_ ").strip())
        return Heading(heading, "")
    if _TOC_LEADER.search(line):
        return None  # a table-of-contents entry, not the section itself
    match = _NUMBERED.match(line)
    if match:
        number = match.group("num")
        if match.group("paren"):
            number = f"{number} {match.group('paren').strip()}"
        return Heading(number, match.group("title").strip())
    match = _CHAPTER.match(line)
    if match:
        return Heading(
            f"{match.group('kind').title()} {match.group('num')}", match.group("title").strip()
        )
    match = _DEFICIENCY.match(line)
    if match:
        section = f"Deficiency {match.group('num')} – {match.group('where').title()}"
        return Heading(section, match.group("title").strip().capitalize())
    match = _DEFINITION.match(line)
    if match:
        return Heading("Definition", "")
    return None


def chunk_pages(
    pages: list[PageText], *, kind: str, max_chars: int = 900, min_chars: int = 250
) -> list[Chunk]:
    markdown = kind == MARKDOWN
    chunks: list[Chunk] = []
    current = Heading("", "")
    for page in pages:
        if not page.text:
            continue
        # (heading in force, line) pairs; a heading line opens a new block.
        blocks: list[tuple[Heading, list[str]]] = []
        for line in page.text.split("\n"):
            heading = detect_heading(line, markdown=markdown)
            if heading is not None:
                current = heading
                blocks.append((current, [line]))
            elif blocks:
                blocks[-1][1].append(line)
            else:
                blocks.append((current, [line]))
        for text, section in _pack(blocks, max_chars=max_chars, min_chars=min_chars):
            chunks.append(
                Chunk(
                    ordinal=len(chunks),
                    page_number=page.number,
                    page_label=page.label,
                    section=section.section,
                    section_title=section.title,
                    text=text,
                )
            )
    return chunks


def _pack(
    blocks: list[tuple[Heading, list[str]]], *, max_chars: int, min_chars: int
) -> list[tuple[str, Heading]]:
    """Blocks into chunks: small neighbours merge, long blocks split near ``max_chars``."""
    out: list[tuple[str, Heading]] = []
    pending: list[tuple[Heading, str]] = []  # pieces of the chunk being built

    def flush() -> None:
        if not pending:
            return
        text = "\n".join(piece for _, piece in pending).strip()
        if text:
            # The section that covers most of the chunk's text is the one to cite.
            weights: Counter[Heading] = Counter()
            for heading, piece in pending:
                weights[heading] += len(piece)
            out.append((text, weights.most_common(1)[0][0]))
        pending.clear()

    for heading, lines in blocks:
        for piece in _split(lines, max_chars=max_chars):
            size = sum(len(p) + 1 for _, p in pending)
            starts_section = piece is not None and lines and piece.startswith(lines[0])
            if pending and (
                size + len(piece) > max_chars or (starts_section and size >= min_chars)
            ):
                flush()
            pending.append((heading, piece))
    flush()
    return out


def _split(lines: list[str], *, max_chars: int) -> list[str]:
    """A block's lines as pieces of at most ``max_chars``, cut at line or sentence ends."""
    pieces: list[str] = []
    current = ""
    for line in lines:
        for part in _sentences(line, max_chars):
            candidate = f"{current}\n{part}" if current else part
            if len(candidate) > max_chars and current:
                pieces.append(current)
                current = part
            else:
                current = candidate
    if current:
        pieces.append(current)
    return pieces


def _sentences(line: str, max_chars: int) -> list[str]:
    if len(line) <= max_chars:
        return [line]
    parts: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(line):
        while len(sentence) > max_chars:  # one very long sentence: cut at a space
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            parts.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        candidate = f"{current} {sentence}".strip()
        if len(candidate) > max_chars and current:
            parts.append(current)
            current = sentence
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts
