"""Synthetic pairs from requirement sentences: written by the answer model, checked
automatically (the round trip), waiting for an SME; what fails never teaches."""

from __future__ import annotations

import pytest

from apps.references.models import Reference
from apps.references.services import InvalidReferences, reference_set_ensure
from apps.references.synthesis import (
    _check,
    requirement_candidates,
    synthetic_requirements_generate,
)
from apps.training.services.sft import sft_build
from ml import synthesis
from ml.prompting import DECLINE
from tests import support

pytestmark = pytest.mark.django_db


@pytest.mark.timeout(300)
def test_pairs_are_written_from_requirement_sentences_and_checked(
    small_pdf: bytes, base_model_path
):
    document = support.ingest("ufc.pdf", small_pdf)
    sentences = requirement_candidates(document_id=document.pk)
    assert len(sentences) >= 8
    result = synthetic_requirements_generate(limit=8, document_id=document.pk, seed=1)
    assert result.attempted == 8 and result.passed >= 1  # SmolLM2-135M writes some well
    assert result.passed + sum(result.failed.values()) == 8
    pairs = Reference.objects.filter(source=Reference.Source.SYNTHETIC)
    assert pairs.count() == 8
    for pair in pairs:
        assert pair.chunk is not None
        assert pair.chunk.document == document and pair.quote in " ".join(pair.chunk.text.split())
        assert pair.answer == synthesis.statement(pair.quote)
        assert pair.key_facts == synthesis.measures(pair.quote)
        if pair.checks["passed"]:
            # It waits for an SME, and its question finds its source passage again.
            assert pair.status == Reference.Status.PENDING
            assert 1 <= pair.checks["rank"] <= 4 and pair.question.endswith("?")
            assert pair.reference_set.name in {"training", "synthetic-heldout"}
        else:
            assert pair.status == Reference.Status.REJECTED and pair.checks["reason"]
    # A second run would take only sentences that have no pair yet.
    left = requirement_candidates(document_id=document.pk)
    assert len(left) == len(sentences) - 8
    assert not {(c.pk, s) for c, s in left} & set(pairs.values_list("chunk_id", "quote"))


def test_a_question_that_misses_its_source_fails_the_round_trip(small_pdf: bytes):
    document = support.ingest("ufc.pdf", small_pdf)
    chunk, sentence = next(
        (c, s)
        for c, s in requirement_candidates(document_id=document.pk)
        if "Moderate Physical" in s
    )
    answer = synthesis.statement(sentence)
    assert _check(chunk, sentence, None, answer)["reason"].startswith("no usable question")
    leaked = "What temperature of 55°F must forklift areas have?"
    assert "states the value" in _check(chunk, sentence, leaked, answer)["reason"]
    lost = _check(chunk, sentence, "What temperature must forklift areas have?", "Warm.")
    assert "lost a value" in lost["reason"]
    # With more of the library to search, a question about something else misses it.
    support.ingest("hud.pdf", support.pdf_pages(support.HUD, [4, 5, 6, 7, 8]))
    elsewhere = _check(
        chunk, sentence, "How must a unit's air conditioning system be inspected?", answer
    )
    assert elsewhere["reason"] == "the question does not retrieve its source passage"


def test_only_pairs_that_passed_their_checks_teach(small_pdf: bytes, settings):
    settings.SFT_DECLINE_SHARE = 0.0
    document = support.ingest("ufc.pdf", small_pdf)
    training = reference_set_ensure(name="training")
    candidates = requirement_candidates(document_id=document.pk)
    chunk, sentence = next((c, s) for c, s in candidates if "Moderate Physical" in s)
    question = "What is the minimum temperature for warehouse forklift areas?"
    checks = _check(chunk, sentence, question, synthesis.statement(sentence))
    assert checks["passed"], checks

    def pair(status: str, checks: dict, question: str = question) -> Reference:
        return Reference.objects.create(
            reference_set=training,
            question=question,
            answer=synthesis.statement(sentence),
            source=Reference.Source.SYNTHETIC,
            status=status,
            checks=checks,
            chunk=chunk,
            document=document,
            quote=sentence,
        )

    passed = pair(Reference.Status.PENDING, checks)
    pair(Reference.Status.PENDING, {"passed": False, "reason": "round trip"}, "Heat what?")
    pair(Reference.Status.REJECTED, checks, "What heat do forklift areas need in winter?")
    snapshot = sft_build()
    rows = list(snapshot.examples.all())
    assert [r.reference_id for r in rows] == [passed.pk]
    completion = rows[0].completion
    # The answer states the requirement and cites the number its source has in the prompt.
    assert "55" in completion and completion.endswith(f"[{checks['rank']}].")
    assert f"[{checks['rank']}] (" in rows[0].prompt[-1]["content"]
    # Validated by an SME, it weighs more.
    Reference.objects.filter(pk=passed.pk).update(status=Reference.Status.VALIDATED)
    assert sft_build().size == settings.SFT_VALIDATED_WEIGHT


def test_decline_examples_show_passages_without_the_answer(small_pdf: bytes, settings):
    settings.SFT_DECLINE_SHARE = 0.5
    document = support.ingest("ufc.pdf", small_pdf)
    training = reference_set_ensure(name="training")
    for chunk, sentence in requirement_candidates(document_id=document.pk)[:6]:
        question = f"What does the standard say: {sentence[:60]}?"
        Reference.objects.create(
            reference_set=training,
            question=question,
            answer=synthesis.statement(sentence),
            key_facts=synthesis.measures(sentence),
            source=Reference.Source.SYNTHETIC,
            status=Reference.Status.PENDING,
            checks={"passed": True, "rank": 1},
            chunk=chunk,
            document=document,
            page=chunk.page_number,
            quote=sentence,
        )
    snapshot = sft_build()
    declines = [r for r in snapshot.examples.all() if r.completion == DECLINE]
    assert declines and snapshot.counts["declines"] == len(declines)
    for row in declines:
        assert row.reference is not None
        assert row.reference.quote not in " ".join(row.prompt[-1]["content"].split())


def test_a_writer_that_returns_garbage_is_a_clear_error(small_pdf: bytes, settings, tiny_gguf):
    settings.GENERATOR_GGUF_PATH = str(tiny_gguf)  # a randomly initialised model
    from apps.answering.engine import reset_generator

    reset_generator()
    document = support.ingest("ufc.pdf", small_pdf)
    try:
        with pytest.raises(InvalidReferences, match="none of 3 synthetic pairs passed"):
            synthetic_requirements_generate(limit=3, document_id=document.pk)
    finally:
        reset_generator()
    # Nothing it wrote waits for an SME or teaches.
    assert not Reference.objects.filter(status=Reference.Status.PENDING).exists()


def test_asking_for_nothing_is_an_error():
    with pytest.raises(InvalidReferences, match="at least one"):
        synthetic_requirements_generate(limit=0)


def test_a_library_without_requirements_is_a_clear_error():
    with pytest.raises(InvalidReferences, match="no requirement sentence"):
        synthetic_requirements_generate(limit=5)
