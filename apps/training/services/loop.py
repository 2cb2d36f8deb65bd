"""The promotion gate and the learning loop, in two stages as in the pilot:

- supervised: synthetic pairs from the library's requirement sentences, checked; LoRA-SFT
  from the base model on them; the gate. It runs alone (``--algorithm sft``, the bootstrap
  of a new library), or first in the nightly chain when the library or the validated
  references changed since it last ran;
- preferences: sample and judge answers, build pairs, train the reward model, PPO (or
  DPO/KTO) from the served adapter (the SFT one once promoted), the gate.

Every step's result is kept on a LoopRun; any failure leaves the served adapter as it was."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.adapters.selectors import served_target
from apps.adapters.services import adapter_promote
from apps.documents.models import Document
from apps.judging.judge import get_judge
from apps.references.selectors import references_teaching, synthetic_unreviewed
from apps.references.services import InvalidReferences
from apps.references.synthesis import requirement_candidates, synthetic_requirements_generate
from apps.training.models import Evaluation, LoopRun, TrainingRun
from apps.training.services.data import preferences_build
from apps.training.services.evaluation import METRICS, evaluation_references, evaluation_run
from apps.training.services.runs import run_create, run_execute
from apps.training.services.sampling import answers_sample
from apps.training.services.sft import sft_build
from ml.adapters import BASE

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
    one on exactly the same questions when it exists (answers are greedy, so it would not
    change), else a new one. New synthetic pairs change the questions, and so the answer."""
    served = served_target().version
    wanted = sorted(evaluation_references(set_name, limit).values_list("pk", flat=True))
    earlier = Evaluation.objects.filter(
        adapter_version=served,
        reference_set=set_name,
        limit=limit,
        judge_version=get_judge().version,
        status=Evaluation.Status.DONE,
    )
    for evaluation in earlier[:5]:
        if sorted(evaluation.items.values_list("reference_id", flat=True)) == wanted:
            return evaluation
    return evaluation_run(adapter_version=served, set_name=set_name, limit=limit)


class _Steps:
    def __init__(self, loop: LoopRun) -> None:
        self.loop = loop

    def run(self, name: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        entry: dict[str, Any] = {"step": name}
        done = self.loop.steps
        # Shown as running on the loop's page while it works (SFT alone takes minutes).
        self.loop.steps = [*done, {**entry, "status": "running", "seconds": 0}]
        self.loop.save(update_fields=["steps"])
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
            self.loop.steps = [*done, entry]
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


class LoopBusy(RuntimeError):
    """Another loop is running: two would train on the same gpu worker and race the gate."""


def library_state() -> str:
    """A fingerprint of what the supervised stage learns from: the current documents and
    the validated references that may teach. It changes when either does."""
    documents = Document.objects.filter(is_current=True, status=Document.Status.READY)
    references = references_teaching()
    parts = [
        *(f"d{pk}:{sha}" for pk, sha in documents.order_by("pk").values_list("pk", "sha256")),
        *(
            f"r{pk}:{updated:%Y%m%d%H%M%S%f}"
            for pk, updated in references.order_by("pk").values_list("pk", "updated_at")
        ),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def supervised_stage_due(state: str) -> bool:
    """Whether the library or its validated references changed since the last supervised
    stage that finished (promoted or kept: a failed one is tried again)."""
    last = (
        LoopRun.objects.exclude(library_state="")
        .filter(status__in=[LoopRun.Status.PROMOTED, LoopRun.Status.KEPT])
        .first()
    )
    return last is None or last.library_state != state


def _synthesize(loop: LoopRun) -> Any:
    """New pairs from sentences not used before; a library whose every requirement sentence
    already has one goes on with the pairs it has."""
    try:
        return synthetic_requirements_generate(limit=settings.SYNTHESIS_PER_LOOP, seed=loop.pk)
    except InvalidReferences:
        if requirement_candidates() or not synthetic_unreviewed().exists():
            raise
        return {"written": 0, "note": "every requirement sentence already has a pair"}


def _evaluate_and_gate(steps: _Steps, loop: LoopRun, candidate: TrainingRun, stage: str) -> bool:
    """Evaluates the candidate beside the served adapter on the same questions and promotes
    it when the gate passes; returns whether it did."""
    set_name, limit = settings.LOOP_EVAL_SET, settings.LOOP_EVAL_LIMIT
    loop.candidate = candidate.version
    served_eval = steps.run(
        f"evaluate_served{stage}", lambda: served_evaluation(set_name=set_name, limit=limit)
    )
    candidate_eval = steps.run(
        f"evaluate_candidate{stage}",
        lambda: evaluation_run(adapter_version=candidate.version, set_name=set_name, limit=limit),
    )
    gate = gate_check(candidate=candidate_eval.metrics, served=served_eval.metrics)
    loop.gate = gate.as_dict()
    if not gate.passed:
        return False
    steps.run(
        f"promote{stage}",
        lambda: (
            adapter_promote(
                version=candidate.version, reason=f"loop #{loop.pk}{stage}: gate passed"
            ).version
        ),
    )
    return True


def _supervised_stage(steps: _Steps, loop: LoopRun, state: str) -> bool:
    """The pilot's first step: pairs from the library, checked; SFT from the base model on
    them; the gate. Returns whether the new adapter was promoted."""
    steps.run("synthesize", lambda: _synthesize(loop))
    snapshot = steps.run("build_sft", sft_build)
    candidate = steps.run(
        "train_sft", lambda: _train("sft", snapshot_id=snapshot.pk, parent_version=BASE)
    )
    promoted = _evaluate_and_gate(steps, loop, candidate, "_sft")
    loop.library_state = state
    return promoted


def _preference_stage(steps: _Steps, loop: LoopRun, algorithm: str, stage: str) -> bool:
    """The nightly learning from feedback: sample and judge answers, build pairs, train the
    reward model (PPO), train the policy from the served adapter, the gate."""
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
    return _evaluate_and_gate(steps, loop, candidate, stage)


def _claim(key: str, algorithm: str) -> LoopRun | None:
    """The new loop's row, or None when ``key`` already has one (a redelivered or doubled
    beat). Raises LoopBusy while another loop runs."""
    running = LoopRun.objects.filter(status=LoopRun.Status.RUNNING).first()
    if key and LoopRun.objects.filter(key=key).exists():
        return None
    if running is not None:
        raise LoopBusy(f"loop #{running.pk} is still running (started {running.started_at:%c})")
    try:
        with transaction.atomic():
            return LoopRun.objects.create(
                key=key, algorithm=algorithm, served_before=served_target().version
            )
    except IntegrityError:
        return None


def loop_run(*, algorithm: str | None = None, key: str = "") -> LoopRun:
    """One pass of the learning loop, synchronously in this process (the gpu worker, or
    ``manage.py run_loop``). ``sft``: the supervised stage alone. Otherwise the supervised
    stage first when the library or validated references changed since the last one
    (LOOP_SUPERVISED_STAGE), then the preference stage from the served adapter.

    A ``key`` names what started it (a night, "bootstrap"): a second call with the same
    key returns the first loop untouched, so a redelivered message trains nothing twice."""
    algorithm = algorithm or settings.LOOP_ALGORITHM
    loop = _claim(key, algorithm)
    if loop is None:
        return LoopRun.objects.get(key=key)
    steps = _Steps(loop)
    promoted = False
    try:
        state = library_state()
        if algorithm == TrainingRun.Algorithm.SFT:
            promoted = _supervised_stage(steps, loop, state)
        else:
            if settings.LOOP_SUPERVISED_STAGE and supervised_stage_due(state):
                promoted = _supervised_stage(steps, loop, state)
            promoted = _preference_stage(steps, loop, algorithm, "") or promoted
        loop.status = LoopRun.Status.PROMOTED if promoted else LoopRun.Status.KEPT
    except Exception as exc:
        loop.status = LoopRun.Status.FAILED
        loop.error = f"{type(exc).__name__}: {exc}"[:4000]
    loop.finished_at = timezone.now()
    loop.save()
    return loop


class LibraryNotReady(RuntimeError):
    """Documents are still being ingested: the bootstrap waits for them."""


BOOTSTRAP_KEY = "bootstrap"


def loop_bootstrap() -> LoopRun:
    """The first supervised stage of a new library, once: after the library has finished
    ingesting, synthesize, check, train SFT, evaluate and promote through the gate. The
    portal answers with the base model meanwhile."""
    pending = Document.objects.filter(
        status__in=[Document.Status.QUEUED, Document.Status.PROCESSING]
    ).count()
    if pending:
        raise LibraryNotReady(f"{pending} documents are still being ingested")
    return loop_run(algorithm=TrainingRun.Algorithm.SFT, key=BOOTSTRAP_KEY)


def loop_bootstrap_queue() -> bool:
    """Queues the bootstrap on the gpu worker unless it already ran or was queued (its
    key decides); returns whether it was queued."""
    if LoopRun.objects.filter(key=BOOTSTRAP_KEY).exists():
        return False
    from workers.training import bootstrap

    bootstrap.delay()
    return True


def loops_fail_stalled(*, older_than_hours: int = 20) -> int:
    """A loop whose worker died stays "running"; the next night's sweep marks it failed."""
    cutoff = timezone.now() - timedelta(hours=older_than_hours)
    return LoopRun.objects.filter(status=LoopRun.Status.RUNNING, started_at__lt=cutoff).update(
        status=LoopRun.Status.FAILED,
        error="the loop stopped reporting (its worker died); nothing was promoted",
        finished_at=timezone.now(),
    )
