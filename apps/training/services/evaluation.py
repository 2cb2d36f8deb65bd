"""Evaluation: an adapter (or ``base``) answers every question of a reference set through
the real pipeline (retrieval, prompt, generation, citations), and the judge scores each
answer against its reference. The figures are the pilot's: mean AI score, shares above
and below 3, semantic similarity to the reference, key-fact recall, citation accuracy."""

from __future__ import annotations

from statistics import fmean

from django.db.models import QuerySet
from django.utils import timezone

from apps.answering.engine import answer_generation, using_adapter
from apps.documents.embedding import get_embedder
from apps.judging.judge import get_judge
from apps.judging.services import judge_request
from apps.qa.models import Origin
from apps.qa.services import answer_generate, question_submit
from apps.references.models import Reference
from apps.references.selectors import references_measuring, set_names
from apps.training.models import Evaluation, EvaluationItem
from ml.embeddings import answer_similarity
from ml.judging import JudgeError
from ml.judging.local import key_fact_recall
from ml.stats import bootstrap_interval

METRICS = (
    "n",
    "ai_score_mean",
    "share_above_3",
    "share_below_3",
    "semantic_similarity",
    "key_fact_recall",
    "citation_accuracy",
)


class InvalidEvaluation(ValueError):
    """An evaluation that cannot run as asked; the message says why."""


def evaluation_references(set_name: str, limit: int | None) -> QuerySet[Reference]:
    """The questions an evaluation of ``set_name`` answers ("a+b" names several sets):
    their validated references and checked held-out synthetic pairs, in a fixed order."""
    references = references_measuring(set_names=set_names(set_name)).order_by("pk")
    if not references.exists():
        raise InvalidEvaluation(
            f"the reference set {set_name!r} has no validated references "
            "(import_references FILE --set NAME, or let the loop write synthetic pairs)"
        )
    return references[:limit] if limit else references


def _cites_gold(reference: Reference, citations: list[dict]) -> bool | None:
    if not reference.answerable or reference.page is None or not reference.document_name:
        return None
    return any(
        c.get("page") == reference.page
        and (
            c.get("document_id") == reference.document_id
            or c.get("document") == reference.document_name
        )
        for c in citations
    )


def evaluation_run(
    *, adapter_version: str, set_name: str = "validation", limit: int | None = None
) -> Evaluation:
    """Answers and judges every question of ``set_name`` with ``adapter_version`` in this
    process (a worker or the command line; never the web server)."""
    references = list(evaluation_references(set_name, limit))
    judge = get_judge()
    evaluation = Evaluation.objects.create(
        adapter_version=adapter_version,
        reference_set=set_name,
        limit=limit,
        judge_version=judge.version,
    )
    embedder = get_embedder()
    generation = answer_generation()
    try:
        with using_adapter(adapter_version):
            for reference in references:
                answer = question_submit(
                    question=reference.question, user=None, origin=Origin.EVALUATION
                )
                answer = answer_generate(answer_id=answer.pk, generation=generation)
                request = judge_request(
                    question=reference.question,
                    response=answer.text,
                    retrieved=answer.retrieved,
                    reference=reference,
                )
                try:
                    verdict = judge.judge(request)
                    score, comment = verdict.score, verdict.comment
                except JudgeError as exc:
                    score, comment = None, f"not judged: {exc}"
                EvaluationItem.objects.create(
                    evaluation=evaluation,
                    reference=reference,
                    answer=answer,
                    question=reference.question,
                    response=answer.text,
                    score=score,
                    comment=comment,
                    # Only where the reference answers: the embedder puts a right decline
                    # ("... do not cover this.") at about 0.17 from a reference that explains
                    # why the documents do not say, below a wrong answer on the same topic.
                    # Declines are counted on their own.
                    similarity=round(answer_similarity(embedder, answer.text, reference.answer), 4)
                    if reference.answerable
                    else None,
                    key_fact_recall=key_fact_recall(reference.key_facts, answer.text)
                    if reference.answerable
                    else None,
                    cites_gold_page=_cites_gold(reference, answer.citations),
                )
    except Exception as exc:
        Evaluation.objects.filter(pk=evaluation.pk).update(
            status=Evaluation.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:4000],
            finished_at=timezone.now(),
        )
        raise
    evaluation.metrics = evaluation_metrics(evaluation)
    evaluation.status = Evaluation.Status.DONE
    evaluation.finished_at = timezone.now()
    evaluation.save(update_fields=["metrics", "status", "finished_at"])
    return evaluation


def _mean(values: list[float]) -> float | None:
    return round(fmean(values), 4) if values else None


def evaluation_metrics(evaluation: Evaluation) -> dict[str, float | int | None]:
    items = list(evaluation.items.all())
    scores = [i.score for i in items if i.score is not None]
    interval = bootstrap_interval(scores)
    return {
        "n": len(items),
        "ai_score_mean": _mean(scores),
        # 95% bootstrap interval of the mean AI score: how far one evaluation can be trusted.
        "ai_score_low": round(interval[0], 4) if interval else None,
        "ai_score_high": round(interval[1], 4) if interval else None,
        "share_above_3": _mean([float(s > 3) for s in scores]),
        "share_below_3": _mean([float(s < 3) for s in scores]),
        "semantic_similarity": _mean([i.similarity for i in items if i.similarity is not None]),
        "key_fact_recall": _mean(
            [i.key_fact_recall for i in items if i.key_fact_recall is not None]
        ),
        "citation_accuracy": _mean(
            [float(i.cites_gold_page) for i in items if i.cites_gold_page is not None]
        ),
    }
