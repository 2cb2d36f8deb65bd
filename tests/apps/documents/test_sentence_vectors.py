"""Sentence vectors stored at ingest: a focused prompt then embeds only its question."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from django.core.management import call_command

from apps.answering.pipeline import passages_for, prompt_messages, retrieve
from apps.documents import embedding
from apps.documents.models import Chunk, SentenceVector
from ml.embeddings import RememberingEmbedder
from ml.focus import sentence_texts
from tests import support

pytestmark = pytest.mark.django_db

QUESTION = "What indoor design temperature applies to warehouse forklift areas?"


class _Counting:
    def __init__(self, real) -> None:
        self.real, self.name, self.dimensions = real, real.name, real.dimensions
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.real.embed(texts)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> _Counting:
    """A fresh answer-time embedder (nothing remembered) that counts what it embeds."""
    counter = _Counting(embedding.get_embedder())
    monkeypatch.setattr(embedding, "_remembering", RememberingEmbedder(counter))
    return counter


def _expected(document_id: int) -> int:
    return sum(
        len(sentence_texts(text))
        for text in Chunk.objects.filter(document_id=document_id).values_list("text", flat=True)
    )


def test_ingest_stores_every_sentence_and_the_prompt_embeds_only_its_question(
    small_pdf: bytes, counting: _Counting
):
    document = support.ingest("ufc.pdf", small_pdf)
    stored = SentenceVector.objects.filter(chunk__document=document)
    assert stored.count() == _expected(document.pk) > 50
    row = stored.first()
    assert row is not None and row.embedder == embedding.get_embedder().name
    assert row.text == sentence_texts(row.chunk.text)[row.position]

    passages = passages_for(retrieve(QUESTION))
    counting.texts.clear()
    messages, _ = prompt_messages(QUESTION, passages)
    # The question was embedded (and remembered) for retrieval; the passages' sentences came
    # from the store.
    assert set(counting.texts) <= {QUESTION}
    assert "55°F" in messages[-1]["content"]


def test_a_library_without_them_gets_them_once(small_pdf: bytes, counting: _Counting, capsys):
    document = support.ingest("ufc.pdf", small_pdf)
    SentenceVector.objects.all().delete()
    passages = passages_for(retrieve(QUESTION))
    counting.texts.clear()
    before, _ = prompt_messages(QUESTION, passages)
    assert len(counting.texts) > 1  # without the store every sentence is embedded

    call_command("ingest", "--sentence-vectors")
    assert f"{_expected(document.pk)} sentence vectors stored" in capsys.readouterr().out
    call_command("ingest", "--sentence-vectors")
    assert "0 sentence vectors stored" in capsys.readouterr().out
    # The same prompt from stored vectors as from fresh ones.
    monkey_fresh = RememberingEmbedder(_Counting(embedding.get_embedder()))
    embedding._remembering = monkey_fresh
    after, _ = prompt_messages(QUESTION, passages)
    assert after == before
    assert monkey_fresh.embedder.texts == [QUESTION]  # type: ignore[attr-defined]
    assert len(counting.texts) > 10
