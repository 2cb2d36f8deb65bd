"""SFT examples: what the supervised stage learns from (the pilot's first step).

Every example is the prompt the generator would see today for a question (retrieval and
focusing included) and the answer it should give:

- a validated reference's answer (weighed ``SFT_VALIDATED_WEIGHT`` times);
- an unreviewed synthetic pair that passed its checks: its requirement restated, citing
  the number under which its source passage appears in that very prompt;
- the decline, for a reference the documents do not cover, and for a share
  (``SFT_DECLINE_SHARE``) of decline examples: a synthetic question shown passages that
  look related but do not hold its answer (its source and every passage stating one of its
  values left out), so the model learns that the nearest text is not always an answer.

Nothing a held-out set holds ever teaches (``references.selectors.heldout_set_names``).
"""

from __future__ import annotations

import random
from collections import Counter

from django.conf import settings
from django.db import transaction

from apps.answering.pipeline import passages_for, prompt_for, prompt_messages, retrieve
from apps.documents.selectors import SearchHit, search_chunks
from apps.references.models import Reference, ReferenceSet
from apps.references.selectors import references_for_sft
from apps.training.models import DataSnapshot, SFTExample
from apps.training.services.data import file_sha256, snapshot_path, teaching_set_check
from ml import synthesis
from ml.prompting import DECLINE
from ml.training.data import SFTExample as TrlExample
from ml.training.data import write_jsonl

DECLINE_SEED = 7


def _synthetic_example(reference: Reference) -> tuple[list[dict[str, str]], str] | None:
    """The pair's prompt today and its answer citing its source, or None when the source
    passage no longer comes back for the question (the library changed since)."""
    hits = retrieve(reference.question)
    numbers = [n for n, hit in enumerate(hits, start=1) if hit.chunk_id == reference.chunk_id]
    if not numbers:
        return None
    messages, _ = prompt_messages(reference.question, passages_for(hits))
    return messages, synthesis.with_citation(reference.answer, numbers[0])


def decline_hits(reference: Reference) -> list[SearchHit] | None:
    """The nearest passages to the pair's question that do not answer it (its source, its
    page and every passage stating one of its values left out), or None when fewer than
    ANSWER_PASSAGES such passages remain. SFT teaches the decline over them;
    bench/decline_probe.py measures it over the held-out pairs' ones."""
    wanted = settings.ANSWER_PASSAGES
    values = [synthesis.numbers(value) for value in reference.key_facts]
    hits = [
        hit
        for hit in search_chunks(query=reference.question, k=wanted * 4)
        if hit.chunk_id != reference.chunk_id
        and (hit.document_id, hit.page_number) != (reference.document_id, reference.page)
        and not any(value <= synthesis.numbers(hit.text) for value in values)
    ][:wanted]
    return hits if len(hits) == wanted else None


def _decline_example(reference: Reference) -> list[dict[str, str]] | None:
    """The question's prompt over ``decline_hits``, or None when too few remain."""
    hits = decline_hits(reference)
    return None if hits is None else prompt_messages(reference.question, passages_for(hits))[0]


def sft_build(*, set_name: str = ReferenceSet.TRAINING) -> DataSnapshot:
    """Builds the SFT examples of ``set_name`` into a new snapshot. A held-out set is
    refused (InvalidTrainingSet) before anything is built."""
    teaching_set_check(set_name=set_name)
    counts: Counter[str] = Counter()
    rows: list[tuple[Reference, list[dict[str, str]], str]] = []
    synthetic: list[Reference] = []
    for reference in references_for_sft(set_name=set_name):
        weight = (
            settings.SFT_VALIDATED_WEIGHT if reference.status == Reference.Status.VALIDATED else 1
        )
        if reference.source == Reference.Source.SYNTHETIC and reference.answerable:
            example = _synthetic_example(reference)
            if example is None:
                counts["source_lost"] += 1
                continue
            synthetic.append(reference)
            counts["synthetic"] += 1
        else:
            completion = reference.answer if reference.answerable else DECLINE
            example = (prompt_for(reference.question), completion)
            counts["references" if reference.answerable else "unanswerable"] += 1
        rows.extend([(reference, *example)] * weight)
    share = settings.SFT_DECLINE_SHARE
    wanted = round(share * len(rows) / (1 - share)) if 0 < share < 1 else 0
    for reference in random.Random(DECLINE_SEED).sample(synthetic, min(wanted, len(synthetic))):
        prompt = _decline_example(reference)
        if prompt is not None:
            rows.append((reference, prompt, DECLINE))
            counts["declines"] += 1
    with transaction.atomic():
        snapshot = DataSnapshot.objects.create(kind=DataSnapshot.Kind.SFT)
        stored = [
            SFTExample(snapshot=snapshot, reference=reference, prompt=prompt, completion=answer)
            for reference, prompt, answer in rows
        ]
        SFTExample.objects.bulk_create(stored)
        path = snapshot_path("sft", snapshot.pk)
        write_jsonl(path, (TrlExample(tuple(r.prompt), r.completion).as_trl() for r in stored))
        snapshot.size, snapshot.counts = len(stored), dict(counts)
        snapshot.path, snapshot.sha256 = str(path), file_sha256(path)
        snapshot.save()
    return snapshot


def snapshot_examples(snapshot: DataSnapshot) -> list[TrlExample]:
    return [TrlExample(tuple(r.prompt), r.completion) for r in snapshot.examples.all()]
