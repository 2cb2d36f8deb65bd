"""Answers sampled from the served model for reference questions and scored by the judge:
preference data beyond what people label. Best over worst becomes a pair when the judge's
scores differ enough (see data.preferences_build)."""

from __future__ import annotations

from dataclasses import dataclass

from apps.adapters.selectors import served_target
from apps.answering.engine import answer_generation
from apps.judging.services import answer_judge
from apps.qa.models import Answer, Origin
from apps.qa.services import answer_generate, question_submit
from apps.references.selectors import references_for_sft
from apps.training.services.data import teaching_set_check


@dataclass(frozen=True)
class SampleResult:
    questions: int
    answers: int
    judged: int

    def as_dict(self) -> dict[str, int]:
        return {"questions": self.questions, "answers": self.answers, "judged": self.judged}


def answers_sample(
    *,
    questions: int,
    samples: int,
    temperature: float,
    set_name: str = "training",
) -> SampleResult:
    """Samples ``samples`` answers per training question (up to ``questions``: validated
    references first, then checked synthetic pairs)
    from the served adapter and judges each against its reference. Questions that already
    have that many samples from the served adapter are skipped, so a re-run adds nothing.
    A held-out set is refused (InvalidTrainingSet), and a training reference that repeats a
    held-out question is not asked: its answers could never teach."""
    teaching_set_check(set_name=set_name)
    references = references_for_sft(set_name=set_name)[:questions]
    served = served_target().version
    generation = answer_generation(temperature=temperature)
    asked = answered = judged = 0
    for reference in references:
        existing = Answer.objects.filter(
            origin=Origin.SAMPLING, question=reference.question, adapter_version=served
        ).count()
        if existing >= samples:
            continue
        asked += 1
        for _ in range(samples - existing):
            answer = question_submit(question=reference.question, user=None, origin=Origin.SAMPLING)
            answer = answer_generate(answer_id=answer.pk, generation=generation)
            if answer.status != Answer.Status.DONE:
                continue
            answered += 1
            judgement = answer_judge(answer_id=answer.pk)
            judged += bool(judgement and judgement.status == "done")
    return SampleResult(asked, answered, judged)
