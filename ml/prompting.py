"""The answering prompt and what is read back out of an answer: citations and refusals.

The template is versioned: every stored answer names the version it was built with, so a
later change of wording never mixes with old training data unnoticed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TEMPLATE_VERSION = "answer-v1"  # the whole retrieved passages
FOCUSED_TEMPLATE_VERSION = "answer-v2-focused"  # their best sentences (ml/focus.py)
DECLINE = "The documents I searched do not cover this."

SYSTEM = (
    "You are Plumbline, an assistant for engineers who design and build facilities. "
    "Answer the question using only the numbered passages from design-criteria documents. "
    "Give the requirement with its numbers and units, in two or three sentences, and cite "
    "the passages you used with their numbers in square brackets, like [1]. "
    f'If the passages do not contain the answer, reply exactly: "{DECLINE}"'
)


@dataclass(frozen=True)
class Passage:
    number: int  # 1-based, as cited in the answer: [1]
    chunk_id: int
    document: str
    page: int | None  # PDF page index; None for documents without pages
    section: str
    text: str

    @property
    def source(self) -> str:
        where = [self.document]
        if self.page is not None:
            where.append(f"page {self.page}")
        if self.section:
            where.append(f"§{self.section}")
        return ", ".join(where)


# Lines of the prompt's own structure: a passage header "[n] (source)" and the labels
# "Passages:" and "Question:". Inside a document's text such a line would pass for the
# prompt's structure (a passage that starts a question of its own, or a passage numbered
# as another one), so it is defused there; text of any other shape is kept verbatim.
_STRUCTURE_LINE = re.compile(r"^([ \t]*)(?:\[(\d{1,2})\]|(passages|question)[ \t]*:)", re.I | re.M)


def _defused(text: str) -> str:
    def defuse(match: re.Match[str]) -> str:
        indent, number, label = match.group(1), match.group(2), match.group(3)
        return f"{indent}({number})" if number else f"{indent}{label} -"

    return _STRUCTURE_LINE.sub(defuse, text)


def build_messages(question: str, passages: list[Passage]) -> list[dict[str, str]]:
    context = "\n\n".join(
        f"[{p.number}] ({' '.join(p.source.split())})\n{_defused(p.text)}" for p in passages
    )
    user = f"Passages:\n{context}\n\nQuestion: {' '.join(question.split())}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


PASSAGE_HEADER = re.compile(r"^\[(\d{1,2})\] \(.*\)$", re.MULTILINE)


def grounding_text(messages: list[dict[str, str]]) -> str:
    """What an answer's numbers may come from (ml/grounding.py): the passages' text and
    the question, with each passage header cut to its citation mark. A header's page,
    section and edition numbers are where a passage comes from, not what it requires."""
    text = "\n".join(m["content"] for m in messages if m.get("role") != "system")
    return PASSAGE_HEADER.sub(lambda m: f"[{m.group(1)}]", text)


def passages_text(messages: list[dict[str, str]]) -> str:
    """What an answer may copy from (ml/copying.py): the passages of ``grounding_text``
    without the question, so that restating the question never reads as a copy."""
    text = grounding_text(messages)
    cut = text.rfind("\n\nQuestion: ")
    return text if cut < 0 else text[:cut]


_MARK_LINE = re.compile(r"^\[(\d{1,2})\]$", re.MULTILINE)


def first_passage_text(messages: list[dict[str, str]]) -> str:
    """The text of passage [1] (the retriever's best) in the prompt, or "" without one."""
    text = passages_text(messages)
    marks = list(_MARK_LINE.finditer(text))
    if not marks or marks[0].group(1) != "1":
        return ""
    end = marks[1].start() if len(marks) > 1 else len(text)
    return text[marks[0].end() : end].strip()


def copy_source(messages: list[dict[str, str]]) -> str:
    """What an answer may copy from (ml/copying.py): each passage's text as the prompt
    shows it, ending with its own mark as an answer cites it ("... dry bulb [1]."). Copying
    to a passage's end then cites where the text came from, not the next passage's header."""
    text = passages_text(messages)
    marks = list(_MARK_LINE.finditer(text))
    parts: list[str] = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        body = text[mark.end() : end].strip()
        if body.endswith((".", "!", "?")):
            parts.append(f"{body[:-1]} [{mark.group(1)}]{body[-1]}")
        elif body:
            parts.append(f"{body} [{mark.group(1)}]")
    return "\n\n".join(parts)


def first_passage_sentences(messages: list[dict[str, str]]) -> list[str]:
    """The sentences of passage [1] as the prompt shows them (whitespace normalised)."""
    return [" ".join(s.split()) for s in split_sentences(first_passage_text(messages))]


# A citation mark: [1], [1, 3] or [2; 4]. Every reader and writer of marks uses this one.
CITATION = re.compile(r"\[\d{1,2}(?:\s*[,;]\s*\d{1,2})*\]")
CITATION_WITH_SPACE = re.compile(r"\s*" + CITATION.pattern)  # the mark and the space before it
_NUMBER = re.compile(r"\d{1,2}")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_DECLINE_PATTERNS = re.compile(
    r"(do(es)? not (cover|contain|mention|address|specify)|not (covered|mentioned|specified) in"
    r"|no information|cannot (find|answer)|can't (find|answer)|not able to find)",
    re.IGNORECASE,
)


def mark_numbers(mark: str) -> list[int]:
    """The numbers in one citation mark, as written: "[2, 1]" -> [2, 1]."""
    return [int(n) for n in _NUMBER.findall(mark)]


def cited_numbers(answer: str, passage_count: int) -> list[int]:
    """Passage numbers cited as [n] or [n, m], in order of first mention, valid ones only."""
    numbers: list[int] = []
    for match in CITATION.finditer(answer):
        for raw in _NUMBER.findall(match.group(0)):
            number = int(raw)
            if 1 <= number <= passage_count and number not in numbers:
                numbers.append(number)
    return numbers


def strip_invalid_citations(answer: str, passage_count: int) -> str:
    """Removes marks such as [7] that point at no passage (small models invent them)."""

    def keep(match: re.Match[str]) -> str:
        valid = [n for n in _NUMBER.findall(match.group(0)) if 1 <= int(n) <= passage_count]
        return f"[{', '.join(valid)}]" if valid else ""

    return CITATION_WITH_SPACE.sub(lambda m: (" " + keep(m)) if keep(m) else "", answer)


def is_decline(answer: str) -> bool:
    return DECLINE.lower() in answer.lower() or bool(_DECLINE_PATTERNS.search(answer[:200]))


def trim_to_sentence(text: str) -> str:
    """An answer cut by the token limit ends at its last full sentence, not mid-word."""
    text = text.strip()
    if not text or _SENTENCE_END.search(text[-1:]) or text.endswith((".", "!", "?", "]")):
        return text
    ends = list(_SENTENCE_END.finditer(text))
    if not ends:
        return text
    cut = ends[-1].end()
    # Keep a citation that directly follows the sentence end: "... 55°F [2]."
    tail = CITATION_WITH_SPACE.match(text[cut:])
    if tail:
        cut += tail.end()
    return text[:cut].strip()


def split_sentences(text: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        parts.append(text[start : match.end()])
        start = match.end()
    if text[start:].strip():
        parts.append(text[start:])
    return [p for p in parts if p.strip()]
