"""The validation set measures and never teaches (issue 10): an answer is never judged
against a held-out reference, and no evaluation answer, no question a held-out set holds
and no held-out reference reaches a training snapshot, by any path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from apps.feedback.services import feedback_submit
from apps.judging.models import Judgement
from apps.judging.services import answer_judge, answers_judge_bulk, judge_request_for
from apps.qa.models import Answer, Conversation, Origin
from apps.references.models import Reference
from apps.references.selectors import normalize_question
from apps.references.services import references_import
from apps.review.services import better_answer_decide
from apps.training.models import DataSnapshot
from apps.training.services.data import preferences_build
from apps.training.services.sft import sft_build
from tests import support

pytestmark = pytest.mark.django_db

LINES = {json.loads(line)["id"]: line for line in support.EVAL.read_text().splitlines()}
VALIDATION = ["s04", "s06"]  # both ask "What ...?", so "Which ...?" rewords them
TRAINING = ["s07", "s08"]
CONTROL = "How quickly must leak 7 be repaired?"  # in no set: it may teach


def _import(tmp_path: Path, set_name: str, ids: list[str]) -> list[Reference]:
    path = tmp_path / f"{set_name}.jsonl"
    path.write_text("".join(LINES[i] + "\n" for i in ids))
    result = references_import(path=path, set_name=set_name)
    return list(Reference.objects.filter(pk__in=result.ids).order_by("pk"))


def _answer(question: str, text: str, origin: str = Origin.USER) -> Answer:
    prompt = [
        {"role": "system", "content": "Answer from the numbered passages and cite them."},
        {"role": "user", "content": f"[1] Some passage.\n\n{question}"},
    ]
    return Answer.objects.create(
        conversation=Conversation.objects.create(title=question[:60]),
        question=question,
        text=text,
        status=Answer.Status.DONE,
        prompt_messages=prompt,
        origin=origin,
        model_name="m",
    )


def _judged(answer: Answer, score: float, reference: Reference | None = None) -> Judgement:
    return Judgement.objects.create(
        answer=answer,
        reference=reference,
        judge_version="local:m:v1",
        backend="local",
        status=Judgement.Status.DONE,
        score=score,
        inputs={"reference_id": reference.pk if reference else None},
    )


def _control_pair() -> Answer:
    """A user's low-rated answer with a better answer an SME accepted, to a question no set
    holds: it must still train, so an empty snapshot never passes for a clean one."""
    answer = _answer(CONTROL, "Leaks are bad.")
    feedback = feedback_submit(
        answer_id=answer.pk,
        user=support.make_user("carol", "engineers"),
        score=1,
        better_answer="Within 30 days [1].",
    )
    better_answer_decide(
        feedback_id=feedback.pk,
        reviewer=support.make_user("control-sme", "smes"),
        accept=True,
    )
    return answer


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _leaks(values: list[Any], held_out: list[Reference]) -> list[str]:
    """Every string in ``values`` that holds a held-out question or reference answer."""
    found = []
    for text in (s for v in values for s in _strings(v)):
        normal = normalize_question(text)
        for reference in held_out:
            if normalize_question(reference.question) in normal or (
                " ".join(reference.answer.split()) in " ".join(text.split())
            ):
                found.append(text)
    return found


def test_an_answer_to_a_validation_question_is_judged_without_its_reference(tmp_path, settings):
    held_out = _import(tmp_path, "validation", VALIDATION)
    [teaching, _] = _import(tmp_path, "training", TRAINING)
    for question in (held_out[1].question, "Which" + held_out[1].question.removeprefix("What")):
        answer = _answer(question, "Keep it at 55 °F.")
        request, reference = judge_request_for(answer)
        assert reference is None
        assert (request.reference, request.key_facts) == (None, ())
        judgement = answer_judge(answer_id=answer.pk)
        assert judgement is not None and judgement.status == Judgement.Status.DONE
        assert judgement.reference is None
        assert judgement.inputs["reference_id"] is None and judgement.inputs["reference"] is None

    # A training question is still judged against its reference: only held-out sets are out.
    assert judge_request_for(_answer(teaching.question, "Yes."))[1] == teaching

    # The set evaluation measures on is held out whatever it is called.
    settings.LOOP_EVAL_SET = "exam"
    [exam] = _import(tmp_path, "exam", ["s10"])
    from apps.references.selectors import heldout_set_names

    assert heldout_set_names() == {"exam", "validation", "synthetic-heldout"}
    assert judge_request_for(_answer(exam.question, "No."))[1] is None


def test_a_better_answer_to_a_validation_question_never_trains(tmp_path):
    """Even an engineer's better answer, even once an SME accepted it: it would teach the
    very answer the validation set measures."""
    [held_out, _] = _import(tmp_path, "validation", VALIDATION)
    engineer = support.make_user("eve", "engineers")
    # The same question in other spacing and case is the same question.
    asked = "  " + held_out.question.upper().replace(" ", "  ") + " "
    answer = _answer(asked, "Whatever the design says.")
    feedback = feedback_submit(
        answer_id=answer.pk, user=engineer, score=1, better_answer=held_out.answer
    )
    _control_pair()

    [pair] = preferences_build(min_margin=1.0).pairs.all()
    assert pair.question == CONTROL

    # Accepted, it becomes a validated training reference; still it teaches nothing.
    better_answer_decide(
        feedback_id=feedback.pk, reviewer=support.make_user("sam", "smes"), accept=True
    )
    assert Reference.objects.filter(feedback=feedback, reference_set__name="training").exists()
    [pair] = preferences_build(min_margin=1.0).pairs.all()
    assert pair.question == CONTROL
    # The control's accepted better answer is a training reference too; nothing else is.
    assert {row.reference.question for row in sft_build().examples.all()} == {CONTROL}


def test_evaluation_answers_never_make_pairs(tmp_path):
    [teaching, _] = _import(tmp_path, "training", TRAINING)
    sme = support.make_user("sam", "smes")
    question = "Which duct sealant may be used on supply ducts?"
    _judged(_answer(question, "Mastic.", origin=Origin.EVALUATION), 4.5)
    _judged(_answer(question, "Tape.", origin=Origin.EVALUATION), 0.5)
    _judged(_answer(teaching.question, "Never.", origin=Origin.EVALUATION), 0.5, teaching)
    rated = _answer("Which fan?", "A fan.", origin=Origin.EVALUATION)
    rating = feedback_submit(
        answer_id=rated.pk, user=sme, score=1, better_answer="An axial fan [1]."
    )
    better_answer_decide(feedback_id=rating.pk, reviewer=sme, accept=True)
    _control_pair()

    [pair] = preferences_build(min_margin=1.0).pairs.all()
    assert pair.question == CONTROL
    # Asked by a user instead, the same answers teach: the origin alone kept them out.
    Answer.objects.filter(origin=Origin.EVALUATION).update(origin=Origin.USER)
    assert preferences_build(min_margin=1.0).counts == {
        "better_answer": 2,
        "reference": 1,
        "score_gap": 1,
        "label_sme": 2,
        "label_ai": 2,
    }


def test_no_score_gap_pair_between_answers_to_a_validation_question(tmp_path):
    held_out = _import(tmp_path, "validation", VALIDATION)
    # Two answers to a validation question, scored far apart (asked by users, or sampled).
    for origin in (Origin.USER, Origin.SAMPLING):
        _judged(_answer(held_out[0].question, "A full analysis.", origin=origin), 5.0)
        _judged(_answer(held_out[0].question.lower(), "Nothing.", origin=origin), 0.0)
    # Answers to reworded questions, judged against a validation reference before the fix;
    # in the second pair the link was cleared, but the judgements' inputs still name it.
    reworded = "Which" + held_out[1].question.removeprefix("What")
    _judged(_answer(reworded, "55 °F.", origin=Origin.SAMPLING), 5.0, held_out[1])
    _judged(_answer(reworded, "90 °F.", origin=Origin.SAMPLING), 0.5, held_out[1])
    unlinked = "Which psychrometric analysis does a renovation need?"
    _judged(_answer(unlinked, "A full one.", origin=Origin.SAMPLING), 5.0, held_out[0])
    _judged(_answer(unlinked, "None at all.", origin=Origin.SAMPLING), 0.5, held_out[0])
    Judgement.objects.filter(answer__question=unlinked).update(reference=None)
    _judged(_answer(CONTROL, "Within 30 days.", origin=Origin.SAMPLING), 5.0)
    _judged(_answer(CONTROL, "Eventually.", origin=Origin.SAMPLING), 1.0)

    snapshot = preferences_build(min_margin=1.0)
    assert [(p.source, p.question) for p in snapshot.pairs.all()] == [("sampled", CONTROL)]


def test_held_out_sets_are_refused_as_training_data(tmp_path, settings):
    from apps.training.services.sampling import answers_sample

    _import(tmp_path, "validation", VALIDATION)
    with pytest.raises(ValueError, match="held out"):
        sft_build(set_name="validation")
    with pytest.raises(ValueError, match="held out"):
        answers_sample(questions=2, samples=2, temperature=0.7, set_name="validation")
    settings.LOOP_EVAL_SET = "exam"
    _import(tmp_path, "exam", TRAINING)
    with pytest.raises(ValueError, match="held out"):
        sft_build(set_name="exam")
    assert not DataSnapshot.objects.exists()
    assert not Answer.objects.exists()


def test_the_validation_set_never_reaches_a_training_snapshot(tmp_path):
    """Everything a busy portal holds at once: validation references (also copied into the
    training set, as a careless import would), evaluation answers judged by the nightly
    pass, answers to validation questions from users and from sampling, with feedback."""
    held_out = _import(tmp_path, "validation", VALIDATION)
    teaching = _import(tmp_path, "training", TRAINING)
    _import(tmp_path, "training", VALIDATION[:1])  # a validation question in the training set
    engineer = support.make_user("eve", "engineers")
    sme = support.make_user("sam", "smes")
    for reference in held_out:
        for n, origin in enumerate((Origin.EVALUATION, Origin.SAMPLING, Origin.USER)):
            good = _answer(reference.question, reference.answer, origin=origin)
            bad = _answer(reference.question.lower(), f"I do not know ({n}).", origin=origin)
            feedback_submit(
                answer_id=bad.pk, user=engineer, score=1, better_answer=reference.answer
            )
            _judged(good, 5.0, reference)
            _judged(bad, 0.0, reference)
        _answer(reference.question, "Unjudged so far.", origin=Origin.EVALUATION)
    for reference in teaching:
        _judged(_answer(reference.question, "Not sure.", origin=Origin.SAMPLING), 0.5, reference)
        _answer(reference.question, reference.answer, origin=Origin.SAMPLING)
    feedback = _control_pair().feedback.get()
    better_answer_decide(feedback_id=feedback.pk, reviewer=sme, accept=True)
    answers_judge_bulk(limit=100)  # the nightly pass judges whatever has no judgement yet

    preferences = preferences_build(min_margin=0.0)  # any gap at all makes a pair
    sft = sft_build()

    rows = [[p.question, p.prompt, p.chosen, p.rejected] for p in preferences.pairs.all()]
    rows += [[e.prompt, e.completion, e.reference.question] for e in sft.examples.all()]
    for snapshot in (preferences, sft):
        lines = Path(snapshot.path).read_text().splitlines()
        assert len(lines) == snapshot.size
        rows += [json.loads(line) for line in lines]
    assert _leaks(rows, held_out) == []
    # Not empty for want of data: what may teach still does.
    assert preferences.counts["reference"] == 2 and preferences.counts["better_answer"] == 1
    # The two training references and the accepted better answer, each validated (so it
    # weighs SFT_VALIDATED_WEIGHT examples).
    assert sft.counts == {"references": 3} and sft.size == 3 * django_settings.SFT_VALIDATED_WEIGHT


def test_held_out_synthetic_pairs_measure_and_never_teach(small_pdf: bytes, settings):
    """The slice of the synthetic pairs kept back to measure: evaluation answers it, no
    SFT snapshot holds it, whatever an SME does with it."""
    from apps.references.services import reference_set_ensure
    from apps.references.synthesis import requirement_candidates
    from apps.training.services.evaluation import evaluation_references
    from ml import synthesis

    settings.SFT_DECLINE_SHARE = 0.0
    document = support.ingest("ufc.pdf", small_pdf)
    chunk, sentence = requirement_candidates(document_id=document.pk)[0]
    pairs = []
    for name, status in [
        ("synthetic-heldout", Reference.Status.PENDING),
        ("synthetic-heldout", Reference.Status.VALIDATED),
        ("training", Reference.Status.PENDING),
    ]:
        pairs.append(
            Reference.objects.create(
                reference_set=reference_set_ensure(name=name),
                question=f"What does the standard require here ({name}, {status})?",
                answer=synthesis.statement(sentence),
                source=Reference.Source.SYNTHETIC,
                status=status,
                checks={"passed": True, "rank": 1},
                chunk=chunk,
                document=document,
                quote=sentence,
            )
        )
    measured = set(evaluation_references("validation+synthetic-heldout", None))
    assert measured == {pairs[0], pairs[1]}
    with pytest.raises(ValueError, match="held out"):
        sft_build(set_name="synthetic-heldout")
    taught = {row.reference_id for row in sft_build().examples.all()}
    assert pairs[0].pk not in taught and pairs[1].pk not in taught
