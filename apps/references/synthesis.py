"""Synthetic question/answer pairs from the library's requirement sentences, checked
automatically before any person looks (the pilot's first step: SFT on validated pairs).

One pair per sentence: the answer model (or the larger one a deployment configures as its
generator) writes the question; the reference answer is the sentence's requirement,
restated with its numbers and units. A pair may teach only when:

- the question is a real question that does not already state the value it asks for, nor
  asks for a value the sentence does not state;
- asked in the portal, it retrieves its source passage within the passages an answer sees,
  and the focused prompt keeps the source sentence (else the model would be taught to
  answer from text it was never shown);
- the answer carries every measured value of the sentence;
- it does not nearly repeat a question already written (they collapse into the first).

Pairs that pass wait in the SMEs' synthetic queue, and teach meanwhile; SME-validated ones
weigh more and rejected ones never teach. Pairs that fail are kept as rejected with the
reason, so a re-run never writes the same sentence again. A share of those that pass goes
to the held-out set ``synthetic-heldout``: they measure, and never teach.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from apps.answering.engine import complete, get_generator
from apps.answering.pipeline import passages_for, prompt_messages, retrieve
from apps.documents.embedding import get_embedder
from apps.documents.models import Chunk, Document
from apps.references.models import Reference, ReferenceSet
from apps.references.services import InvalidReferences, reference_set_ensure
from ml import synthesis
from ml.generator import Generator
from ml.openai_generator import OpenAICompatibleGenerator

QUESTION_TOKENS = 48
DUPLICATE_SIMILARITY = 0.92  # cosine of two questions' embeddings
SYNTHESIS_LOCK = int.from_bytes(hashlib.sha256(b"plumbline.synthesis").digest()[:4], "big")


@dataclass
class SynthesisResult:
    sentences: int = 0  # requirement sentences in the library not yet used
    attempted: int = 0
    passed: int = 0
    heldout: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    ids: list[int] = field(default_factory=list)
    already_written: int = 0  # by another run of the same sentences meanwhile

    def as_dict(self) -> dict[str, Any]:
        return {
            "sentences": self.sentences,
            "attempted": self.attempted,
            "passed": self.passed,
            "heldout": self.heldout,
            "failed": dict(self.failed),
            "already_written": self.already_written,
        }


def requirement_candidates(*, document_id: int | None = None) -> list[tuple[Chunk, str]]:
    """Every requirement sentence of the searchable library with its passage, minus the
    sentences a synthetic pair was already written from."""
    chunks = Chunk.objects.filter(searchable=True, document__is_current=True)
    if document_id is not None:
        chunks = chunks.filter(document_id=document_id)
    used = set(
        Reference.objects.filter(source=Reference.Source.SYNTHETIC).values_list("chunk_id", "quote")
    )
    found: list[tuple[Chunk, str]] = []
    for chunk in chunks.select_related("document").order_by("pk"):
        for sentence in synthesis.requirement_sentences(chunk.text):
            if (chunk.pk, sentence) not in used:
                found.append((chunk, sentence))
    return found


def question_writer() -> Generator:
    """The model that writes the questions: a larger one behind an OpenAI-style endpoint
    when SYNTHESIS_BASE_URL names one (production: vLLM, or any chat-completions API), else
    the answer model itself."""
    if not settings.SYNTHESIS_BASE_URL:
        return get_generator(watch=False)
    return OpenAICompatibleGenerator(
        settings.SYNTHESIS_BASE_URL,
        model=settings.SYNTHESIS_MODEL,
        api_key=settings.SYNTHESIS_API_KEY,
    )


def _heldout(sentence: str) -> bool:
    """A stable share of the sentences measures: the same sentence always falls the same
    way, whatever order or run it comes in."""
    digest = hashlib.sha256(sentence.encode()).digest()
    return digest[0] / 256 < settings.SYNTHESIS_HELDOUT_SHARE


def _check(chunk: Chunk, sentence: str, question: str | None, answer: str) -> dict[str, Any]:
    """The automatic checks of one pair: ``passed`` and, when not, the first ``reason``."""
    if question is None:
        return {"passed": False, "reason": "no usable question in the writer's reply"}
    if synthesis.leaks_answer(question, sentence):
        return {"passed": False, "reason": "the question states the value it asks for"}
    if synthesis.asks_for_missing_value(question, sentence):
        return {"passed": False, "reason": "the question asks for a value the sentence lacks"}
    if not synthesis.carries_numbers(answer, sentence):
        return {"passed": False, "reason": "the answer lost a value of its sentence"}
    hits = retrieve(question)
    ranks = [hit.chunk_id for hit in hits]
    if chunk.pk not in ranks:
        return {"passed": False, "reason": "the question does not retrieve its source passage"}
    messages, _ = prompt_messages(question, passages_for(hits))
    if not synthesis.shows_requirement(messages[-1]["content"], sentence):
        return {"passed": False, "reason": "the focused prompt leaves the source sentence out"}
    return {"passed": True, "rank": ranks.index(chunk.pk) + 1}


def synthetic_requirements_generate(
    *, limit: int, document_id: int | None = None, seed: int = 0
) -> SynthesisResult:
    """Writes and checks up to ``limit`` pairs from requirement sentences not used before
    (sampled with ``seed``, spread over the library). Safe to run again: each run takes
    new sentences only. Raises InvalidReferences when the library holds no requirement
    sentence left to use, or when not one written pair passed its checks."""
    if limit < 1:
        raise InvalidReferences("Ask for at least one pair.")
    candidates = requirement_candidates(document_id=document_id)
    result = SynthesisResult(sentences=len(candidates))
    if not candidates:
        raise InvalidReferences(
            "the library holds no requirement sentence without a pair (sentences that state "
            "a value or say must/shall/minimum): ingest design-criteria documents first"
        )
    chosen = random.Random(seed).sample(candidates, min(limit, len(candidates)))
    writer = question_writer()
    generated_by = f"{writer.model_name}:{writer.served_adapter}"
    training = reference_set_ensure(name=ReferenceSet.TRAINING)
    heldout = reference_set_ensure(name=ReferenceSet.SYNTHETIC_HELDOUT)
    written: list[Reference] = []
    for chunk, sentence in chosen:
        reply = complete(
            synthesis.question_messages(sentence), max_new_tokens=QUESTION_TOKENS, generator=writer
        )
        question = synthesis.parse_question(reply)
        answer = synthesis.statement(sentence)
        checks = _check(chunk, sentence, question, answer)
        reference = Reference(
            reference_set=heldout if _heldout(sentence) else training,
            question=question or reply.strip()[:500] or "(no reply)",
            answer=answer,
            key_facts=synthesis.measures(sentence),
            source=Reference.Source.SYNTHETIC,
            status=Reference.Status.PENDING if checks["passed"] else Reference.Status.REJECTED,
            checks=checks,
            chunk=chunk,
            document=chunk.document,
            document_name=chunk.document.filename,
            page=chunk.page_number if chunk.document.kind == Document.Kind.PDF else None,
            section=chunk.section[:60],
            quote=sentence,
            generated_by=generated_by,
        )
        written.append(reference)
    with transaction.atomic():
        # One run at a time saves (a doubled or redelivered message writes the same
        # sentences): each keeps only the sentences that no other run saved meanwhile.
        _lock_synthesis()
        saved = set(
            Reference.objects.filter(
                source=Reference.Source.SYNTHETIC, chunk__in=[r.chunk_id for r in written]
            ).values_list("chunk_id", "quote")
        )
        fresh = [r for r in written if (r.chunk_id, r.quote) not in saved]
        result.already_written = len(written) - len(fresh)
        written = fresh
        _collapse_duplicates(written)
        result.attempted = len(written)
        for reference in written:
            reference.save()
            result.ids.append(reference.pk)
            if reference.checks["passed"]:
                result.passed += 1
                result.heldout += reference.reference_set_id == heldout.pk
            else:
                result.failed[reference.checks["reason"]] += 1
    if result.passed == 0 and result.attempted:
        raise InvalidReferences(
            f"none of {result.attempted} synthetic pairs passed its checks "
            f"({', '.join(f'{n} {why}' for why, n in result.failed.most_common())}): "
            "the question writer may be returning nothing usable"
        )
    return result


def _lock_synthesis() -> None:
    """Holds PostgreSQL's transaction-level advisory lock for saving synthetic pairs."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SYNTHESIS_LOCK])


def _collapse_duplicates(written: list[Reference]) -> None:
    """Questions that nearly repeat an earlier one (of this run or before) are rejected,
    so one requirement never teaches twice under two wordings."""
    passing = [r for r in written if r.checks["passed"]]
    if not passing:
        return
    vectors = get_embedder().embed([r.question for r in passing])
    for reference, vector in zip(passing, vectors, strict=True):
        reference.question_embedding = vector.tolist()
    earlier = list(
        Reference.objects.filter(source=Reference.Source.SYNTHETIC, checks__passed=True)
        .exclude(question_embedding__isnull=True)
        .values_list("question_embedding", flat=True)
    )
    matrix = np.array([*earlier, *vectors], dtype=np.float32).reshape(-1, vectors.shape[1])
    duplicate_of = synthesis.near_duplicates(matrix, threshold=DUPLICATE_SIMILARITY)
    for index, reference in enumerate(passing, start=len(earlier)):
        if duplicate_of[index] >= 0:
            reference.checks = {"passed": False, "reason": "nearly repeats another question"}
            reference.status = Reference.Status.REJECTED
