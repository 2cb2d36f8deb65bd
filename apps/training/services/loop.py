"""The promotion gate and the nightly chain: build pairs, train the reward model, run PPO
(or DPO/KTO), evaluate the candidate beside the served adapter, promote if the gate passes.
Every step's result is kept on a LoopRun; any failure leaves the served adapter as it was."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.adapters.selectors import served_target
from apps.adapters.services import adapter_promote
from apps.judging.judge import get_judge
from apps.training.models import Evaluation, LoopRun, TrainingRun
from apps.training.services.data import preferences_build
from apps.training.services.evaluation import METRICS, evaluation_run
from apps.training.services.runs import run_create, run_execute
from apps.training.services.sampling import answers_sample

LOWER_IS_BETTER = {"share_below_3"}


@dataclass(frozen=True)
class GateResult:
    passed: bool
    primary: str
    margin: float
    tolerance: float
    candidate: dict[str, Any]
    served: dict[str, Any]
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gain(metric: str, candidate: float, served: float) -> float:
    return served - candidate if metric in LOWER_IS_BETTER else candidate - served


def gate_check(
    *,
    candidate: dict[str, Any],
    served: dict[str, Any],
    primary: str | None = None,
    margin: float | None = None,
    tolerance: float | None = None,
) -> GateResult:
    """The candidate must beat the served adapter on the primary metric by ``margin`` and
    fall behind on no other metric by more than ``tolerance``."""
    primary = primary or settings.PROMOTION_METRIC
    margin = settings.PROMOTION_MARGIN if margin is None else margin
    tolerance = settings.PROMOTION_TOLERANCE if tolerance is None else tolerance
    reasons = []
    if candidate.get(primary) is None or served.get(primary) is None:
        reasons.append(f"{primary} is missing from an evaluation")
    elif _gain(primary, candidate[primary], served[primary]) < margin:
        reasons.append(
            f"{primary} {candidate[primary]:.3f} against {served[primary]:.3f}: "
            f"needs a gain of at least {margin:g}"
        )
    for metric in METRICS:
        if metric in {"n", primary} or candidate.get(metric) is None or served.get(metric) is None:
            continue
        loss = -_gain(metric, candidate[metric], served[metric])
        if loss > tolerance:
            reasons.append(
                f"{metric} regressed {served[metric]:.3f} -> {candidate[metric]:.3f} "
                f"(tolerance {tolerance:g})"
            )
    if candidate.get("n") != served.get("n"):
        reasons.append("the two evaluations did not answer the same number of questions")
    return GateResult(not reasons, primary, margin, tolerance, candidate, served, reasons)


def served_evaluation(*, set_name: str, limit: int | None) -> Evaluation:
    """The served adapter's evaluation on these questions under this judge: an earlier
    one when it exists (answers are greedy, so it would not change), else a new one."""
    served = served_target().version
    earlier = Evaluation.objects.filter(
        adapter_version=served,
        reference_set=set_name,
        limit=limit,
        judge_version=get_judge().version,
        status=Evaluation.Status.DONE,
    ).first()
    return earlier or evaluation_run(adapter_version=served, set_name=set_name, limit=limit)


class _Steps:
    def __init__(self, loop: LoopRun) -> None:
        self.loop = loop

    def run(self, name: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        entry: dict[str, Any] = {"step": name}
        try:
            value = action()
        except Exception as exc:
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        else:
            entry.update(status="done", result=_describe(value))
            return value
        finally:
            entry["seconds"] = round(time.perf_counter() - started, 1)
            self.loop.steps = [*self.loop.steps, entry]
            self.loop.save(update_fields=["steps"])


def _describe(value: Any) -> Any:
    if isinstance(value, TrainingRun):
        return {
            "run": value.pk,
            "status": value.status,
            "version": value.version,
            "metrics": value.metrics,
            "error": value.error,
        }
    if isinstance(value, Evaluation):
        return {"evaluation": value.pk, "adapter": value.adapter_version, **value.metrics}
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if hasattr(value, "label") and hasattr(value, "size"):
        return {
            "snapshot": value.pk,
            "label": value.label,
            "size": value.size,
            "counts": value.counts,
        }
    return value


def _train(algorithm: str, **kwargs: Any) -> TrainingRun:
    run = run_execute(run_id=run_create(algorithm=algorithm, enqueue=False, **kwargs).pk)
    if run.status != TrainingRun.Status.SUCCEEDED:
        raise RuntimeError(f"{algorithm} run #{run.pk} {run.status}: {run.error or 'cancelled'}")
    return run


def loop_run(*, algorithm: str | None = None) -> LoopRun:
    """One pass of the nightly chain, synchronously in this process (the gpu worker, or
    ``manage.py run_loop``)."""
    algorithm = algorithm or settings.LOOP_ALGORITHM
    set_name, limit = settings.LOOP_EVAL_SET, settings.LOOP_EVAL_LIMIT
    loop = LoopRun.objects.create(served_before=served_target().version)
    steps = _Steps(loop)
    try:
        if settings.LOOP_SAMPLE_QUESTIONS:
            steps.run(
                "sample_answers",
                lambda: answers_sample(
                    questions=settings.LOOP_SAMPLE_QUESTIONS,
                    samples=settings.LOOP_SAMPLES_PER_QUESTION,
                    temperature=settings.LOOP_SAMPLE_TEMPERATURE,
                ),
            )
        snapshot = steps.run("build_preferences", preferences_build)
        reward = None
        if algorithm == TrainingRun.Algorithm.PPO:
            reward = steps.run("train_reward", lambda: _train("reward", snapshot_id=snapshot.pk))
        candidate = steps.run(
            f"train_{algorithm}",
            lambda: _train(
                algorithm, snapshot_id=snapshot.pk, reward_run_id=reward.pk if reward else None
            ),
        )
        loop.candidate = candidate.version
        served_eval = steps.run(
            "evaluate_served", lambda: served_evaluation(set_name=set_name, limit=limit)
        )
        candidate_eval = steps.run(
            "evaluate_candidate",
            lambda: evaluation_run(
                adapter_version=candidate.version, set_name=set_name, limit=limit
            ),
        )
        gate = gate_check(candidate=candidate_eval.metrics, served=served_eval.metrics)
        loop.gate = gate.as_dict()
        if gate.passed:
            steps.run(
                "promote",
                lambda: (
                    adapter_promote(
                        version=candidate.version, reason=f"nightly loop #{loop.pk}: gate passed"
                    ).version
                ),
            )
            loop.status = LoopRun.Status.PROMOTED
        else:
            loop.status = LoopRun.Status.KEPT
    except Exception as exc:
        loop.status = LoopRun.Status.FAILED
        loop.error = f"{type(exc).__name__}: {exc}"[:4000]
    loop.finished_at = timezone.now()
    loop.save()
    return loop


def loops_fail_stalled(*, older_than_hours: int = 20) -> int:
    """A loop whose worker died stays "running"; the next night's sweep marks it failed."""
    cutoff = timezone.now() - timedelta(hours=older_than_hours)
    return LoopRun.objects.filter(status=LoopRun.Status.RUNNING, started_at__lt=cutoff).update(
        status=LoopRun.Status.FAILED,
        error="the loop stopped reporting (its worker died); nothing was promoted",
        finished_at=timezone.now(),
    )
