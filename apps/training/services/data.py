"""Training data from what the portal has stored: preference pairs and SFT examples.

Each build is a snapshot: rows in the database plus a JSON Lines file in TRL's
conversational shape, with its SHA-256, so every run says exactly what it learned from.

Nothing a held-out set holds ever teaches (see references.selectors.heldout_set_names):
not its references, not an answer to one of its questions, not an answer an evaluation
asked, not an answer judged against one of its references.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Q, QuerySet

from apps.feedback.models import Feedback
from apps.judging.models import Judgement
from apps.qa.models import Answer, Origin
from apps.references.models import Reference, ReferenceSet
from apps.references.selectors import (
    heldout_questions,
    heldout_references,
    heldout_set_names,
    normalize_question,
)
from apps.training.models import DataSnapshot, PreferencePair
from ml.prompting import DECLINE
from ml.training.data import PreferencePair as TrlPair
from ml.training.data import write_jsonl

Label = PreferencePair.Label


class InvalidTrainingSet(ValueError):
    """A reference set that may not teach was asked to; the message says which and why."""


def teaching_set_check(*, set_name: str) -> None:
    """Refuses a held-out set as a source of training data, before anything is built."""
    heldout = heldout_set_names()
    if set_name in heldout:
        raise InvalidTrainingSet(
            f"the reference set {set_name!r} is held out: it measures adapters and never "
            f"trains them (held-out sets: {', '.join(sorted(heldout))})"
        )


def answers_heldout() -> QuerySet[Answer]:
    """Answers that may never teach whatever their question says: those an evaluation
    asked (with held-out questions), and those judged against a held-out reference, by the
    link or by the id the judgement's inputs recorded (either may be the one left)."""
    references = heldout_references()
    judged = Judgement.objects.filter(
        Q(reference__in=references)
        | Q(inputs__reference_id__in=list(references.values_list("pk", flat=True)))
    )
    return Answer.objects.filter(Q(origin=Origin.EVALUATION) | Q(pk__in=judged.values("answer_id")))


@dataclass(frozen=True)
class Scored:
    """An answer's score on the judge's 0-5 scale, from the most trusted label it has."""

    answer: Answer
    score: float
    label: int


def _user_score(score_1_to_5: float) -> float:
    return (score_1_to_5 - 1) * 1.25  # 1..5 -> 0..5


def scored_answers() -> list[Scored]:
    """Every finished answer that was given a real prompt and may teach (not held out, not
    to a held-out question), with its best-trusted score: an SME-validated judgement, else
    users' ratings, else the AI judge."""
    heldout = heldout_questions()
    answers = (
        Answer.objects.filter(status=Answer.Status.DONE)
        .exclude(prompt_messages=[])
        .exclude(model_name="retrieval-gate")
        .exclude(pk__in=answers_heldout().values("pk"))
    )
    sme = {
        answer_id: score
        for answer_id, score in Judgement.objects.exclude(review_state=Judgement.Review.UNREVIEWED)
        .filter(validated_score__isnull=False)
        .values_list("answer_id", "validated_score")
        if score is not None  # always, by the filter: this tells the type checker
    }
    users = dict(
        Feedback.objects.values("answer_id")
        .annotate(mean=Avg("score"))
        .values_list("answer_id", "mean")
    )
    ai: dict[int, float] = {}
    for answer_id, score in (
        Judgement.objects.filter(status=Judgement.Status.DONE, score__isnull=False)
        .order_by("judged_at")
        .values_list("answer_id", "score")
    ):
        if score is not None:  # always, by the filter
            ai[answer_id] = score  # the latest judgement wins
    result = []
    for answer in answers.iterator(chunk_size=500):
        if normalize_question(answer.question) in heldout:
            continue
        if answer.pk in sme:
            result.append(Scored(answer, sme[answer.pk], Label.SME))
        elif answer.pk in users:
            result.append(Scored(answer, _user_score(users[answer.pk]), Label.USER))
        elif answer.pk in ai:
            result.append(Scored(answer, ai[answer.pk], Label.AI))
    return result


def _fingerprint(question: str, chosen: str, rejected: str) -> str:
    text = (
        f"{normalize_question(question)}\0{' '.join(chosen.split())}\0{' '.join(rejected.split())}"
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _better_answer_pairs() -> list[dict[str, Any]]:
    """An SME-accepted better answer (as the SME accepted or edited it) over the low-rated
    answer. A better answer nobody reviewed never teaches: the loop promotes on its own, so
    unreviewed user text would reach the served model. Nor does one to a held-out question:
    even an expert's would teach the very answer the set measures."""
    heldout, heldout_sets = heldout_questions(), heldout_set_names()
    pairs = []
    low = (
        Feedback.objects.filter(score__lte=2)
        .exclude(better_answer="")
        .filter(better_answer_state=Feedback.BetterAnswer.ACCEPTED)
        .exclude(answer__in=answers_heldout())
    )
    for feedback in low.select_related("answer").prefetch_related("references__reference_set"):
        answer = feedback.answer
        if not answer.prompt_messages or answer.status != Answer.Status.DONE:
            continue
        references = list(feedback.references.all())
        if normalize_question(answer.question) in heldout or any(
            r.reference_set.name in heldout_sets for r in references
        ):
            continue
        accepted = next((r for r in references if r.status == Reference.Status.VALIDATED), None)
        if accepted is None:
            continue  # accepted, but its reference was rejected or removed since
        pairs.append(
            {
                "source": PreferencePair.Source.BETTER_ANSWER,
                "label": Label.SME,
                "question": answer.question,
                "prompt": answer.prompt_messages,
                "chosen": accepted.answer,
                "rejected": answer.text,
                "margin": 5.0 - _user_score(feedback.score),
                "chosen_answer": None,
                "rejected_answer": answer,
            }
        )
    return pairs


def _reference_pairs(max_score: float) -> list[dict[str, Any]]:
    """A validated training reference over an answer the judge scored low against it: the
    expert's answer is the better one, the judge says how bad the other was. Held-out
    references, answers and questions are never used, so evaluation stays held out."""
    heldout = heldout_questions()
    judgements = (
        Judgement.objects.filter(
            status=Judgement.Status.DONE,
            score__lte=max_score,
            reference__status=Reference.Status.VALIDATED,
            reference__reference_set__name=ReferenceSet.TRAINING,
            answer__status=Answer.Status.DONE,
        )
        .exclude(answer__prompt_messages=[])
        .exclude(answer__model_name="retrieval-gate")
        .exclude(reference__reference_set__name__in=heldout_set_names())
        .exclude(answer__in=answers_heldout())
        .select_related("answer", "reference")
    )
    pairs = []
    for judgement in judgements:
        answer, reference = judgement.answer, judgement.reference
        assert reference is not None
        if normalize_question(answer.question) in heldout:
            continue
        score = (
            judgement.validated_score if judgement.validated_score is not None else judgement.score
        )
        chosen = reference.answer if reference.answerable else DECLINE
        if score is None or score > max_score or chosen.strip() == answer.text.strip():
            continue
        pairs.append(
            {
                "source": PreferencePair.Source.REFERENCE,
                "label": Label.SME if judgement.validated_score is not None else Label.AI,
                "question": answer.question,
                "prompt": answer.prompt_messages,
                "chosen": chosen,
                "rejected": answer.text,
                "margin": 5.0 - score,
                "chosen_answer": None,
                "rejected_answer": answer,
            }
        )
    return pairs


def _score_gap_pairs(min_margin: float) -> list[dict[str, Any]]:
    groups: dict[str, list[Scored]] = defaultdict(list)
    for scored in scored_answers():
        groups[normalize_question(scored.answer.question)].append(scored)
    pairs = []
    for group in groups.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda s: (s.score, s.label, s.answer.pk))
        worst, best = group[0], group[-1]
        margin = best.score - worst.score
        if margin < min_margin or best.answer.text.strip() == worst.answer.text.strip():
            continue
        sampled = {best.answer.origin, worst.answer.origin} == {"sampling"}
        pairs.append(
            {
                "source": PreferencePair.Source.SAMPLED
                if sampled
                else PreferencePair.Source.SCORE_GAP,
                # A pair is only as trustworthy as the weaker of its two labels.
                "label": min(best.label, worst.label),
                "question": best.answer.question,
                "prompt": best.answer.prompt_messages,
                "chosen": best.answer.text,
                "rejected": worst.answer.text,
                "margin": margin,
                "chosen_answer": best.answer,
                "rejected_answer": worst.answer,
            }
        )
    return pairs


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot_path(kind: str, snapshot_id: int) -> Path:
    folder = settings.VAR_DIR / "training" / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}-{snapshot_id}.jsonl"


def preferences_build(*, min_margin: float | None = None) -> DataSnapshot:
    """Builds today's preference pairs into a new snapshot.

    Sources: a better answer (SME-accepted or a user's) over the low-rated bot answer; a
    validated training reference over an answer judged at most PREFERENCE_REFERENCE_MAX_SCORE
    against it; the best- over the worst-scored answer to the same question when their
    scores differ by at least ``min_margin`` (sampled answers, judged against references,
    are such answers).
    Duplicates collapse into one pair; when two pairs put the same answers in opposite
    order, the one with the more trusted label (SME > user > AI) stays.
    """
    margin = settings.PREFERENCE_MIN_MARGIN if min_margin is None else min_margin
    kept: dict[tuple[str, frozenset[str]], dict[str, Any]] = {}
    candidates = (
        _better_answer_pairs()
        + _reference_pairs(settings.PREFERENCE_REFERENCE_MAX_SCORE)
        + _score_gap_pairs(margin)
    )
    for pair in candidates:
        key = (
            normalize_question(pair["question"]),
            frozenset({" ".join(pair["chosen"].split()), " ".join(pair["rejected"].split())}),
        )
        other = kept.get(key)
        if other is None or (pair["label"], pair["margin"]) > (other["label"], other["margin"]):
            kept[key] = pair
    with transaction.atomic():
        snapshot = DataSnapshot.objects.create(kind=DataSnapshot.Kind.PREFERENCES)
        rows = [
            PreferencePair(
                snapshot=snapshot,
                fingerprint=_fingerprint(p["question"], p["chosen"], p["rejected"]),
                **p,
            )
            for p in kept.values()
        ]
        PreferencePair.objects.bulk_create(rows)
        path = snapshot_path("preferences", snapshot.pk)
        write_jsonl(path, (_trl_pair(row).as_trl() for row in rows))
        counts: dict[str, int] = defaultdict(int)
        for row in rows:
            counts[row.source] += 1
            counts[f"label_{Label(row.label).name.lower()}"] += 1
        snapshot.size, snapshot.counts = len(rows), dict(counts)
        snapshot.path, snapshot.sha256 = str(path), file_sha256(path)
        snapshot.save()
    return snapshot


def _trl_pair(row: PreferencePair) -> TrlPair:
    return TrlPair(prompt=tuple(row.prompt), chosen=row.chosen, rejected=row.rejected)


def snapshot_pairs(snapshot: DataSnapshot) -> list[TrlPair]:
    return [_trl_pair(row) for row in snapshot.pairs.all()]
