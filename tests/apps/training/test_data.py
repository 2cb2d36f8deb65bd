"""Preference pairs and SFT examples from what the portal stored, snapshotted in TRL's
shape: better answers, score gaps, trusted labels first, no duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.feedback.models import Feedback
from apps.feedback.services import feedback_submit
from apps.judging.models import Judgement
from apps.qa.models import Answer, Conversation
from apps.references.services import references_import
from apps.review.services import better_answer_decide, judgement_validate
from apps.training.models import DataSnapshot, PreferencePair
from apps.training.services.data import preferences_build
from apps.training.services.sft import sft_build
from ml.prompting import DECLINE
from ml.training.data import read_pairs, read_sft
from tests import support

pytestmark = pytest.mark.django_db

PROMPT = [
    {"role": "system", "content": "Answer from the passages."},
    {"role": "user", "content": "Q?"},
]


def _answer(question: str, text: str, origin: str = "user") -> Answer:
    conversation = Conversation.objects.create(title=question)
    return Answer.objects.create(
        conversation=conversation,
        question=question,
        text=text,
        status=Answer.Status.DONE,
        prompt_messages=PROMPT,
        origin=origin,
        model_name="m",
    )


def _judged(answer: Answer, score: float, version: str = "local:m:v1") -> Judgement:
    return Judgement.objects.create(
        answer=answer, judge_version=version, backend="local", status="done", score=score
    )


def test_better_answers_and_score_gaps_become_pairs_in_trl_shape():
    user = support.make_user("eve", "engineers")
    sme = support.make_user("sam", "smes")
    bad = _answer("What leak rate triggers repair?", "Leaks are bad.")
    feedback_submit(answer_id=bad.pk, user=user, score=1, better_answer="Above 10% a year.")
    good = _answer("How fast must leaks be fixed?", "Within 30 days.")
    worse = _answer("How fast must leaks be fixed?", "Eventually.")
    _judged(good, 4.5)
    _judged(worse, 1.0)
    close = _answer("Which duct sealant?", "Mastic.")
    closer = _answer("Which duct sealant?", "Tape.")
    _judged(close, 3.0)
    _judged(closer, 2.5)  # a gap below the margin: no pair

    # Nobody has reviewed the better answer yet: it does not train.
    snapshot = preferences_build(min_margin=1.0)
    assert snapshot.size == 1 and snapshot.counts == {"score_gap": 1, "label_ai": 1}
    better_answer_decide(feedback_id=Feedback.objects.get(answer=bad).pk, reviewer=sme, accept=True)
    snapshot = preferences_build(min_margin=1.0)
    assert snapshot.size == 2
    assert snapshot.counts == {"better_answer": 1, "score_gap": 1, "label_sme": 1, "label_ai": 1}
    pairs = {p.source: p for p in snapshot.pairs.all()}
    assert (pairs["better_answer"].chosen, pairs["better_answer"].rejected) == (
        "Above 10% a year.",
        "Leaks are bad.",
    )
    assert pairs["score_gap"].margin == 3.5 and pairs["score_gap"].prompt == PROMPT
    # The file is what TRL reads, and its checksum is recorded.
    records = [json.loads(line) for line in Path(snapshot.path).read_text().splitlines()]
    assert records[0]["prompt"] == PROMPT and records[0]["chosen"][0]["role"] == "assistant"
    assert len(read_pairs(Path(snapshot.path))) == 2
    assert len(snapshot.sha256) == 64

    # An SME accepting (and editing) the better answer makes it an SME-labelled pair.
    feedback = Feedback.objects.get(answer=bad)
    better_answer_decide(
        feedback_id=feedback.pk, reviewer=sme, accept=True, answer_text="Above 10% a year [1]."
    )
    again = preferences_build(min_margin=1.0)
    pair = again.pairs.get(source="better_answer")
    assert (pair.label, pair.chosen) == (PreferencePair.Label.SME, "Above 10% a year [1].")
    assert DataSnapshot.objects.count() == 3  # each build is its own snapshot


def test_an_unreviewed_better_answer_never_trains():
    """Found on a running instance: an engineer's 'better answer' became the chosen response
    with no SME action, and the nightly loop promotes on its own."""
    user = support.make_user("eve", "engineers")
    bad = _answer("What leak rate triggers repair?", "Leaks are bad.")
    feedback_submit(answer_id=bad.pk, user=user, score=1, better_answer="CANARY-7Q")
    triaged = _answer("How fast must leaks be fixed?", "Eventually.")
    feedback_submit(answer_id=triaged.pk, user=user, score=2, better_answer="CANARY-8Q")
    snapshot = preferences_build(min_margin=1.0)
    assert snapshot.size == 0
    assert "CANARY" not in Path(snapshot.path).read_text()


def test_sme_validated_scores_outrank_the_ai_judge():
    sme = support.make_user("sam", "smes")
    first = _answer("What is the design temperature?", "68 °F.")
    second = _answer("What is the design temperature?", "72 °F.")
    _judged(first, 1.0)
    judgement = _judged(second, 5.0)
    # The AI preferred the second answer; an expert says it is wrong.
    judgement_validate(judgement_id=judgement.pk, reviewer=sme, score=0.5, reason="72 is cooling")
    judgement_validate(
        judgement_id=Judgement.objects.get(answer=first).pk, reviewer=sme, score=5.0, reason="ok"
    )
    [pair] = preferences_build(min_margin=1.0).pairs.all()
    assert (pair.chosen, pair.rejected, pair.label) == (
        "68 °F.",
        "72 °F.",
        PreferencePair.Label.SME,
    )


def test_duplicates_collapse_and_declines_by_the_gate_are_left_out():
    user = support.make_user("eve", "engineers")
    other = support.make_user("bob", "engineers")
    sme = support.make_user("sam", "smes")
    for rater in (user, other):  # the same better answer for the same answer, twice
        answer = _answer("What leak rate triggers repair?", "Leaks are bad.")
        feedback = feedback_submit(
            answer_id=answer.pk, user=rater, score=2, better_answer="Above 10% a year."
        )
        better_answer_decide(feedback_id=feedback.pk, reviewer=sme, accept=True)
    gated = _answer("Anything?", DECLINE)
    Answer.objects.filter(pk=gated.pk).update(model_name="retrieval-gate")
    _judged(gated, 0.0)
    assert preferences_build(min_margin=1.0).size == 1


def test_a_rejected_better_answer_is_not_used():
    sme = support.make_user("sam", "smes")
    answer = _answer("What leak rate triggers repair?", "Leaks are bad.")
    feedback = feedback_submit(
        answer_id=answer.pk, user=support.make_user("eve"), score=1, better_answer="No idea."
    )
    better_answer_decide(feedback_id=feedback.pk, reviewer=sme, accept=False)
    assert preferences_build(min_margin=1.0).size == 0


def test_sft_examples_come_from_validated_references_with_todays_retrieval(
    small_pdf, tmp_path, settings
):
    settings.SFT_VALIDATED_WEIGHT = 1
    support.ingest("ufc.pdf", small_pdf)
    lines = support.EVAL.read_text().splitlines()
    unanswerable = next(line for line in lines if '"answerable": false' in line)
    path = tmp_path / "train.jsonl"
    path.write_text(lines[0] + "\n" + unanswerable + "\n")
    references_import(path=path, set_name="training")
    snapshot = sft_build()
    assert snapshot.size == 2 and snapshot.counts == {"references": 1, "unanswerable": 1}
    examples = read_sft(Path(snapshot.path))
    assert examples[0].completion == json.loads(lines[0])["reference_answer"]
    assert examples[1].completion == DECLINE  # the right answer to what is not covered
    assert "[1]" in examples[0].prompt[-1]["content"]  # numbered passages, as when answering


def test_training_references_outrank_low_scored_answers_and_validation_stays_held_out():
    from apps.references.models import Reference, ReferenceSet

    training = ReferenceSet.objects.create(name="training")
    validation = ReferenceSet.objects.create(name="validation")
    for reference_set, question in ((training, "Train q?"), (validation, "Held-out q?")):
        reference = Reference.objects.create(
            reference_set=reference_set,
            question=question,
            answer=f"The answer to {question}",
            source=Reference.Source.IMPORTED,
            status=Reference.Status.VALIDATED,
        )
        for text, score in (("A poor answer.", 1.0), ("A decent answer.", 3.5)):
            answer = _answer(question, text, origin="sampling")
            Judgement.objects.create(
                answer=answer,
                reference=reference,
                judge_version="local:m:v1",
                backend="local",
                status="done",
                score=score,
            )
    snapshot = preferences_build(min_margin=5.0)  # no score-gap pairs: only the reference one
    [pair] = snapshot.pairs.all()
    assert (pair.source, pair.chosen, pair.rejected) == (
        "reference",
        "The answer to Train q?",
        "A poor answer.",
    )
    assert pair.label == PreferencePair.Label.AI and pair.margin == 4.0


def test_snapshots_download_for_smes_only():
    from django.test import Client

    user = support.make_user("eve", "engineers")
    bad = _answer("What leak rate triggers repair?", "Leaks are bad.")
    feedback = feedback_submit(
        answer_id=bad.pk, user=user, score=1, better_answer="Above 10% a year."
    )
    expert = support.make_user("sam", "smes")
    better_answer_decide(feedback_id=feedback.pk, reviewer=expert, accept=True)
    snapshot = preferences_build(min_margin=1.0)
    sme = Client()
    sme.force_login(expert)
    assert snapshot.label in sme.get("/training/").content.decode()
    response = sme.get(f"/training/snapshots/{snapshot.pk}.jsonl")
    record = json.loads(b"".join(response.streaming_content))
    assert record["chosen"] == [{"role": "assistant", "content": "Above 10% a year."}]
    engineer = Client()
    engineer.force_login(user)
    assert engineer.get(f"/training/snapshots/{snapshot.pk}.jsonl").status_code == 403
    Path(snapshot.path).unlink()
    assert sme.get(f"/training/snapshots/{snapshot.pk}.jsonl").status_code == 404
