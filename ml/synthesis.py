"""Synthetic question/answer pairs from a library's own requirement sentences.

The pilot this product follows fine-tuned its answer model on synthetic pairs that experts
validated before any reinforcement learning. Here one pair comes from one sentence that
states a requirement: a model writes the question that sentence answers (a short input,
which small models handle), and the reference answer is the requirement itself, restated
with its numbers and units. What decides whether a pair may teach is checked by the caller
(the question must find its source again, see ``apps/references/synthesis.py``); this
module holds the text rules, with no database and no model.
"""

from __future__ import annotations

import re

import numpy as np

from ml.focus import MEASURE, QUANTITY
from ml.prompting import split_sentences

MIN_SENTENCE = 40  # characters
MAX_SENTENCE = 320
# Words that make a sentence a requirement rather than a description.
_CUE = re.compile(
    r"\b(must|shall|should|required|requires?|provide[ds]?|not exceed|at least|no (less|more)"
    r" than|minimum|maximum|limit(ed)?|less than|greater than|above|below|design(ed)? for"
    r"|maintain(ed)?|is to be|are to be|prohibited|not permitted|allowed)\b",
    re.IGNORECASE,
)
# UFC-style requirements are often imperatives: "Provide ...", "Size equipment to ...".
_IMPERATIVE = re.compile(
    r"^(provide|design|use|size|install|locate|maintain|select|include|specify|ensure|limit"
    r"|insulate|equip|evaluate|consider|do not|never|keep|protect|connect|separate)\b",
    re.IGNORECASE,
)
_LEAD = re.compile(r"^\s*(?:[•\-–*]+\s*|\(?[a-z0-9]{1,3}[.)]\s+|\d+(?:[-.]\d+)+\.?\s+)+", re.I)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_WH = re.compile(
    r"^(what|which|how|when|where|who|why|is|are|does|do|can|must|should|shall|at what|in what"
    r"|for what|under what)\b",
    re.IGNORECASE,
)
_CHATTER = re.compile(r"great question|here'?s|i'?d be happy|as an ai|sentence", re.IGNORECASE)

QUESTION_SYSTEM = (
    "You write the question that a sentence from a design-criteria document answers, as an "
    "engineer would ask it. Do not put the sentence's numbers in the question. Reply with "
    "one question only."
)
# Worked examples for the question writer (written for this purpose; none comes from a
# library or an evaluation set).
QUESTION_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "Stairways must have a minimum clear width of 44 inches (1118 mm).",
        "What is the minimum clear width of a stairway?",
    ),
    (
        "Provide emergency lighting for at least 90 minutes after a power failure.",
        "How long must emergency lighting last after a power failure?",
    ),
    (
        "Water heaters must be set to deliver water no hotter than 120°F (49°C) at fixtures.",
        "What is the maximum hot water temperature at fixtures?",
    ),
    (
        "Exhaust fans in parking garages are required when the garage is enclosed on more "
        "than three sides.",
        "When are exhaust fans required in a parking garage?",
    ),
    (
        "Mechanical rooms must be provided with floor drains and a hose bibb.",
        "What must a mechanical room be provided with?",
    ),
    (
        "Do not locate outdoor air intakes near loading docks or exhaust outlets.",
        "Where should outdoor air intakes not be located?",
    ),
    (
        "Relief air must be ducted to the outside through a motorized damper.",
        "How must relief air be discharged?",
    ),
    (
        "Ducts shall be pressure tested before insulation is installed.",
        "When must ducts be pressure tested?",
    ),
    (
        "Boilers larger than 400,000 Btuh must have a combustion efficiency of at least 85%.",
        "What combustion efficiency must a large boiler have?",
    ),
)


def statement(sentence: str) -> str:
    """A sentence as a reference answer states it: one line, no bullet or clause number in
    front, ending with a full stop."""
    text = _LEAD.sub("", " ".join(sentence.split())).strip()
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def is_requirement(sentence: str) -> bool:
    """Whether a sentence states something an engineer must meet: a cue word or a measured
    value, mostly words (not a table row or a heading), of a length a model can restate."""
    text = " ".join(sentence.split())
    if not MIN_SENTENCE <= len(text) <= MAX_SENTENCE:
        return False
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 0.6 * len(text.replace(" ", "")):
        return False
    if sum(c.isupper() for c in letters) > 0.3 * len(letters):
        return False  # "CORRECTION TIMEFRAME: 24 hours HCV PASS / FAIL"
    if len(text.split()) < 7:
        return False
    return bool(_CUE.search(text) or MEASURE.search(text) or _IMPERATIVE.match(_LEAD.sub("", text)))


FRAGMENT = 60  # characters: a value this short belongs to the sentence before it


def requirement_sentences(text: str) -> list[str]:
    """The requirement sentences of a passage, in order, whitespace normalised. A short
    fragment that states a value joins the sentence before it, as the value under its
    heading does: "Spaces with Heavy Physical Activity. 55°F (12.8°C) dry bulb."."""
    found: list[str] = []
    for part in (" ".join(s.split()) for s in split_sentences(text)):
        joined = f"{found[-1]} {part}" if found else part
        if found and len(part) < FRAGMENT and MEASURE.search(part) and len(joined) <= MAX_SENTENCE:
            found[-1] = joined
        elif part:
            found.append(part)
    return [s for s in found if is_requirement(s)]


def numbers(text: str) -> set[str]:
    """The numbers a text states ("1,000" and "1000" alike; section numbers included)."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


def measures(text: str) -> list[str]:
    """The measured values a sentence states ("55°F", "12.8°C", "5 feet"): the key facts
    an answer to its question must carry."""
    seen: list[str] = []
    for match in MEASURE.finditer(text):
        value = " ".join(match.group(0).split())
        if value not in seen:
            seen.append(value)
    return seen


def question_messages(sentence: str) -> list[dict[str, str]]:
    """The writer's chat: worked examples of the sentence's own kind (a small writer copies
    their form: shown only "What is the maximum ...?" it asks that of every sentence, so
    a sentence without a value gets examples that ask what must be done or when)."""
    messages = [{"role": "system", "content": QUESTION_SYSTEM}]
    valued = bool(measures(sentence))
    examples = [e for e in QUESTION_EXAMPLES if bool(measures(e[0])) == valued]
    for example, question in examples:
        messages.append({"role": "user", "content": f"Sentence: {example}"})
        messages.append({"role": "assistant", "content": question})
    messages.append({"role": "user", "content": f"Sentence: {statement(sentence)}"})
    return messages


def parse_question(text: str) -> str | None:
    """The question in a writer's reply, or None when the reply holds none that an
    engineer would type (chatter, an echo of the sentence, several lines of it)."""
    line = next((part.strip() for part in text.strip().splitlines() if part.strip()), "")
    line = re.sub(r"^(question|q)\s*[:\-]\s*", "", line, flags=re.IGNORECASE)
    quoted = re.search(r"[\"“]([^\"”]{10,}\?)[\"”]", line)
    if quoted:
        line = quoted.group(1)
    line = line.strip(" \"'“”")
    if "?" not in line:
        return None
    line = line[: line.index("?") + 1]
    words = line.split()
    if not 4 <= len(words) <= 30 or _CHATTER.search(line) or not _WH.match(line):
        return None
    return " ".join(words)


def leaks_answer(question: str, sentence: str) -> bool:
    """A question that already states the value it asks for teaches nothing ("What is the
    maximum velocity of 550 feet per minute?")."""
    asked = numbers(question)
    return any(numbers(value) & asked for value in measures(sentence))


def asks_for_missing_value(question: str, sentence: str) -> bool:
    """A question for a value ("What is the maximum number of doors ...?") written for a
    sentence that states none: small writers ask that of every sentence."""
    return bool(QUANTITY.search(question)) and not measures(sentence)


def carries_numbers(answer: str, sentence: str) -> bool:
    """Whether an answer keeps every measured value of its source sentence."""
    stated = numbers(answer)
    return all(numbers(value) <= stated for value in measures(sentence))


def near_duplicates(vectors: np.ndarray, *, threshold: float) -> list[int]:
    """For each row, the index of an earlier row it nearly repeats (cosine >= threshold),
    or -1: the first of a group stays, the rest collapse into it."""
    duplicate_of = [-1] * len(vectors)
    for index in range(1, len(vectors)):
        similarity = vectors[:index] @ vectors[index]
        best = int(similarity.argmax())
        if similarity[best] >= threshold:
            duplicate_of[index] = duplicate_of[best] if duplicate_of[best] >= 0 else best
    return duplicate_of


def with_citation(answer: str, number: int) -> str:
    """The answer with ``[number]`` before its final full stop."""
    body = answer.rstrip()
    end = body[-1] if body and body[-1] in ".!?" else ""
    return f"{body[:-1] if end else body} [{number}]{end or '.'}"


def shows_requirement(text: str, sentence: str) -> bool:
    """Whether a prompt shows what an answer to the sentence must say: its measured values
    (a focused prompt may keep the value and drop its heading), or, for a sentence with
    none, the sentence itself (whitespace aside)."""
    if measures(sentence):
        return carries_numbers(text, sentence)
    return " ".join(sentence.split()) in " ".join(text.split())
