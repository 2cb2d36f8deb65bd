"""Training runs: created as records, executed once on the ``gpu`` queue, observable while
they run, cancellable, and harmless when they fail.

A run never touches the served adapter: it registers what it produced, and only the
promotion gate (or a person) serves it.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from apps.adapters.models import AdapterVersion
from apps.adapters.selectors import served_target
from apps.adapters.services import adapter_register
from apps.answering.engine import gguf_model_path, hf_model_path
from apps.training.models import DataSnapshot, RunMetric, TrainingRun
from apps.training.services.data import snapshot_pairs
from apps.training.services.sft import snapshot_examples
from ml.adapters import BASE
from ml.training.common import Cancelled

logger = logging.getLogger(__name__)

Algorithm = TrainingRun.Algorithm
PREFERENCE_ALGORITHMS = {Algorithm.REWARD, Algorithm.PPO, Algorithm.DPO, Algorithm.KTO}
# A running run whose worker has not been heard of for this long died with it.
STALLED_AFTER = timedelta(minutes=30)


class InvalidRun(ValueError):
    """A run that cannot be created as asked; the message says why."""


def _job(algorithm: str) -> tuple[Any, type]:
    """The ml module of an algorithm and its config class (imported only when needed)."""
    if algorithm == Algorithm.REWARD:
        from ml.training import reward

        return reward, reward.RewardConfig
    if algorithm == Algorithm.SFT:
        from ml.training import sft

        return sft, sft.SFTConfig
    if algorithm == Algorithm.PPO:
        from ml.training import ppo

        return ppo, ppo.PPOConfig
    if algorithm == Algorithm.DPO:
        from ml.training import dpo

        return dpo, dpo.DPOConfig
    if algorithm == Algorithm.KTO:
        from ml.training import kto

        return kto, kto.KTOConfig
    raise InvalidRun(
        f"unknown algorithm {algorithm!r}: choose one of {', '.join(Algorithm.values)}"
    )


# Fields the portal fills in itself; a user's config may not set them.
_MANAGED = {"base_model", "adapters_dir", "out_dir", "parent_adapter", "version", "data_snapshot"}


def _check_config(algorithm: str, config: dict[str, Any]) -> dict[str, Any]:
    _, config_class = _job(algorithm)
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(config) - names)
    if unknown:
        raise InvalidRun(
            f"{algorithm} has no setting {', '.join(unknown)} "
            f"(it has {', '.join(sorted(names - _MANAGED))})"
        )
    managed = sorted(set(config) & _MANAGED)
    if managed:
        raise InvalidRun(f"{', '.join(managed)} are set by the portal, not in a run's config")
    return {**settings.TRAINING_DEFAULTS.get(algorithm, {}), **config}


def run_create(
    *,
    algorithm: str,
    config: dict[str, Any] | None = None,
    snapshot_id: int | None = None,
    reward_run_id: int | None = None,
    parent_version: str | None = None,
    user: User | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Records a run and queues it on the ``gpu`` queue once the record is committed.

    Preference algorithms train on the latest preference snapshot unless told otherwise,
    SFT on the latest SFT snapshot; PPO needs a finished reward model (the latest one by
    default) and starts from the served adapter unless ``parent_version`` says otherwise.
    """
    merged = _check_config(algorithm, dict(config or {}))
    kind = (
        DataSnapshot.Kind.PREFERENCES
        if algorithm in PREFERENCE_ALGORITHMS
        else DataSnapshot.Kind.SFT
    )
    snapshots = DataSnapshot.objects.filter(kind=kind)
    snapshot = snapshots.filter(pk=snapshot_id).first() if snapshot_id else snapshots.first()
    if snapshot is None:
        raise InvalidRun(
            f"no {kind} snapshot to train {algorithm} on: build one first "
            f"(manage.py build_preferences{'' if kind == DataSnapshot.Kind.PREFERENCES else ' --sft'})"
        )
    if snapshot.size == 0:
        raise InvalidRun(f"snapshot {snapshot.label} is empty: there is nothing to learn from yet")
    reward_run = None
    if algorithm == Algorithm.PPO:
        finished = TrainingRun.objects.filter(
            algorithm=Algorithm.REWARD, status=TrainingRun.Status.SUCCEEDED
        )
        reward_run = (
            finished.filter(pk=reward_run_id).first() if reward_run_id else finished.first()
        )
        if reward_run is None:
            raise InvalidRun("PPO needs a trained reward model: train one first (train reward)")
    if algorithm == Algorithm.REWARD:
        parent = ""
    else:
        parent = parent_version or served_target().version
        if parent != BASE and not AdapterVersion.objects.filter(version=parent).exists():
            raise InvalidRun(f"no adapter {parent!r} to start from")
    with transaction.atomic():
        run = TrainingRun.objects.create(
            algorithm=algorithm,
            config=merged,
            snapshot=snapshot,
            reward_run=reward_run,
            parent_version=parent,
            created_by=user,
        )
        if enqueue:
            from workers.training import train

            transaction.on_commit(lambda: train.delay(run.pk))
    return run


def run_cancel(*, run_id: int) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step and keeps
    nothing it produced."""
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    )
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(
        cancel_requested=True
    )
    return TrainingRun.objects.get(pk=run_id)


class RunReporter:
    """Sends a job's metric rows and progress to the run's record and tells it to stop
    when someone cancels it (looked up at most every two seconds)."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self._checked = 0.0
        self._stop = False

    def log(self, step: int, metrics: dict[str, float]) -> None:
        RunMetric.objects.create(run_id=self.run_id, step=step, values=metrics)
        TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())

    def progress(self, done: int, total: int) -> None:
        TrainingRun.objects.filter(pk=self.run_id).update(
            progress_done=done, progress_total=total, heartbeat_at=timezone.now()
        )

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._checked >= 2:
            self._checked = now
            self._stop = TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()
        return self._stop


def _claim(run_id: int) -> bool:
    """Only the worker that moves the run from queued to running trains it, so a
    redelivered message never trains twice."""
    return bool(
        TrainingRun.objects.filter(
            pk=run_id, status=TrainingRun.Status.QUEUED, cancel_requested=False
        ).update(
            status=TrainingRun.Status.RUNNING,
            started_at=timezone.now(),
            heartbeat_at=timezone.now(),
            worker=socket.gethostname()[:200],
        )
    )


def _adapter_path(version: str) -> str:
    if version == BASE:
        return ""
    return AdapterVersion.objects.get(version=version).path


def _ml_config(run: TrainingRun) -> Any:
    _, config_class = _job(run.algorithm)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    managed: dict[str, Any] = {
        "version": f"{run.algorithm}-{run.pk}-{stamp}",
        "data_snapshot": run.snapshot.label if run.snapshot else "",
    }
    if run.algorithm == Algorithm.REWARD:
        managed["out_dir"] = str(settings.REWARD_MODELS_DIR)
        if "backbone" not in run.config:
            managed["backbone"] = settings.REWARD_BACKBONE
    else:
        managed["base_model"] = str(hf_model_path())
        managed["adapters_dir"] = str(settings.ADAPTERS_DIR)
        managed["parent_adapter"] = _adapter_path(run.parent_version)
        if (
            run.algorithm == Algorithm.PPO
            and settings.GENERATOR_BACKEND == "llamacpp"
            and "rollout_gguf" not in run.config
        ):
            # Rollouts sampled by llama.cpp on the served GGUF (the base model's twin).
            managed["rollout_gguf"] = str(gguf_model_path())
    fields = {f.name for f in dataclasses.fields(config_class)}
    values = {**{k: v for k, v in run.config.items() if k in fields}, **managed}
    return config_class(**{k: v for k, v in values.items() if k in fields})


def _execute(run: TrainingRun, reporter: RunReporter) -> Any:
    module, _ = _job(run.algorithm)
    config = _ml_config(run)
    assert run.snapshot is not None
    if run.algorithm == Algorithm.SFT:
        return module.main(config, snapshot_examples(run.snapshot), reporter)
    pairs = snapshot_pairs(run.snapshot)
    if run.algorithm != Algorithm.PPO:
        return module.main(config, pairs, reporter)
    from ml.training.reward import load_reward_scorer

    assert run.reward_run is not None
    scorer = load_reward_scorer(Path(run.reward_run.artifact_path))
    prompts = list({str(p.prompt): list(p.prompt) for p in pairs}.values())
    return module.main(config, prompts, scorer, reporter)


def run_execute(*, run_id: int) -> TrainingRun:
    """Trains one queued run to the end. Success registers the adapter (not served);
    cancellation or failure leaves nothing behind and the served adapter as it was."""
    if not _claim(run_id):
        return TrainingRun.objects.get(pk=run_id)
    run = TrainingRun.objects.select_related("snapshot", "reward_run").get(pk=run_id)
    reporter = RunReporter(run.pk)
    started = time.perf_counter()
    try:
        result = _execute(run, reporter)
    except Cancelled:
        _finish(run.pk, TrainingRun.Status.CANCELLED, log="cancelled by request")
    except Exception as exc:  # any failure ends the run as failed, with its reason
        logger.exception("training run %s failed", run.pk)
        _finish(
            run.pk,
            TrainingRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:4000],
            log=traceback.format_exc()[-20000:],
        )
    else:
        metrics = {**result.metrics, "seconds": round(time.perf_counter() - started, 1)}
        if run.algorithm != Algorithm.REWARD:
            adapter_register(path=Path(result.path), algorithm=run.algorithm, metrics=metrics)
        _finish(
            run.pk,
            TrainingRun.Status.SUCCEEDED,
            version=result.version,
            artifact_path=str(result.path),
            metrics=metrics,
        )
    return TrainingRun.objects.get(pk=run.pk)


def _finish(run_id: int, status: str, **fields: Any) -> None:
    TrainingRun.objects.filter(pk=run_id).update(
        status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields
    )


def runs_fail_stalled() -> int:
    """Marks runs whose worker died (no heartbeat for STALLED_AFTER) as failed."""
    return TrainingRun.objects.filter(
        status=TrainingRun.Status.RUNNING, heartbeat_at__lt=timezone.now() - STALLED_AFTER
    ).update(
        status=TrainingRun.Status.FAILED,
        error="the worker stopped reporting (killed or lost); nothing was served",
        finished_at=timezone.now(),
    )
