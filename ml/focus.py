"""Focused context: the sentences of the retrieved passages that answer the question.

Small models copy a requirement correctly from a short passage and lose it in a long, noisy
one, so the prompt carries only the few sentences most likely to answer, each still under
its passage's number and source, so ``[n]`` maps to the same page as before.

A sentence's score is its embedding cosine with the question, plus a bonus for the share of
the question's distinctive words it contains (rarer words count more, measured over the
candidate sentences themselves), plus a small bonus for stating a number when the question
asks for a quantity. The first passage's best sentence and the best of the rest, ``limit``
in all, are kept, each with the short fragments
beside it and, for a quantity question, the nearest sentence that states a number (a value
often sits in the fragment after its heading: "... Physical Activity. 55°F (12.8°C) dry
bulb.").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ml.prompting import Passage, split_sentences

Embed = Callable[[Sequence[str]], np.ndarray]

_WORD = re.compile(r"[a-z0-9][a-z0-9\-./]*", re.IGNORECASE)
# A measured value: "55°F", "10%", "30 days", "1.5 in", "2,000 cfm" (not "3-5.3.4 Spaces").
MEASURE = re.compile(
    r"(?<![\d.\-])\d[\d,]*(?:\.\d+)?\s*-?\s*(?:°\s*[FCfc]?|%|percent|degrees?|in\.?(?=\W)|inch|inches|ft|feet|"
    r"foot|m|mm|cm|m2|m3|meters?|metres?|millimeters?|tons?|gallons?|pounds?|kilowatts?|watts?|psi|psig|pa|kpa|cfm|btu|btuh|mbh|gpm|w|kw|kwh|l/s|lb|lbs|hours?|"
    r"days?|minutes?|min|years?|months?|seconds?|sec|times|ach|fpm|db|dba)(?!\w)",
    re.IGNORECASE,
)
QUANTITY = re.compile(
    r"\b(how (much|many|long|often|far|high|wide|thick|large|small|quickly|soon|warm|cold|hot)"
    r"|minimum|maximum|at least|at most|temperature|rate|percent|size|distance|height|width"
    r"|what (is|are) the (min|max)|limit|threshold|value)\b",
    re.IGNORECASE,
)
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "must",
        "of",
        "on",
        "or",
        "shall",
        "should",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "to",
        "under",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "within",
        "would",
        "you",
        "your",
        "per",
        "any",
        "all",
        "each",
        "than",
        "then",
        "into",
        "been",
        "being",
        "have",
        "has",
    ]
)
LEXICAL_WEIGHT = 0.35
NUMBER_BONUS = 0.05
SHORT_SENTENCE = 60  # characters: a chosen sentence this short brings its neighbour


@dataclass(frozen=True)
class Sentence:
    passage: int  # index into the passages list
    position: int  # index of the sentence within its passage
    text: str


def _words(text: str) -> set[str]:
    return {
        w.lower().strip(".-/")
        for w in _WORD.findall(text)
        if w.lower() not in _STOP and len(w.strip(".-/")) > 1
    }


def sentence_texts(text: str) -> list[str]:
    """The candidate sentences of one passage's text, as the focus embeds them (ingest
    embeds the same ones ahead, so answering finds their vectors stored)."""
    return [" ".join(s.split()) for s in split_sentences(text)]


def _sentences(passages: Sequence[Passage]) -> list[Sentence]:
    found: list[Sentence] = []
    for index, passage in enumerate(passages):
        parts = sentence_texts(passage.text)
        found.extend(Sentence(index, n, text) for n, text in enumerate(parts) if len(text) > 3)
    return found


def score_sentences(question: str, sentences: Sequence[Sentence], embed: Embed) -> np.ndarray:
    vectors = embed([question, *(s.text for s in sentences)])
    cosine = vectors[1:] @ vectors[0]
    asked = _words(question)
    words = [_words(s.text) for s in sentences]
    count = len(sentences)
    # IDF over the candidates: a question word found in every sentence says little.
    weight = {w: math.log((count + 1) / (1 + sum(w in ws for ws in words))) + 1 for w in asked}
    total = sum(weight.values()) or 1.0
    lexical = np.array([sum(weight[w] for w in asked & ws) / total for ws in words])
    quantity = bool(QUANTITY.search(question))
    numbers = np.array([quantity and bool(MEASURE.search(s.text)) for s in sentences], float)
    return cosine + LEXICAL_WEIGHT * lexical + NUMBER_BONUS * numbers


def _window(
    sentence: Sentence, by_place: dict[tuple[int, int], Sentence], wants_number: bool
) -> set[tuple[int, int]]:
    """A chosen sentence with the fragments beside it ("55°F (12.8°C) dry bulb." after its
    heading), and, when the question asks for a quantity and none of those states a number,
    the nearest sentence within two that does."""
    place = (sentence.passage, sentence.position)
    window = {place}
    for offset in (1, -1):
        near = by_place.get((sentence.passage, sentence.position + offset))
        if near is not None and len(near.text) < SHORT_SENTENCE:
            window.add((near.passage, near.position))
    if wants_number and not any(MEASURE.search(by_place[p].text) for p in window):
        for offset in (1, -1, 2, -2):
            near = by_place.get((sentence.passage, sentence.position + offset))
            if near is not None and MEASURE.search(near.text):
                window.add((near.passage, near.position))
                break
    return window


def focus(
    question: str, passages: Sequence[Passage], embed: Embed, *, limit: int = 4
) -> list[Passage]:
    """The passages cut down to their best sentences (passages with none left out), in the
    order of their numbers; each keeps its number, document, page and section."""
    return focus_scored(question, passages, embed, limit=limit)[0]


def focus_scored(
    question: str, passages: Sequence[Passage], embed: Embed, *, limit: int = 4
) -> tuple[list[Passage], float | None]:
    """``focus`` and the best sentence's score (``score_sentences``; None when the passages
    have no sentences): how well the best sentence the passages hold answers the question,
    which the answering pipeline declines below."""
    sentences = _sentences(passages)
    if not sentences:
        return list(passages), None
    scores = score_sentences(question, sentences, embed)
    by_place = {(s.passage, s.position): s for s in sentences}
    wants_number = bool(QUANTITY.search(question))
    # The retriever's first passage is right most of the time (top-1 0.86 on the sample
    # set), so its best sentence always goes in; the best of all the rest fill the limit.
    first = [i for i, s in enumerate(sentences) if s.passage == 0]
    order = [int(i) for i in np.argsort(-scores)]
    if first:
        best_first = max(first, key=lambda i: scores[i])
        order = [best_first] + [i for i in order if i != best_first]
    chosen: set[tuple[int, int]] = set()
    for index in order[:limit]:
        chosen |= _window(sentences[index], by_place, wants_number)
    focused: list[Passage] = []
    for index, passage in enumerate(passages):
        kept = sorted(p for i, p in chosen if i == index)
        if kept:
            text = " ".join(by_place[(index, p)].text for p in kept)
            focused.append(
                Passage(
                    number=passage.number,
                    chunk_id=passage.chunk_id,
                    document=passage.document,
                    page=passage.page,
                    section=passage.section,
                    text=text,
                )
            )
    return focused, float(scores.max())
