"""Answering one question: retrieval, the prompt, generation, citations. Every caller (the
Ask page and API, ``ask``, evaluation, sampling, training data) answers through here, and
gets back an ``AnswerRecord``: exactly what an Answer row stores.

``answer_events`` yields the text as it is generated and then the record; ``answer_run``
returns the record alone; ``prompt_for`` is the chat the generator would see today.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

import numpy as np
from django.conf import settings

from apps.answering.engine import answer_generation, get_generator, using_adapter
from apps.documents.models import Chunk
from apps.documents.selectors import MAX_QUERY_CHARS, SearchHit, search_chunks
from ml.focus import focus_scored
from ml.generator import GenerationResult, GenerationSettings
from ml.prompting import (
    DECLINE,
    FOCUSED_TEMPLATE_VERSION,
    TEMPLATE_VERSION,
    Passage,
    build_messages,
    cited_numbers,
    is_decline,
    split_sentences,
    strip_invalid_citations,
    trim_to_sentence,
)

ATTRIBUTION_MIN_SIMILARITY = 0.45
# A question that refers back to the conversation: it opens with a continuation ("and the
# maximum?", "what about offices?"), points back with a pronoun ("does it apply to
# hangars?"), or is too short to stand alone.
_REFERS_BACK = re.compile(
    r"^\W*(and|or|but|also|so|then|what about|how about|what if|same)\b"
    # ("that" and "such" are left out: most standalone questions use them as relatives).
    r"|\b(it|its|they|them|their|this|these|those|same|above|previous)\b",
    re.IGNORECASE,
)
FOLLOW_UP_MAX_WORDS = 4


class RetrievedPassage(TypedDict):
    """One retrieved passage as an answer stores it (``Answer.retrieved``, ``citations``)."""

    number: int  # [n] in the prompt and the answer
    chunk_id: int
    document_id: int
    document: str
    kind: str
    page: int | None
    page_label: str
    section: str
    score: float
    similarity: float
    vector_rank: int | None
    text_rank: int | None


@dataclass
class AnswerRecord:
    """A finished answer with everything needed to show, judge and learn from it."""

    question: str
    retrieval_query: str = ""  # what retrieval searched with (the question, or with its context)
    text: str = ""
    declined: bool = False
    citations: list[RetrievedPassage] = field(default_factory=list)
    citation_source: str = ""  # model | attributed | "" (no citations)
    retrieved: list[RetrievedPassage] = field(default_factory=list)
    prompt_messages: list[dict[str, str]] = field(default_factory=list)
    template_version: str = TEMPLATE_VERSION
    generation_settings: dict[str, Any] = field(default_factory=dict)
    model_name: str = ""
    adapter_version: str = ""
    retrieve_ms: float = 0.0
    first_token_ms: float = 0.0
    generate_ms: float | None = None
    total_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = ""

    def fields(self) -> dict[str, Any]:
        """The Answer model's field values (the question is already on the row)."""
        values = asdict(self)
        values.pop("question")
        return values


def passages_for(hits: list[SearchHit]) -> list[Passage]:
    """Search hits as the numbered passages of a prompt."""
    return [
        Passage(
            number=number,
            chunk_id=hit.chunk_id,
            document=hit.document_title,
            page=hit.page_number if hit.kind == "pdf" else None,
            section=hit.section,
            text=hit.text,
        )
        for number, hit in enumerate(hits, start=1)
    ]


def retrieved_record(number: int, hit: SearchHit) -> RetrievedPassage:
    return RetrievedPassage(
        number=number,
        chunk_id=hit.chunk_id,
        document_id=hit.document_id,
        document=hit.document_title,
        kind=hit.kind,
        page=hit.page_number,
        page_label=hit.page_label,
        section=hit.section,
        score=round(hit.score, 6),
        similarity=round(hit.similarity, 4),
        vector_rank=hit.vector_rank,
        text_rank=hit.text_rank,
    )


def refers_back(question: str) -> bool:
    return bool(_REFERS_BACK.search(question)) or len(question.split()) <= FOLLOW_UP_MAX_WORDS


def follow_up_context(question: str, previous: str) -> str:
    """What of the conversation's previous turn (its retrieval query, so a chain of
    follow-ups keeps the topic it started from) retrieval combines with ``question``:
    all of it when the question refers back, nothing when it stands alone."""
    previous = " ".join(previous.split())
    if not previous or not refers_back(question):
        return ""
    return previous[: max(0, MAX_QUERY_CHARS - len(question) - 1)]


def retrieval_text(question: str, context: str = "") -> str:
    return f"{context} {question}" if context else question


def retrieve(question: str, context: str = "") -> list[SearchHit]:
    """The passages for ``question``; with ``context`` (a follow-up's previous turn) the
    question and its context weigh equally: the query vector is the mean of their two
    embeddings and the full-text side matches the words of both. (Embedding the two as one
    text lets the longer, earlier question drown the follow-up's own subject.)"""
    if not context:
        return search_chunks(query=question, k=settings.ANSWER_PASSAGES)
    from apps.documents.embedding import remembering_embedder

    vectors = remembering_embedder().embed([question, context])
    vector = vectors.mean(axis=0)
    vector /= np.linalg.norm(vector) or 1.0
    return search_chunks(
        query=retrieval_text(question, context),
        k=settings.ANSWER_PASSAGES,
        query_vector=[float(v) for v in vector],
    )


def prompt_for(question: str) -> list[dict[str, str]]:
    """The chat the generator would see for ``question`` today (retrieval included)."""
    return prompt_messages(question, passages_for(retrieve(question)))[0]


def prompt_messages(question: str, passages: list[Passage]) -> tuple[list[dict[str, str]], str]:
    """The prompt for ``question`` over ``passages`` and its template version: with
    ANSWER_FOCUS_SENTENCES > 0 only that many of their best sentences go in (each under its
    passage's number and source), else the whole passages."""
    messages, version, _ = _prompt_plan(question, passages)
    return messages, version


def _prompt_plan(
    question: str, passages: list[Passage]
) -> tuple[list[dict[str, str]], str, float | None]:
    """``prompt_messages`` and the focus's best sentence score (None without focusing)."""
    if settings.ANSWER_FOCUS_SENTENCES <= 0 or not passages:
        return build_messages(question, passages), TEMPLATE_VERSION, None
    from apps.documents.selectors import sentence_embedder

    embed = sentence_embedder([p.chunk_id for p in passages])
    focused, best = focus_scored(question, passages, embed, limit=settings.ANSWER_FOCUS_SENTENCES)
    return build_messages(question, focused), FOCUSED_TEMPLATE_VERSION, best


def _gated(hits: list[SearchHit], best_sentence: float | None) -> bool:
    """Whether to decline without generating: nothing retrieved, the best passage below
    ANSWER_MIN_SIMILARITY, or no sentence of the passages scoring ANSWER_MIN_SENTENCE_SCORE
    against the question (relevant pages, but nothing on them that answers it)."""
    if not hits or hits[0].similarity < settings.ANSWER_MIN_SIMILARITY:
        return True
    return best_sentence is not None and best_sentence < settings.ANSWER_MIN_SENTENCE_SCORE


def passage_texts(retrieved: list[RetrievedPassage] | list[dict[str, Any]]) -> list[str]:
    """The texts of stored retrieved passages, in their order (deleted ones left out)."""
    chunk_ids = [r["chunk_id"] for r in retrieved if "chunk_id" in r]
    texts = dict(Chunk.objects.filter(pk__in=chunk_ids).values_list("pk", "text"))
    return [texts[c] for c in chunk_ids if c in texts]


def answer_events(
    *,
    question: str,
    generation: GenerationSettings | None = None,
    previous: str = "",
    hits: list[SearchHit] | None = None,
) -> Iterator[str | AnswerRecord]:
    """Answers ``question`` with this process's generator on its served adapter: text
    pieces as they are generated, then the record. ``previous``: the retrieval query of the
    conversation's previous turn, which a follow-up is retrieved with (the prompt keeps the
    user's own question). ``hits``: answer over these passages instead of retrieving (a
    benchmark's chosen ones); the rest, the gate included, is the same. Raises
    GeneratorUnavailable when the model cannot answer (nothing is stored here; the caller
    keeps the question)."""
    started = time.perf_counter()
    context = follow_up_context(question, previous) if hits is None else ""
    if hits is None:
        hits = retrieve(question, context)
    record = AnswerRecord(question=question, retrieval_query=retrieval_text(question, context))
    record.retrieve_ms = round((time.perf_counter() - started) * 1000, 1)
    passages = passages_for(hits)
    record.retrieved = [retrieved_record(n, hit) for n, hit in enumerate(hits, start=1)]
    record.prompt_messages, record.template_version, best = _prompt_plan(question, passages)
    settings_used = generation or answer_generation()
    record.generation_settings = settings_used.as_dict()
    result: GenerationResult | None = None
    if _gated(hits, best):
        # Nothing that answers was found: say so instead of letting the model improvise.
        text = DECLINE
        yield DECLINE
    else:
        for event in get_generator().stream(record.prompt_messages, settings_used):
            if isinstance(event, GenerationResult):
                result = event
            else:
                yield event
        assert result is not None
        text = result.text
    _finish(record, text=text, passages=passages, result=result)
    record.total_ms = round((time.perf_counter() - started) * 1000, 1)
    yield record


def answer_run(
    *,
    question: str,
    generation: GenerationSettings | None = None,
    adapter: str | None = None,
    hits: list[SearchHit] | None = None,
) -> AnswerRecord:
    """The whole record at once; ``adapter``: answer with that version (or ``base``)
    instead of the served one (workers and commands only, never the web server); ``hits``
    as for ``answer_events``."""
    if adapter is not None:
        with using_adapter(adapter):
            return answer_run(question=question, generation=generation, hits=hits)
    for event in answer_events(question=question, generation=generation, hits=hits):
        if isinstance(event, AnswerRecord):
            return event
    raise AssertionError("answer_events ended without a record")


def _finish(
    record: AnswerRecord,
    *,
    text: str,
    passages: list[Passage],
    result: GenerationResult | None,
) -> None:
    text = strip_invalid_citations(trim_to_sentence(text), len(passages)) or DECLINE
    declined = is_decline(text)
    numbers = cited_numbers(text, len(passages))
    source = "model"
    if not numbers and not declined and passages:
        text, numbers = _attribute(text, passages)
        source = "attributed" if numbers else ""
    by_number = {r["number"]: r for r in record.retrieved}
    record.text = text
    record.declined = declined
    record.citations = [by_number[n] for n in numbers if n in by_number]
    record.citation_source = source if numbers else ""
    if result is not None:
        record.model_name = result.model
        record.adapter_version = result.adapter
        record.first_token_ms = round(record.retrieve_ms + result.first_token_ms, 1)
        record.generate_ms = result.generate_ms
        record.prompt_tokens = result.prompt_tokens
        record.completion_tokens = result.completion_tokens
        record.finish_reason = result.finish_reason
    else:
        record.model_name, record.adapter_version = "retrieval-gate", ""
        record.first_token_ms = record.retrieve_ms


def _attribute(text: str, passages: list[Passage]) -> tuple[str, list[int]]:
    """Adds [n] after each sentence that closely matches passage n (small models often
    answer correctly but forget to cite). Sentences that match nothing stay unmarked."""
    from apps.documents.embedding import get_embedder

    sentences = split_sentences(text)
    if not sentences:
        return text, []
    stored = dict(
        Chunk.objects.filter(pk__in=[p.chunk_id for p in passages]).values_list("pk", "embedding")
    )
    matrix = np.array([stored[p.chunk_id] for p in passages], dtype=np.float32)
    vectors = get_embedder().embed([s.strip() for s in sentences])
    similarity = vectors @ matrix.T
    marked: list[str] = []
    numbers: list[int] = []
    for sentence, row in zip(sentences, similarity, strict=True):
        best = int(row.argmax())
        if row[best] >= ATTRIBUTION_MIN_SIMILARITY:
            number = passages[best].number
            stripped = sentence.rstrip()
            end = stripped[-1] if stripped[-1] in ".!?" else ""
            body = stripped[:-1] if end else stripped
            sentence = f"{body} [{number}]{end}" + sentence[len(stripped) :]
            if number not in numbers:
                numbers.append(number)
        marked.append(sentence)
    return "".join(marked).strip(), numbers
